"""OTB one-pass evaluation (OPE): overlap and centre error per frame, success and precision curves.

Follows Wu, Lim, Yang, "Online Object Tracking: A Benchmark" (CVPR 2013): success is the fraction of frames whose
overlap (IoU) exceeds a threshold, over 21 thresholds 0, 0.05, ..., 1, summarised by the curve's mean (the AUC the
OTB toolkit reports); precision is the fraction of frames whose centre error is at most a threshold, over
0..50 px, reported at 20 px. Frames whose ground truth is NaN (no annotation) are left out. The conventions are
the got10k toolkit's (``ExperimentOTB``): success counts IoU strictly above each of ``linspace(0, 1, 21)``,
precision centre errors at most each threshold, centres at ``x + (w - 1) / 2`` (a test checks these on the same
boxes against got10k's formulas).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SUCCESS_THRESHOLDS = np.linspace(0.0, 1.0, 21)
PRECISION_THRESHOLDS = np.arange(0, 51, dtype=float)


def _as_boxes(boxes: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name} must be (N, 4) boxes (x, y, w, h), got shape {arr.shape}")
    return arr


def _pair(predicted: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, t = _as_boxes(predicted, "predicted"), _as_boxes(truth, "ground truth")
    if len(p) != len(t):
        raise ValueError(f"{len(p)} predicted boxes for {len(t)} ground-truth boxes; one per frame expected")
    return p, t


def iou(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Intersection over union of each pair of (x, y, w, h) boxes, ``(N,)``; NaN where the truth is NaN."""
    p, t = _pair(predicted, truth)
    x0 = np.maximum(p[:, 0], t[:, 0])
    y0 = np.maximum(p[:, 1], t[:, 1])
    x1 = np.minimum(p[:, 0] + p[:, 2], t[:, 0] + t[:, 2])
    y1 = np.minimum(p[:, 1] + p[:, 3], t[:, 1] + t[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = p[:, 2] * p[:, 3] + t[:, 2] * t[:, 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        overlap = np.where(union > 0, inter / union, 0.0)
    return np.where(np.isnan(t).any(axis=1), np.nan, overlap)


def center_error(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Euclidean distance in pixels between box centres, ``(N,)``; NaN where the truth is NaN."""
    p, t = _pair(predicted, truth)
    # got10k's centres, x + (w - 1) / 2: the -1/2 cancels in the difference, but the floats then match exactly
    cp = p[:, :2] + (p[:, 2:] - 1) / 2
    ct = t[:, :2] + (t[:, 2:] - 1) / 2
    return np.sqrt(np.sum((cp - ct) ** 2, axis=1))


def success_curve(overlaps: np.ndarray, thresholds: np.ndarray = SUCCESS_THRESHOLDS) -> np.ndarray:
    """Fraction of (annotated) frames with overlap strictly above each threshold."""
    valid = np.asarray(overlaps, dtype=float)
    valid = valid[~np.isnan(valid)]
    if valid.size == 0:
        raise ValueError("no annotated frames to evaluate")
    return (valid[None, :] > np.asarray(thresholds)[:, None]).mean(axis=1)


def precision_curve(errors: np.ndarray, thresholds: np.ndarray = PRECISION_THRESHOLDS) -> np.ndarray:
    """Fraction of (annotated) frames with centre error at most each threshold (pixels)."""
    valid = np.asarray(errors, dtype=float)
    valid = valid[~np.isnan(valid)]
    if valid.size == 0:
        raise ValueError("no annotated frames to evaluate")
    return (valid[None, :] <= np.asarray(thresholds)[:, None]).mean(axis=1)


@dataclass
class OPEResult:
    """One-pass evaluation of one sequence: the curves and their summaries."""

    success: np.ndarray
    precision: np.ndarray
    success_auc: float
    precision_at_20: float
    overlaps: np.ndarray
    errors: np.ndarray


def evaluate(predicted: np.ndarray, truth: np.ndarray) -> OPEResult:
    """OTB one-pass evaluation of ``predicted`` boxes against ``truth``, both ``(N, 4)`` (x, y, w, h)."""
    overlaps = iou(predicted, truth)
    errors = center_error(predicted, truth)
    success = success_curve(overlaps)
    precision = precision_curve(errors)
    return OPEResult(
        success=success,
        precision=precision,
        success_auc=float(success.mean()),
        precision_at_20=float(precision[PRECISION_THRESHOLDS.tolist().index(20.0)]),
        overlaps=overlaps,
        errors=errors,
    )
