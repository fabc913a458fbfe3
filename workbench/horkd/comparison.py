"""Telling HORKD's students apart: paired tests across seeds (the benchmark) and where their errors differ (the
dashboard and the notebook).

Seeds are paired: seed ``s`` gives every method the same student initialisation and data order, so the per-seed
difference between two methods removes most of the seed-to-seed variation. For each pair we report the mean
difference, its standard deviation, the paired t-test and the sign test p-values, and whether the mean difference
exceeds the *seed spread* (the larger standard deviation over seeds of the two methods, the criterion the README
used before: a difference smaller than that is within what re-running with other seeds moves).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from workbench.horkd.recipe import METHODS, low_res_input
from workbench.train import predict

#: (method, reference) pairs the benchmark tests: every distiller against scratch, HORKD against every baseline
DEFAULT_PAIRS: tuple[tuple[str, str], ...] = (
    ("hinton", "scratch"), ("rkd", "scratch"), ("horkd_no_assistant", "scratch"), ("horkd", "scratch"),
    ("horkd", "hinton"), ("horkd", "rkd"), ("horkd", "horkd_no_assistant"),
)


def _per_seed(rows: Iterable[Mapping[str, Any]], method: str, resolution: int, metric: str = "top1"
              ) -> dict[int, float]:
    return {int(r["seed"]): float(r[metric]) for r in rows if r["method"] == method and r["resolution"] == resolution}


def seed_summary(rows: Sequence[Mapping[str, Any]], method: str, resolution: int, metric: str = "top1"
                 ) -> dict[str, float]:
    """Mean, sample standard deviation (ddof=1; 0 for one seed) and number of seeds of a method's ``metric`` (a key
    of the rows: ``top1``, or ``rank1``/``auc`` for faces)."""
    values = np.array(list(_per_seed(rows, method, resolution, metric).values()))
    if not len(values):
        return {"mean": math.nan, "std": math.nan, "n": 0}
    return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "n": len(values)}


def paired_comparison(rows: Sequence[Mapping[str, Any]], method: str, reference: str, resolution: int,
                      metric: str = "top1") -> dict[str, Any]:
    """``method - reference`` of ``metric`` at ``resolution`` over the seeds both have: mean and std of the per-seed
    differences, wins/losses, paired t-test and two-sided sign-test p-values, and ``exceeds_spread``."""
    from scipy import stats

    a, b = _per_seed(rows, method, resolution, metric), _per_seed(rows, reference, resolution, metric)
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        raise ValueError(f"a paired test needs at least 2 seeds trained for both {method!r} and {reference!r} at "
                         f"{resolution}x{resolution}; got {seeds}")
    diff = np.array([a[s] - b[s] for s in seeds])
    wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
    if np.allclose(diff, diff[0], rtol=0, atol=1e-12):  # constant differences: the t statistic is undefined
        t_p = 1.0 if abs(diff[0]) <= 1e-12 else 0.0
    else:
        t_p = float(stats.ttest_rel([a[s] for s in seeds], [b[s] for s in seeds]).pvalue)
    sign_p = float(stats.binomtest(wins, wins + losses).pvalue) if wins + losses else 1.0
    spread = max(seed_summary(rows, method, resolution, metric)["std"],
                 seed_summary(rows, reference, resolution, metric)["std"])
    mean = float(diff.mean())
    return {"method": method, "reference": reference, "resolution": resolution, "metric": metric, "seeds": len(seeds),
            "mean_diff": mean, "std_diff": float(diff.std(ddof=1)), "wins": wins, "losses": losses,
            "t_p": t_p, "sign_p": sign_p, "spread": spread, "exceeds_spread": bool(abs(mean) > spread)}


def paired_comparisons(rows: Sequence[Mapping[str, Any]], resolutions: Sequence[int],
                       pairs: Sequence[tuple[str, str]] = DEFAULT_PAIRS, metric: str = "top1"
                       ) -> list[dict[str, Any]]:
    """``paired_comparison`` for every pair and resolution (pairs whose methods were not trained are skipped)."""
    out = []
    for r in resolutions:
        for method, reference in pairs:
            if len(set(_per_seed(rows, method, r, metric)) & set(_per_seed(rows, reference, r, metric))) >= 2:
                out.append(paired_comparison(rows, method, reference, r, metric))
    return out


# ---------------------------------------------------------------------------------- where the errors differ
@torch.no_grad()
def student_predictions(students: Mapping[str, torch.nn.Module], hr_images: torch.Tensor, resolution: int
                        ) -> dict[str, np.ndarray]:
    """Predicted class of every student (name -> model fed the ``resolution`` view) for each HR test image."""
    low_res = low_res_input(hr_images, resolution)
    return {name: predict(model, low_res).argmax(1).numpy() for name, model in students.items()}


def per_class_accuracy(predictions: Mapping[str, np.ndarray], labels: torch.Tensor | np.ndarray,
                       num_classes: int) -> dict[str, np.ndarray]:
    """Top-1 of each student on each class (NaN for a class with no test image)."""
    y = np.asarray(labels)
    counts = np.bincount(y, minlength=num_classes).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {name: np.bincount(y[p == y], minlength=num_classes) / counts for name, p in predictions.items()}


def disagreement_matrix(predictions: Mapping[str, np.ndarray], labels: torch.Tensor | np.ndarray
                        ) -> tuple[list[str], np.ndarray]:
    """``M[i, j]``: the fraction of test images student ``i`` classifies correctly and student ``j`` does not.

    ``M[i, j] - M[j, i]`` is the accuracy difference of the pair; a large ``M[i, j] + M[j, i]`` with a small
    difference means two students of equal accuracy that fail on different images.
    """
    y = np.asarray(labels)
    names = [m for m in METHODS if m in predictions] + [m for m in predictions if m not in METHODS]
    right = np.stack([predictions[n] == y for n in names]).astype(float)
    return names, right @ (1 - right).T / max(len(y), 1)


def right_wrong_examples(predictions: Mapping[str, np.ndarray], labels: torch.Tensor | np.ndarray, right: str,
                         wrong: str, limit: int = 8) -> np.ndarray:
    """Indices of up to ``limit`` test images student ``right`` classifies correctly and ``wrong`` does not,
    spread over the classes (one per class in turn)."""
    for name in (right, wrong):
        if name not in predictions:
            raise ValueError(f"no predictions for student {name!r}; have {sorted(predictions)}")
    y = np.asarray(labels)
    hit = np.flatnonzero((predictions[right] == y) & (predictions[wrong] != y))
    by_class = [list(hit[y[hit] == c]) for c in np.unique(y[hit])]
    picked = [group[i] for i in range(max((len(g) for g in by_class), default=0)) for group in by_class
              if i < len(group)]
    return np.array(picked[:limit], dtype=int)


@dataclass
class StudentErrors:
    """Where the students' errors differ at one trained resolution: predictions on the held-out set, per-class
    top-1 (students x classes), the disagreement matrix (``disagreement_matrix``) and the students' order in it."""

    resolution: int
    labels: np.ndarray
    classes: tuple[str, ...]
    predictions: dict[str, np.ndarray]
    per_class: dict[str, np.ndarray]
    names: list[str]
    disagreement: np.ndarray

    def accuracy(self, name: str) -> float:
        """Top-1 of student ``name`` on the held-out set."""
        return float((self.predictions[name] == self.labels).mean())

    def examples(self, right: str, wrong: str, limit: int = 8) -> np.ndarray:
        """Test indices ``right`` classifies correctly and ``wrong`` does not (``right_wrong_examples``)."""
        return right_wrong_examples(self.predictions, self.labels, right, wrong, limit)


def student_errors(students: Mapping[str, torch.nn.Module], hr_images: torch.Tensor, labels: torch.Tensor,
                   classes: Sequence[str], resolution: int) -> StudentErrors:
    """Every view of where the ``students`` (name -> model trained at ``resolution``) err differently."""
    predictions = student_predictions(students, hr_images, resolution)
    y = labels.numpy()
    names, matrix = disagreement_matrix(predictions, y)
    return StudentErrors(resolution, y, tuple(classes), predictions,
                         per_class_accuracy(predictions, y, len(classes)), names, matrix)
