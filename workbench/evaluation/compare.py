"""Two models side by side (issue 30, item 2): the same images, explainers and metrics for model A and model B.

``compare_models(model_a, model_b, inputs, {"saliency": lambda m: make_explainer("saliency", m)})`` explains the
images with each explainer built once per model, draws a difference map per image (A's map minus B's, each scaled
to its own largest magnitude first: two models' attributions have different units), scores both sets of maps with
the scorecard (:func:`workbench.evaluation.scorecard`) and tests each explainer x metric with a paired test:
Wilcoxon's signed-rank test (``scipy.stats.wilcoxon``, two-sided) on the per-image scores of A and B. The verdict
("A better" / "B better") reads the sign of the mean difference through the metric's ``higher_is_better``.

Both models explain the same class per image: ``targets`` when given, otherwise model A's predictions (a map of
"why 7" on A is compared with B's map of "why 7", not with B's own answer).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from workbench.evaluation.base import Metric, as_explain_fn, check_maps
from workbench.evaluation.scorecard import scorecard
from workbench.validation import check_images, check_target

if TYPE_CHECKING:
    import pandas as pd

#: explainer name -> a function building that explainer (or an explain_fn) around a given model
ExplainerFactories = Mapping[str, Callable[[nn.Module], Any]]
TEST_COLUMNS = ["explainer", "metric", "n", "mean_a", "mean_b", "mean_difference", "higher_is_better", "statistic",
                "p_value", "better", "significant"]


@dataclass(frozen=True)
class MapDifference:
    """One explainer's maps of the same images on two models, (B, H, W) each, channels summed and each map divided
    by its own largest magnitude; ``difference`` is A - B (in [-2, 2]); ``similarity`` the per-image Spearman rank
    correlation of the two maps (1: the same ranking of pixels)."""

    maps_a: torch.Tensor
    maps_b: torch.Tensor
    difference: torch.Tensor
    similarity: torch.Tensor


@dataclass(frozen=True)
class ModelComparison:
    """What :func:`compare_models` found: each model's scorecard table, the paired tests, the maps by explainer."""

    table_a: pd.DataFrame
    table_b: pd.DataFrame
    tests: pd.DataFrame
    maps: dict[str, MapDifference]
    targets: torch.Tensor


def _plane(maps: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H, W), channels summed, each map divided by its largest magnitude (0 stays 0)."""
    m = maps.float().sum(1)
    scale = m.flatten(1).abs().amax(1).clamp_min(1e-12)
    return m / scale[:, None, None]


def _spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-row Spearman correlation of (B, N) tensors (average ranks of ties via scipy)."""
    from scipy.stats import spearmanr

    out = []
    for x, y in zip(a.cpu().numpy(), b.cpu().numpy(), strict=True):
        out.append(float("nan") if x.std() == 0 or y.std() == 0 else float(spearmanr(x, y).statistic))
    return torch.tensor(out)


def difference_maps(maps_a: torch.Tensor, maps_b: torch.Tensor, inputs: torch.Tensor) -> MapDifference:
    """The per-image difference of two models' maps of ``inputs`` (see :class:`MapDifference`); maps are
    (B, H, W), (B, 1, H, W) or shaped like the inputs, finite."""
    x = check_images(inputs, "inputs")
    a, b = _plane(check_maps(maps_a, x, "maps_a")), _plane(check_maps(maps_b, x, "maps_b"))
    return MapDifference(a.cpu(), b.cpu(), (a - b).cpu(), _spearman(a.flatten(1), b.flatten(1)))


def paired_tests(table_a: pd.DataFrame, table_b: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Per explainer x metric: Wilcoxon signed-rank test of A's vs B's per-image scores (two-sided).

    Images are paired by the ``image`` column; only images scored ``ok`` on both models count (``n``).
    ``mean_difference`` is mean(A - B); ``better`` is "A better" / "B better" by its sign and the metric's
    direction, "same scores" when every difference is 0 (then ``p_value`` is 1), "no pairs" when n is 0 (NaN p).
    ``significant``: p < ``alpha``.
    """
    import pandas as pd
    from scipy.stats import wilcoxon

    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha}")
    keys = ["explainer", "metric", "image"]
    a = table_a[table_a["status"] == "ok"][[*keys, "score", "higher_is_better"]]
    b = table_b[table_b["status"] == "ok"][[*keys, "score"]]
    pairs = a.merge(b, on=keys, suffixes=("_a", "_b"))
    rows = []
    cells = table_a[["explainer", "metric", "higher_is_better"]].drop_duplicates(["explainer", "metric"])
    for explainer, metric, higher in cells.itertuples(index=False):
        cell = pairs[(pairs["explainer"] == explainer) & (pairs["metric"] == metric)]
        diff = (cell["score_a"] - cell["score_b"]).to_numpy(dtype=float)
        n = len(diff)
        stat, p = float("nan"), float("nan")
        if n and (diff != 0).any():
            result = wilcoxon(cell["score_a"].to_numpy(float), cell["score_b"].to_numpy(float))
            stat, p = float(result.statistic), float(result.pvalue)
        mean = float(diff.mean()) if n else float("nan")
        if not n:
            better = "no pairs"
        elif not (diff != 0).any():
            better, p = "same scores", 1.0
        else:
            better = "A better" if (mean > 0) == bool(higher) else "B better"
        rows.append({"explainer": explainer, "metric": metric, "n": n,
                     "mean_a": float(cell["score_a"].mean()) if n else float("nan"),
                     "mean_b": float(cell["score_b"].mean()) if n else float("nan"), "mean_difference": mean,
                     "higher_is_better": bool(higher), "statistic": stat, "p_value": p, "better": better,
                     "significant": bool(p == p and p < alpha)})
    return pd.DataFrame(rows, columns=TEST_COLUMNS)


class _Precomputed:
    """explain_fn returning the maps already computed for the scored batch on ``model`` (so the scores are of the
    maps the difference maps show); anything else (perturbed inputs, randomised models) is re-explained."""

    def __init__(self, maps: torch.Tensor, model: nn.Module, inputs: torch.Tensor, explain: Callable) -> None:
        self.maps, self.model, self.inputs, self.explain = maps, model, inputs, explain

    def __call__(self, model: nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if model is self.model and x.shape == self.inputs.shape and torch.equal(x, self.inputs):
            return self.maps
        return self.explain(model, x, t)


def compare_models(model_a: nn.Module, model_b: nn.Module, inputs: torch.Tensor, explainers: ExplainerFactories,
                   metrics: Sequence[Metric | str] | None = None,
                   targets: int | Sequence[int] | torch.Tensor | None = None, seed: int = 0, alpha: float = 0.05,
                   on_step: Callable[[str, str, str], None] | None = None) -> ModelComparison:
    """Explain ``inputs`` with every explainer on both models, diff the maps, score both, test each cell (see the
    module docstring). ``explainers``: name -> ``factory(model)`` returning an explainer (``.attribute``) or an
    ``explain_fn``. ``on_step(model, explainer, metric)`` reports progress ("A"/"B")."""
    if not explainers:
        raise ValueError("explainers is empty; pass {name: factory(model) -> explainer}")
    x = check_images(inputs, "inputs")
    dev = next((p.device for p in model_a.parameters()), torch.device("cpu"))
    x = x.to(dev)
    model_b.to(dev)
    with torch.no_grad():
        t = check_target(targets, x.shape[0], name="targets")
        t = model_a.eval()(x).argmax(-1) if t is None else t.to(dev)
    model_b.eval()
    tables, maps = {}, {}
    raw: dict[str, dict[str, torch.Tensor]] = {"A": {}, "B": {}}
    for label, model in (("A", model_a), ("B", model_b)):
        fixed = {}
        for name, factory in explainers.items():
            explain = as_explain_fn(factory(model), model)
            raw[label][name] = torch.as_tensor(explain(model, x, t)).detach().float()
            fixed[name] = _Precomputed(raw[label][name], model, x, explain)
        tables[label] = scorecard(model, x, t, fixed, metrics, seed=seed, progress=False,
                                  on_step=None if on_step is None else lambda e, m, lab=label: on_step(lab, e, m))
    for name in explainers:
        maps[name] = difference_maps(raw["A"][name], raw["B"][name], x)
    return ModelComparison(tables["A"], tables["B"], paired_tests(tables["A"], tables["B"], alpha), maps, t.cpu())
