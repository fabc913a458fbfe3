"""The batch-results browser: filters narrow the rows, a page shows its rows' maps, and only those maps are read."""

from __future__ import annotations

import pytest

from widgets.results import PAGE_ROWS, ResultsBrowser
from workbench.batch import ModelSpec, explain_dataset

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def output(tmp_path_factory):
    out = tmp_path_factory.mktemp("batch") / "out"
    explain_dataset("digits", ModelSpec("digits_classifier", smoke=True), ["saliency", "random"], out,
                    metrics=["insertion"], shard_size=10, limit=20, engine="local", device="cpu", progress=False)
    return out


def test_filters_narrow_rows_and_pages_show_their_maps(output, monkeypatch):
    view = ResultsBrowser(output)
    assert len(view.current) == 40 and "40</b> of 40 rows" in view.stats.value
    assert len(view.maps.children) == PAGE_ROWS
    view.explainer.value = "random"
    assert len(view.current) == 20 and set(view.current["explainer"]) == {"random"}
    assert "saliency" not in view.table.value and "random" in view.table.value
    view.page.value = view.page.max
    assert len(view.maps.children) == 20 - PAGE_ROWS * view.page.max
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
