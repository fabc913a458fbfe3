"""Two models side by side: difference maps and the scorecard's paired (Wilcoxon signed-rank) test."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch
from scipy.stats import wilcoxon

from workbench.evaluation.compare import compare_models, difference_maps, paired_tests
from workbench.explainers import make_explainer
from workbench.models.classifier import SmallCNN


def _table(scores: list[float], higher: bool, metric: str = "m", status: list[str] | None = None) -> pd.DataFrame:
    status = status or ["ok"] * len(scores)
    return pd.DataFrame({"image": range(len(scores)), "explainer": "e", "metric": metric, "score": scores,
                         "higher_is_better": higher, "status": status})


def test_paired_test_is_wilcoxon_and_reads_the_metric_direction():
    a = [0.9, 0.8, 0.85, 0.95, 0.7, 0.88, 0.91, 0.79]
    b = [0.5, 0.6, 0.55, 0.52, 0.61, 0.58, 0.49, 0.6]
    expected = wilcoxon(a, b).pvalue
    up = paired_tests(_table(a, True), _table(b, True)).iloc[0]
    assert up["p_value"] == pytest.approx(expected) and up["n"] == 8 and up["significant"]
    assert up["better"] == "A better" and up["mean_difference"] == pytest.approx(sum(a) / 8 - sum(b) / 8)
    down = paired_tests(_table(a, False), _table(b, False)).iloc[0]
    assert down["better"] == "B better", "a lower-is-better metric where A scores higher favours B"


def test_only_images_scored_on_both_models_are_paired_and_ties_say_so():
    a = _table([1.0, 2.0, 3.0], True, status=["ok", "failed", "ok"])
    b = _table([0.5, 1.0, 2.0], True)
    assert paired_tests(a, b).iloc[0]["n"] == 2
    same = paired_tests(_table([1.0, 2.0], True), _table([1.0, 2.0], True)).iloc[0]
    assert same["better"] == "same scores" and same["p_value"] == 1.0 and not same["significant"]
    none = paired_tests(_table([1.0], True, status=["failed"]), _table([1.0], True)).iloc[0]
    assert none["better"] == "no pairs" and none["n"] == 0 and none["p_value"] != none["p_value"]


def test_difference_maps_are_zero_for_the_same_maps_and_scale_free():
    x = torch.rand(3, 1, 8, 8)
    maps = torch.randn(3, 1, 8, 8)
    same = difference_maps(maps, 5 * maps, x)  # a model whose attributions are 5x larger ranks pixels the same
    assert torch.allclose(same.difference, torch.zeros(3, 8, 8), atol=1e-6)
    assert torch.allclose(same.similarity, torch.ones(3))
    other = difference_maps(maps, -maps, x)
    assert torch.allclose(other.difference, 2 * other.maps_a) and torch.allclose(other.similarity, -torch.ones(3))
    with pytest.raises(ValueError, match="maps_b"):
        difference_maps(maps, torch.zeros(2, 1, 8, 8), x)


def test_compare_models_scores_both_models_on_the_same_targets_and_tests_every_cell():
    torch.manual_seed(0)
    model_a = SmallCNN(1, 10, width=4, depth=2).eval()
    torch.manual_seed(1)
    model_b = SmallCNN(1, 10, width=4, depth=2).eval()
    x = torch.rand(8, 1, 12, 12)
    factories = {"saliency": lambda m: make_explainer("saliency", m)}
    result = compare_models(model_a, model_b, x, factories, metrics=["Sparseness", "Complexity"])
    assert torch.equal(result.targets, model_a(x).argmax(-1)), "both models explain model A's predicted classes"
    assert list(result.tests["metric"]) == ["Sparseness", "Complexity"]
    for row in result.tests.itertuples():
        sa = result.table_a[result.table_a["metric"] == row.metric].sort_values("image")["score"]
        sb = result.table_b[result.table_b["metric"] == row.metric].sort_values("image")["score"]
        assert row.n == 8 and row.p_value == pytest.approx(wilcoxon(sa.to_numpy(), sb.to_numpy()).pvalue)
    diff = result.maps["saliency"]
    assert diff.difference.shape == (8, 12, 12) and diff.difference.abs().max() > 0.1
    twin = compare_models(model_a, copy.deepcopy(model_a), x, factories, metrics=["Sparseness"])
    assert twin.maps["saliency"].difference.abs().max() < 1e-5 and twin.tests.iloc[0]["better"] == "same scores"
