"""The scorecard: a tidy table of every image x explainer x metric, and bad input that fails rows, not the table."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from evaluation_helpers import Gradient, gradient

import workbench.evaluation as ev

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def quick_metrics() -> list[ev.Metric]:
    """Every metric, sized for 8x8 inputs and a quick test."""
    return [ev.PixelFlipping(), ev.RegionPerturbation(patch_size=4), ev.ROAD(percentages=[10, 50, 90]),
            ev.FaithfulnessCorrelation(nr_runs=10, subset_size=16), ev.Deletion(), ev.Insertion(),
            ev.RelevanceMassAccuracy(), ev.RelevanceRankAccuracy(), ev.PointingGame(), ev.MPRT(), ev.RandomLogit(),
            ev.MaxSensitivity(nr_samples=4), ev.LocalLipschitzEstimate(nr_samples=4), ev.Sparseness(),
            ev.Complexity()]


@pytest.fixture(scope="module")
def masks(tiny):
    m = torch.zeros(len(tiny[1]), 8, 8, dtype=torch.bool)
    m[:, 2:6, 2:6] = True
    return m


def test_one_row_per_image_explainer_metric_with_direction(tiny, masks):
    model, x, y, _ = tiny
    explainers = {"gradient": gradient, "captum-shaped": Gradient(model)}
    table = ev.scorecard(model, x, y, explainers, metrics=quick_metrics(), masks=masks, progress=False)
    assert list(table.columns[:8]) == ["image", "explainer", "metric", "family", "score", "higher_is_better",
                                       "status", "reason"]
    assert len(table) == len(x) * 2 * 15
    assert (table.status == "ok").all(), table[table.status != "ok"].reason.unique()
    for name, cls in ev.METRICS.items():
        rows = table[table.metric == name]
        assert len(rows) == len(x) * 2 and (rows.higher_is_better == cls.higher_is_better).all()
        assert (rows.family == cls.family).all()
    by = table.pivot_table(index=["image", "metric"], columns="explainer", values="score")
    torch.testing.assert_close(torch.tensor(by["gradient"].values), torch.tensor(by["captum-shaped"].values))


def test_same_seed_same_table_and_the_model_keeps_its_mode(tiny):
    model, x, y, _ = tiny
    model.train()
    try:
        runs = [ev.scorecard(model, x, None, {"g": gradient}, metrics=quick_metrics()[:4] + quick_metrics()[10:13],
                             seed=5, progress=False) for _ in range(2)]
        assert model.training
    finally:
        model.eval()
    torch.testing.assert_close(torch.tensor(runs[0].score.values), torch.tensor(runs[1].score.values))


def test_explainer_failing_on_one_image_fails_only_its_rows(tiny):
    model, x, y, _ = tiny
    bad = x[3].clone()

    def fragile(m, inputs, targets):
        if any(torch.equal(img, bad) for img in inputs):
            raise RuntimeError("cannot explain this one")
        return gradient(m, inputs, targets)

    table = ev.scorecard(model, x, y, {"fragile": fragile, "gradient": gradient},
                         metrics=[ev.Sparseness(), ev.PixelFlipping()], progress=False)
    failed = table[table.status == "failed"]
    assert set(failed.image) == {3} and set(failed.explainer) == {"fragile"} and len(failed) == 2
    assert failed.reason.str.contains("explainer failed: RuntimeError: cannot explain this one").all()
    assert (table[table.status == "ok"].score.notna()).all() and len(table) == len(x) * 2 * 2


def test_wrong_shape_and_nan_maps_fail_their_rows(tiny):
    model, x, y, _ = tiny

    def wrong_shape(m, inputs, targets):
        return torch.ones(len(inputs), 4, 4)

    def nan_on_first(m, inputs, targets):
        out = gradient(m, inputs, targets)
        if len(inputs) == len(x):
            out[0, 0, 0, 0] = float("nan")
        return out

    table = ev.scorecard(model, x, y, {"wrong": wrong_shape, "nan": nan_on_first}, metrics=[ev.Complexity()],
                         progress=False)
    wrong = table[table.explainer == "wrong"]
    assert (wrong.status == "failed").all() and wrong.reason.str.contains("maps must be").all()
    nan = table[table.explainer == "nan"].set_index("image")
    assert nan.loc[0, "status"] == "failed" and "NaN" in nan.loc[0, "reason"]
    assert (nan.drop(index=0).status == "ok").all()


def test_metric_failures_and_empty_masks_fail_rows(tiny, masks):
    model, x, y, _ = tiny
    empty = masks.clone()
    empty[1] = False
    table = ev.scorecard(model, x, y, {"g": gradient}, masks=empty, progress=False,
                         metrics=[ev.RelevanceMassAccuracy(), ev.FaithfulnessCorrelation(subset_size=64)])
    rma = table[table.metric == "RelevanceMassAccuracy"].set_index("image")
    assert rma.loc[1, "status"] == "failed" and "NaN" in rma.loc[1, "reason"]
    assert (rma.drop(index=1).status == "ok").all()
    fc = table[table.metric == "FaithfulnessCorrelation"]
    assert (fc.status == "failed").all() and fc.reason.str.contains("subset_size=64").all()


def test_localisation_without_masks_is_a_clear_error_and_left_out_by_default(tiny):
    model, x, y, _ = tiny
    with pytest.raises(ValueError, match="RelevanceRankAccuracy is a localisation metric and needs ground-truth"):
        ev.scorecard(model, x, y, {"g": gradient}, metrics=["RelevanceRankAccuracy"], progress=False)
    names = {m.name for m in ev.default_metrics(masks=False)}
    assert "PointingGame" not in names and "MPRT" in names
    assert {m.name for m in ev.default_metrics(masks=True)} == set(ev.METRICS)
    with pytest.raises(ValueError, match="masks must be"):
        ev.scorecard(model, x, y, {"g": gradient}, masks=torch.ones(2, 8, 8, dtype=torch.bool), progress=False)
    with pytest.raises(ValueError, match="explainers is empty"):
        ev.scorecard(model, x, y, {}, progress=False)


def test_importing_the_evaluation_package_stays_headless():
    code = ("import sys, workbench.evaluation; "
            "bad = [m for m in ('quantus', 'captum', 'lime', 'ipywidgets', 'IPython', 'plotly') if m in sys.modules]; "
            "sys.exit(str(bad) if bad else 0)")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("map_shape", ["per_channel", "channel_less"])
def test_colour_inputs_with_per_channel_or_channel_less_maps(map_shape):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(256, 3)).eval()
    x = torch.rand(3, 3, 8, 8)

    def explain(m, inputs, targets):
        grad = gradient(m, inputs, targets)
        return grad if map_shape == "per_channel" else grad.sum(1)

    masks = torch.zeros(3, 8, 8, dtype=torch.bool)
    masks[:, :4] = True
    table = ev.scorecard(model, x, None, {"g": explain}, metrics=quick_metrics(), masks=masks, progress=False)
    assert (table.status == "ok").all(), table[table.status != "ok"].reason.unique()
    assert len(table) == 3 * 15
