"""The scorecard view built in-process: the buttons fill the heat table, the maps and the MPRT picture; the colours
follow each metric's direction; picking a cell or the scope re-draws without scoring again."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from widgets.scorecard import (
    ScorecardView,
    failures,
    goodness,
    heat_table_figure,
    mprt_figure,
    pivot_scores,
    table_notes,
)
from workbench.evaluation import MPRTResult, PixelFlipping, RandomLogit, Sparseness
from workbench.explainers import make_explainer
from workbench.models.pretrained import digits_classifier, digits_vae


def _plotly(out) -> dict:
    return out.outputs[0]["data"]["application/vnd.plotly.v1+json"]


@pytest.fixture(scope="module")
def view() -> ScorecardView:
    from workbench.data import load_digits
    from workbench.models.pretrained import DIGITS_SIZE

    model, vae = digits_classifier(progress=False).eval(), digits_vae(progress=False).eval()
    images = load_digits(DIGITS_SIZE, "test").images[:6]
    explainers = {"RLD": make_explainer("relabel", model, vae=vae, n_samples=200),
                  "saliency": make_explainer("saliency", model), "random": make_explainer("random", model)}
    return ScorecardView(model, images, explainers, batch_size=3, image=1)


def _table(rows: list[tuple[str, str, float, bool]]) -> pd.DataFrame:
    return pd.DataFrame([{"image": 0, "explainer": e, "metric": m, "family": "x", "score": s, "higher_is_better": h,
                          "status": "ok" if s == s else "failed", "reason": "", "seconds": 0.0}
                         for e, m, s, h in rows])


def test_colours_are_direction_aware():
    table = _table([("a", "Up", 0.9, True), ("b", "Up", 0.1, True), ("a", "Down", 0.9, False),
                    ("b", "Down", 0.1, False), ("a", "Flat", 2.0, True), ("b", "Flat", 2.0, True)])
    means, direction = pivot_scores(table)
    good = goodness(means, direction)
    # higher-is-better: a (0.9) is best; lower-is-better: b (0.1) is best; equal scores sit in the middle
    assert good.tolist() == [[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]]
    fig = heat_table_figure(table)
    assert list(fig.data[0].x) == ["Up ↑", "Down ↓", "Flat ↑"]


def test_failed_cells_say_failed_and_why():
    """Defect: RLD x MaxSensitivity said "failed" with no reason."""
    table = _table([("a", "Up", 0.9, True), ("b", "Up", float("nan"), True)])
    table.loc[1, "reason"] = "metric failed: ValueError: the explainer returned NaN/Inf maps for perturbed inputs"
    fig = heat_table_figure(table)
    assert fig.data[0].text[1][0] == "failed" and np.isnan(fig.data[0].z[1][0])
    assert fig.data[0].customdata[1][0] == f"failed: {table.loc[1, 'reason']}"
    assert failures(table) == {("b", "Up"): table.loc[1, "reason"]}
    notes = table_notes(table, [PixelFlipping(features_in_step=4)], (1, 16, 16))
    assert "b × Up" in notes and "NaN/Inf maps for perturbed inputs" in notes


def test_the_legend_gives_each_metrics_direction_and_scale():
    """Defect: PixelFlipping values ran 0.07-21 with no scale or direction explained."""
    metric = PixelFlipping(features_in_step=4)
    notes = table_notes(_table([("a", "PixelFlipping", 3.0, False)]), [metric, Sparseness()], (1, 16, 16))
    assert "<b>PixelFlipping</b> ↓ lower is better" in notes and "0 to 63 here (64 steps of 4 features)" in notes
    assert "<b>Sparseness</b> ↑ higher is better" in notes and "0 (uniform) to 1" in notes


def test_mprt_figure_needs_maps_and_draws_one_panel_per_layer():
    result = MPRTResult(["original", "head"], torch.tensor([[1.0, 0.2]]), [torch.rand(1, 1, 4, 4)] * 2)
    fig = mprt_figure(result, "x")
    assert len(fig.data) == 2 and "head" in fig.layout.annotations[1].text
    with pytest.raises(ValueError, match="keep_maps"):
        mprt_figure(MPRTResult(["original"], torch.ones(1, 1)), "x")


def test_score_button_fills_the_table_and_the_maps(view):
    assert view.table is None and "Score explainers" in view.status.value
    view.score_button.click()
    table = view.table
    assert set(table["explainer"]) == {"RLD", "saliency", "random"} and table["image"].nunique() == 3
    assert view.indices[0] == 1  # the chosen image comes first
    deterministic = table[table["explainer"] != "RLD"]
    assert (deterministic["status"] == "ok").all(), deterministic[deterministic["status"] != "ok"]
    assert (table.loc[table["status"] != "ok", "reason"] != "").all()  # an RLD zero map is a row with its reason
    heat = _plotly(view.table_out)["data"][0]
    assert len(heat["y"]) == 3 and len(heat["x"]) == len(view.metrics)
    # the scored maps are the drawn maps, and a re-explanation for another class is another map
    logit = table[table["metric"] == "RandomLogit"].groupby("explainer")["score"].mean()
    assert logit["saliency"] < 0.99
    assert len(view.maps_out.outputs) == 1 and not view.score_button.disabled


def test_map_panels_are_numbered_as_the_table_and_progress_counts_every_step(view):
    """Defect: the maps were numbered #0-#3 while the table said "image #5 and 3 more"."""
    if view.table is None:
        view.score_button.click()
    titles = [a["text"] for a in _plotly(view.maps_out)["layout"]["annotations"]]
    assert titles[:len(view.indices)] == [f"#{i}" for i in view.indices] and view.indices[0] == view.image == 1
    assert view.progress.max == len(view.explainers) * (1 + len(view.metrics))
    assert view.progress.value == view.progress.max
    assert "What the columns measure" in view.notes.value


def test_scope_and_cell_pick_redraw_without_scoring(view):
    if view.table is None:
        view.score_button.click()
    table = view.table
    image_heat = _plotly(view.table_out)["data"][0]["text"]
    view.scope.value = "batch"
    assert _plotly(view.table_out)["data"][0]["text"] != image_heat
    before = _plotly(view.maps_out)
    view.explainer_pick.value = "saliency"
    view.metric_pick.value = "Sparseness"
    after = _plotly(view.maps_out)
    assert after != before and "saliency" in after["layout"]["title"]["text"]
    expected = table[(table["explainer"] == "saliency") & (table["metric"] == "Sparseness")].sort_values("image")
    assert [a["text"] for a in after["layout"]["annotations"][3:6]] == [
        f"Sparseness {s:.3g}" for s in expected["score"]]
    assert view.table is table  # no re-scoring


def test_mprt_button_draws_the_randomised_maps(view):
    view.explainer_pick.value = "saliency"
    view.mprt_button.click()
    result = view.mprt
    assert result.layers[0] == "original" and len(result.layers) > 2
    assert result.similarity[0, 0] > 0.99 > result.similarity[0, -1]
    fig = _plotly(view.mprt_out)
    assert len(fig["data"]) == len(result.layers) and "MPRT" in view.status.value


def test_set_image_clears_without_computing(view):
    view.set_image(4)
    assert view.table is None and view.mprt is None and view.table_out.outputs == ()
    assert "#4" in view.status.value


def test_metrics_may_be_given_as_a_list():
    model = digits_classifier(progress=False)
    images = torch.rand(2, 1, 16, 16)
    view = ScorecardView(model, images, {"saliency": make_explainer("saliency", model)},
                         metrics=[Sparseness(), RandomLogit()], batch_size=2)
    table = view.run()
    assert list(dict.fromkeys(table["metric"])) == ["Sparseness", "RandomLogit"]


def test_a_run_that_cannot_score_says_why_and_frees_the_button():
    model = digits_classifier(progress=False)
    view = ScorecardView(model, torch.rand(2, 1, 16, 16), {"saliency": make_explainer("saliency", model)},
                         metrics=["RelevanceMassAccuracy"], batch_size=2)
    with pytest.raises(ValueError, match="needs ground-truth masks"):
        view.run()
    assert "Scoring failed" in view.status.value and "masks" in view.status.value
    assert not view.score_button.disabled and view.progress.layout.visibility == "hidden"
