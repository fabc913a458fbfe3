"""The batch-results browser: filters narrow the rows, a page shows its rows' maps, and only those maps are read; the
page's counter, status counts, threshold side and page numbers say what the filtered rows are."""

from __future__ import annotations

import json

import pytest

from widgets.export import SaveBar
from widgets.results import AT_LEAST, AT_MOST, PAGE_ROWS, ResultsBrowser
from workbench.batch import ModelSpec, explain_dataset, metric_higher_is_better
from workbench.evaluation import Deletion, Insertion

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def output(tmp_path_factory):
    out = tmp_path_factory.mktemp("batch") / "out"
    explain_dataset("digits", ModelSpec("digits_classifier", smoke=True), ["saliency", "random"], out,
                    metrics=["insertion", "deletion"], shard_size=10, limit=20, engine="local", device="cpu",
                    progress=False)
    return out


def test_filters_narrow_rows_and_pages_show_their_maps(output, monkeypatch):
    view = ResultsBrowser(output)
    assert len(view.current) == 40 and "40</b> of 40 rows" in view.stats.value
    assert len(view.maps.children) == PAGE_ROWS
    view.explainer.value = "random"
    assert len(view.current) == 20 and set(view.current["explainer"]) == {"random"}
    assert "saliency" not in view.table.value and "random" in view.table.value
    view.page.value = view.page.max
    assert len(view.maps.children) == 20 - PAGE_ROWS * (view.page.max - 1)
    view.metric.value = "metric_insertion"
    view.threshold.value = 2.0  # no AUC reaches 2
    assert len(view.current) == 0 and view.maps.children == () and "0</b> of 40" in view.stats.value

    reads = []
    import widgets.results as results

    original = results.read_results
    monkeypatch.setattr(results, "read_results", lambda *a, **k: reads.append(a[1:]) or original(*a, **k))
    view.threshold.value = 0.0
    assert reads and all("map" in cols for cols, *_ in reads)
    assert all(len(set(flt[0][2])) <= PAGE_ROWS for _, flt in reads)  # maps only for the shown page's images


def test_the_counter_and_status_counts_follow_the_filter(output):
    """Defect: "ok: 40" stayed at the total when the filter left a few rows."""
    view = ResultsBrowser(output)
    view.explainer.value = "saliency"
    view.metric.value = "metric_insertion"
    view.threshold.value = float(view.current["metric_insertion"].quantile(0.8))
    shown = view.current
    assert 0 < len(shown) < 20
    counts = shown["status"].value_counts().to_dict()
    assert f"<b>{len(shown)}</b> of 40 rows match" in view.stats.value
    for status, n in counts.items():
        assert f"{status}: {n}" in view.stats.value
    assert "ok: 40" not in view.stats.value and "ok: 20" not in view.stats.value


def test_the_threshold_side_follows_the_metrics_declared_direction(output):
    """Defect: only "≥" was offered, also for deletion (lower is better)."""
    assert metric_higher_is_better("metric_deletion") is Deletion.higher_is_better is False
    assert metric_higher_is_better("metric_insertion") is Insertion.higher_is_better is True
    view = ResultsBrowser(output)
    view.metric.value = "metric_deletion"
    assert view.bound.value == AT_MOST and "lower is better" in view.direction.value
    limit = float(view.index["metric_deletion"].median())
    view.threshold.value = limit
    assert len(view.current) and (view.current["metric_deletion"] <= limit).all()
    assert len(view.current) == int((view.index["metric_deletion"] <= limit).sum())
    view.bound.value = AT_LEAST  # both sides stay on offer
    assert (view.current["metric_deletion"] >= limit).all()
    view.metric.value = "metric_insertion"
    assert view.bound.value == AT_LEAST and "higher is better" in view.direction.value
    with pytest.raises(ValueError, match="unknown metric"):
        metric_higher_is_better("metric_nonsense")


def test_pages_count_from_one_and_the_dashboard_has_a_save_bar(output, tmp_path):
    from widgets.results import dashboard

    board = dashboard(output)
    view = board
    assert view.page.min == 1 and view.page.value == 1 and view.page.max == 40 // PAGE_ROWS
    assert view.pages.value == f"of {40 // PAGE_ROWS}" and f"{40 // PAGE_ROWS} pages" in view.stats.value
    first = list(view.current["path"].iloc[:PAGE_ROWS])
    assert all(any(p.split("/")[-1] in t.children[1].value for p in first[i:i + 1])
               for i, t in enumerate(view.maps.children))
    bars = [c for c in board.children if isinstance(c, SaveBar)]
    assert len(bars) == 1
    bars[0].folder.value = str(tmp_path)
    written = bars[0].save()
    assert len([p for p in written if p.suffix == ".png"]) == PAGE_ROWS
    assert all(p.name.startswith("page1_results") for p in written)


def test_the_demo_opens_from_the_package_on_an_empty_cache(tmp_path, monkeypatch):
    """Issue 29: the first open built the demo output (~30 s); the package ships it, made with the shipped weights."""
    import widgets.results as results

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(results, "make_demo_output", lambda out: pytest.fail("the shipped demo should be read"))
    assert results.shipped_demo_matches()
    out = results.demo_output()
    assert out == results.SHIPPED_DEMO and not (tmp_path / "cache" / results.DEMO_NAME).exists()
    view = ResultsBrowser(out)
    assert len(view.index) == 128 and set(view.index["explainer"]) == {"saliency", "random"}
    assert {"metric_deletion", "metric_insertion"} <= set(view.metrics)
    assert len(view.maps.children) == PAGE_ROWS


def test_a_demo_made_with_other_weights_is_not_shown(tmp_path, monkeypatch):
    """A shipped demo whose weights file or hash is not the package's is rebuilt in the cache, never shown."""
    import shutil

    import widgets.results as results

    demo = tmp_path / "demo"
    shutil.copytree(results.SHIPPED_DEMO, demo)
    assert results.shipped_demo_matches(demo)
    made = json.loads((demo / "made.json").read_text())
    (demo / "made.json").write_text(json.dumps(dict(made, weights_sha256="0" * 64)))
    assert not results.shipped_demo_matches(demo)
    (demo / "made.json").write_text(json.dumps(dict(made, weights="digits_classifier-0000000000.pt")))
    assert not results.shipped_demo_matches(demo)
    monkeypatch.setenv("WORKBENCH_SHIPPED", "0")
    assert not results.shipped_demo_matches(results.SHIPPED_DEMO)
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    built = []
    monkeypatch.setattr(results, "make_demo_output", lambda out: built.append(out) or out)
    assert results.demo_output() == tmp_path / "cache" / results.DEMO_NAME and built
