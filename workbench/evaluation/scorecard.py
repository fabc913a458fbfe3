"""The scorecard: every explainer x every metric on a batch, as one tidy table users can sort, filter and plot.

``scorecard(model, inputs, targets, {"Saliency": fn, "RLD": explainer}, masks=...)`` returns a ``pandas.DataFrame``
with one row per image x explainer x metric: ``image, explainer, metric, family, score, higher_is_better, status,
reason, seconds``. Bad input never aborts the table silently or yields a wrong number: an explainer that fails on an
image, returns maps of the wrong shape or NaN maps gets its rows marked ``status="failed"`` with the reason, a metric
that fails (or returns NaN, e.g. for an empty mask) likewise; every other row is kept. Arguments that make the whole
table meaningless (inputs, targets, masks of the wrong shape, a localisation metric without masks) raise ValueError.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from workbench.evaluation import complexity, faithfulness, localisation, randomisation, robustness
from workbench.evaluation.base import ExplainFn, Metric, as_explain_fn, check_maps, check_masks
from workbench.validation import check_images, check_target

if TYPE_CHECKING:  # pandas (~35 MB) is imported when a scorecard is built, not by every dashboard kernel
    import pandas as pd

try:  # a widget in notebooks, text in a terminal; optional on a bare GPU box
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover
    tqdm = None

METRICS: dict[str, type[Metric]] = {cls.name: cls for cls in (
    faithfulness.PixelFlipping, faithfulness.RegionPerturbation, faithfulness.ROAD,
    faithfulness.FaithfulnessCorrelation, faithfulness.Deletion, faithfulness.Insertion,
    localisation.RelevanceMassAccuracy, localisation.RelevanceRankAccuracy, localisation.PointingGame,
    randomisation.MPRT, randomisation.RandomLogit, robustness.MaxSensitivity, robustness.LocalLipschitzEstimate,
    complexity.Sparseness, complexity.Complexity)}
COLUMNS = ["image", "explainer", "metric", "family", "score", "higher_is_better", "status", "reason", "seconds"]


def default_metrics(masks: bool = False) -> list[Metric]:
    """Every metric with its Quantus defaults, except the localisation metrics when there are no masks."""
    return [cls() for cls in METRICS.values() if masks or not cls.needs_masks]


def cheap_metrics(shape: tuple[int, ...]) -> list[Metric]:
    """Metrics that score a batch of small images in seconds on a CPU (the scorecard view's preset): RISE
    deletion/insertion, pixel flipping in 64 steps, faithfulness correlation (20 runs), max-sensitivity (8 samples),
    random logit, sparseness and complexity. MPRT re-explains once per layer (13 for the digits' classifier), too
    slow for a sampling explainer on a CPU; the view's MPRT button runs it on the chosen image."""
    features = math.prod(shape)
    step = next(s for s in range(max(1, features // 64), features + 1) if features % s == 0)
    return [faithfulness.Deletion(), faithfulness.Insertion(), faithfulness.PixelFlipping(features_in_step=step),
            faithfulness.FaithfulnessCorrelation(nr_runs=20, subset_size=max(1, features // 8)),
            robustness.MaxSensitivity(nr_samples=8), randomisation.RandomLogit(), complexity.Sparseness(),
            complexity.Complexity()]


def resolve_metrics(metrics: Sequence[Metric | str] | Mapping[str, Metric] | None, masks: bool) -> list[Metric]:
    """Metric objects from names (``"PixelFlipping"``), objects, or None (``default_metrics``)."""
    if metrics is None:
        return default_metrics(masks)
    items = list(metrics.values()) if isinstance(metrics, Mapping) else list(metrics)
    out = []
    for m in items:
        if isinstance(m, str):
            if m not in METRICS:
                raise ValueError(f"unknown metric {m!r}; known: {sorted(METRICS)}")
            m = METRICS[m]()
        if not isinstance(m, Metric):
            raise TypeError(f"metrics must be names or workbench.evaluation metrics; got {type(m).__name__}")
        if m.needs_masks and not masks:
            raise ValueError(f"{m.name} is a localisation metric and needs ground-truth masks; pass masks=(B, H, W) "
                             f"boolean tensor or leave it out of `metrics`")
        out.append(m)
    return out


@contextlib.contextmanager
def eval_mode(model: nn.Module | Callable[..., Any]) -> Iterator[None]:
    """Evaluate in eval mode (no dropout, running norm statistics) and restore the model's mode afterwards."""
    was_training = isinstance(model, nn.Module) and model.training
    if was_training:
        model.eval()
    try:
        yield
    finally:
        if was_training:
            model.train()


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _explain_all(explain: ExplainFn, model: nn.Module, x: torch.Tensor, t: torch.Tensor) -> tuple[
        list[torch.Tensor], dict[int, str]]:
    """Raw maps from one call for the batch or, when that call raises, one call per image (failures by image)."""
    try:
        return [torch.as_tensor(explain(model, x, t))], {}
    except Exception:  # noqa: BLE001 - retried image by image to find which images fail and why
        pass
    raw, failed = [], {}
    for i in range(x.shape[0]):
        try:
            raw.append(torch.as_tensor(explain(model, x[i:i + 1], t[i:i + 1])))
        except Exception as exc:  # noqa: BLE001 - reported in the row, the other images go on
            failed[i] = f"explainer failed: {_reason(exc)}"
    return raw, failed


def _maps_for(explain: ExplainFn, model: nn.Module, x: torch.Tensor, t: torch.Tensor) -> tuple[
        torch.Tensor | None, dict[int, str]]:
    """Maps (B, C', H, W) and the reasons of the images that have none: the explainer raised on them, returned maps
    of the wrong shape, or NaN/Inf values."""
    raw, failed = _explain_all(explain, model, x, t)
    index = [i for i in range(x.shape[0]) if i not in failed]
    if not index:
        return None, failed
    try:
        maps = check_maps(torch.cat([r.detach().to(x.device).float() for r in raw]), x[index], finite=False)
    except (ValueError, RuntimeError) as exc:
        return None, {i: f"explainer returned bad maps: {_reason(exc)}" for i in range(x.shape[0])}
    full = torch.zeros(x.shape[0], *maps.shape[1:], device=x.device)
    full[index] = maps
    for i in index:
        if not torch.isfinite(full[i]).all():
            failed[i] = "explainer returned a map with NaN/Inf values"
    return full, failed


def _scores(metric: Metric, model: nn.Module, x: torch.Tensor, t: torch.Tensor, maps: torch.Tensor,
            masks: torch.Tensor | None, explain: ExplainFn, seed: int, index: list[int]) -> dict[int, float | str]:
    """Scores (float) or failure reasons (str) by image: one batched call, image by image if it fails."""
    def run(rows: list[int]) -> torch.Tensor:
        gen = torch.Generator(device=x.device).manual_seed(seed)
        return metric(model, x[rows], t[rows], maps[rows], masks[rows] if masks is not None else None,
                      explain if metric.needs_explain else None, gen)

    try:
        return dict(zip(index, run(index).tolist(), strict=True))
    except Exception:  # noqa: BLE001 - retried image by image
        pass
    out: dict[int, float | str] = {}
    for i in index:
        try:
            out[i] = float(run([i])[0])
        except Exception as exc:  # noqa: BLE001 - reported in the row
            out[i] = f"metric failed: {_reason(exc)}"
    return out


def scorecard(model: nn.Module, inputs: torch.Tensor, targets: int | Sequence[int] | torch.Tensor | None,
              explainers: Mapping[str, ExplainFn | Any], metrics: Sequence[Metric | str] | None = None,
              masks: torch.Tensor | None = None, device: str | torch.device | None = None, seed: int = 0,
              progress: bool = True, on_step: Callable[[str, str], None] | None = None) -> pd.DataFrame:
    """Score every explainer with every metric on a batch; one row per image x explainer x metric.

    ``explainers`` maps a name to an ``explain_fn(model, inputs, targets) -> maps`` (Quantus's convention) or an
    explainer with Captum's ``.attribute(inputs, target=...)``. ``targets`` None explains the predicted classes.
    ``masks`` (boolean (B, H, W)) enables the localisation metrics. Everything runs on ``device`` (default: the
    model's; another device moves the model there). Each metric draws its randomness from a ``torch.Generator``
    seeded with ``seed``, so a row does not depend on which other metrics or explainers are in the table.
    ``seconds`` is the metric's time for the batch divided by its number of images. ``on_step(explainer, metric)``
    is called before each explainer x metric is scored (a page's progress bar; ``progress`` is a tqdm bar).
    """
    if not explainers:
        raise ValueError("explainers is empty; pass {name: explain_fn or explainer}")
    dev = torch.device(device) if device is not None else _model_device(model)
    if device is not None and isinstance(model, nn.Module):
        model.to(dev)
    x = check_images(inputs, "inputs").to(dev)
    m = check_masks(masks, x) if masks is not None else None
    chosen = resolve_metrics(metrics, masks is not None)
    rows: list[dict[str, Any]] = []
    with eval_mode(model):
        with torch.no_grad():
            predicted = model(x).argmax(-1)
        t = check_target(targets, x.shape[0], name="targets")
        t = predicted if t is None else t.to(dev)
        bar = tqdm(total=len(explainers) * len(chosen), desc="scorecard", disable=not progress, leave=False) \
            if tqdm is not None else None
        for name, explainer in explainers.items():
            explain = as_explain_fn(explainer, model)
            maps, failed = _maps_for(explain, model, x, t)
            index = [i for i in range(x.shape[0]) if i not in failed]
            for metric in chosen:
                if on_step is not None:
                    on_step(name, metric.name)
                start = time.perf_counter()
                scores = _scores(metric, model, x, t, maps, m, explain, seed, index) if index else {}
                seconds = (time.perf_counter() - start) / max(1, len(index))
                scores.update(failed)
                rows += [_row(i, name, metric, scores[i], seconds) for i in range(x.shape[0])]
                if bar is not None:
                    bar.update(1)
        if bar is not None:
            bar.close()
    import pandas as pd

    return pd.DataFrame(rows, columns=COLUMNS)


def _row(image: int, explainer: str, metric: Metric, score: float | str, seconds: float) -> dict[str, Any]:
    ok = isinstance(score, float) and score == score  # NaN != NaN
    reason = score if isinstance(score, str) else ("" if ok else "metric returned NaN (e.g. an empty mask)")
    return {"image": image, "explainer": explainer, "metric": metric.name, "family": metric.family,
            "score": score if ok else float("nan"), "higher_is_better": metric.higher_is_better,
            "status": "ok" if ok else "failed", "reason": reason, "seconds": seconds}


def _model_device(model: nn.Module | Callable[..., Any]) -> torch.device:
    if isinstance(model, nn.Module):
        for p in model.parameters():
            return p.device
    return torch.device("cpu")
