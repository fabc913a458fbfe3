"""The strategies view (widgets.strategies) draws what workbench.strategies found: as many gallery tiles as clusters,
the class mix the library counts, and a cluster's members listed exactly; a run without strategies offers to find
them, and the results dashboard opens the view on demand."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from widgets.results import dashboard
from widgets.strategies import MEMBER_PAGE, StrategiesPanel, StrategiesView
from workbench import strategies

N = 72  # maps per explainer: three planted groups of 24


def _write_run(folder):
    """A batch run's folder (run.json + one shard): saliency maps bright in one of three places, random maps noise."""
    rng = np.random.default_rng(0)
    rows = []
    for explainer in ("saliency", "random"):
        for i in range(N):
            heat = rng.random((1, 16, 16)).astype(np.float32) * 0.2
            if explainer == "saliency":
                r, c = [(0, 0), (0, 10), (10, 5)][i % 3]
                heat[0, r:r + 6, c:c + 6] += 3.0
            rows.append({"path": f"digits/test/{i:05d}", "label": i % 5, "target": (i % 3) * 2 + (i % 7 == 0),
                         "explainer": explainer, "map": heat.ravel(), "map_shape": [1, 16, 16], "status": "ok",
                         "reason": "", "seconds": 0.01})
    (folder / "shards").mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(folder / "shards" / "shard-000000.parquet")
    classes = [f"c{k}" for k in range(10)]
    (folder / "run.json").write_text(json.dumps({"data": "digits", "explainers": ["saliency", "random"],
                                                 "metrics": [], "classes": classes}))
    return folder


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = _write_run(tmp_path_factory.mktemp("strategies") / "run")
    strategies.analyze_run(folder, "saliency", max_clusters=6)
    return folder


def _mix_cells(view: StrategiesView) -> dict[int, dict[str, int]]:
    """The class-mix table as the user reads it: cluster -> {class name: count} (zero counts left out)."""
    table = view.mix.value
    head = re.findall(r"<th>([^<]*)</th>", table.split("</tr>")[0])[2:]
    found = {}
    for row in table.split("</tr>")[1:-1]:
        cluster = int(re.search(r"cluster (\d+)", row).group(1))
        counts = [int(v) for v in re.findall(r"<td>(\d+)</td>", row)][1:]
        found[cluster] = {name: n for name, n in zip(head, counts, strict=True) if n}
    return found


def test_the_gallery_shows_each_cluster_with_the_librarys_class_mix(run):
    result = strategies.load_run_strategies(run)
    view = StrategiesView(run)
    assert result.n_clusters == 3  # the three planted places
    assert len(view.gallery.children) == 3 and "<b>3</b> strategies" in view.stats.value
    assert f"<b>{N}</b> maps of <b>saliency</b>" in view.stats.value
    shown = _mix_cells(view)
    assert shown == {c: {f"c{k}": n for k, n in result.class_mix(c).items()} for c in range(3)}
    for c, tile in enumerate(view.gallery.children):
        caption = tile.children[1].value
        assert f"cluster {c}</b> · {int(result.sizes[c])} maps" in caption
        top = max(result.class_mix(c).items(), key=lambda kv: kv[1])
        assert f"c{top[0]}: {top[1]}" in caption  # the biggest class is named on the tile


def test_clicking_a_cluster_lists_exactly_its_members(run):
    result = strategies.load_run_strategies(run)
    view = StrategiesView(run)
    assert view.members.value == "" and view.member_maps.children == ()
    for c in range(result.n_clusters):
        view.gallery.children[c].children[2].click()  # the tile's "show members" button
        assert view.cluster.value == c
        listed = []
        for page in range(1, view.page.max + 1):
            view.page.value = page
            listed += re.findall(r"<td>\d+</td><td>([^<]+)</td>", view.members.value)
            assert len(view.member_maps.children) == min(MEMBER_PAGE, len(result.members(c)) - (page - 1) * MEMBER_PAGE)
        assert listed == list(result.paths[result.members(c)])
        assert view.page.max == -(-len(result.members(c)) // MEMBER_PAGE)
    images = view.member_maps.children[0].children[0].children
    assert len(images) == 2  # the digit (its embedded source reads) and its map


def test_the_embedding_colours_by_cluster_or_by_class(run):
    result = strategies.load_run_strategies(run)
    view = StrategiesView(run)
    traces = view.embedding.outputs[0]["data"]["application/vnd.plotly.v1+json"]["data"]
    assert [t["name"] for t in traces] == [f"cluster {c} ({int(n)})" for c, n in enumerate(result.sizes)]
    view.colour.value = "class"
    traces = view.embedding.outputs[0]["data"]["application/vnd.plotly.v1+json"]["data"]
    values, counts = np.unique(result.classes, return_counts=True)
    assert [t["name"] for t in traces] == [f"class c{v} ({n})" for v, n in zip(values, counts, strict=True)]


def test_the_view_opens_without_reading_every_path(run):
    view = StrategiesView(run)
    assert view.result.paths.size == 0 and view.result.rows.size == 0  # only the drawn arrays were read
    view.cluster.value = 1
    assert len(view.member_paths()) == N


def test_a_run_without_strategies_offers_to_find_them(tmp_path):
    folder = _write_run(tmp_path / "fresh")
    panel = StrategiesPanel(folder)
    panel.open_view()
    assert "no strategies yet" in panel.progress.value and panel.body.children == ()
    panel.explainer.value = "saliency"
    result = panel.compute()
    assert (folder / strategies.RESULT_FILE).is_file()
    assert f"found {result.n_clusters} strategies among {N} maps" in panel.progress.value
    assert panel.view is not None and len(panel.view.gallery.children) == result.n_clusters
    (folder / strategies.RESULT_FILE).write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="strategies.npz: unreadable"):
        StrategiesView(folder)


def test_the_results_dashboard_opens_the_strategies_on_demand(run):
    board = dashboard(run)
    accordion = next(c for c in board.children if "wb-strategies-accordion" in c._dom_classes)
    panel = accordion.children[0]
    assert panel.view is None  # nothing read until the user opens it
    accordion.selected_index = 0
    assert panel.view is not None and panel.view.result.n_clusters == 3
    assert "strategies.npz" in panel.progress.value


def test_finding_strategies_of_the_shipped_demo_writes_nothing_in_the_package(monkeypatch, tmp_path):
    import widgets.strategies as view_module

    demo = _write_run(tmp_path / "widgets" / "demo" / "run")
    monkeypatch.setattr(view_module, "__file__", str(tmp_path / "widgets" / "strategies.py"))
    panel = StrategiesPanel(demo)
    result = panel.compute()
    assert not (demo / strategies.RESULT_FILE).exists() and "not saved" in panel.progress.value
    assert len(panel.view.gallery.children) == result.n_clusters
    panel.view.cluster.value = 0  # members listed from the result in memory
    assert len(re.findall(r"<td>\d+</td><td>([^<]+)</td>", panel.view.members.value)) == min(
        MEMBER_PAGE, len(result.members(0)))
