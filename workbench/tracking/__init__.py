"""Correlation-filter tracking with channel distillation (Ge et al., "Distilling Channels for Efficient Deep
Tracking", IEEE TIP 2020): sequences, feature extractors, DCF and ECO-style trackers with and without channel
distillation, OpenCV anchors, and OTB one-pass evaluation.

Quick start::

    from workbench.tracking import DCFTracker, ChannelDistillation, make_sequence, run_sequence, evaluate
    seq = make_sequence("occlusion", seed=0)
    result = run_sequence(DCFTracker(channel_distillation=ChannelDistillation()), seq)
    print(evaluate(result.boxes, seq.ground_truth).success_auc, result.fps)

``CNNFeatures`` and ``torchvision_features`` (in ``workbench.tracking.cnn``) and ``project_cnn_features`` /
``gpu_check_tracking`` (the project's own pre-trained CNN, ``workbench.tracking.pretrained``) import torch on first use.
"""

from __future__ import annotations

from typing import Any

from workbench.tracking.base import Tracker, check_box, check_frame
from workbench.tracking.dcf import CorrelationTracker, DCFTracker
from workbench.tracking.distill import ChannelDistillation, select_channels
from workbench.tracking.eco import ECOTracker
from workbench.tracking.evaluation import (
    OPEResult,
    center_error,
    evaluate,
    iou,
    precision_curve,
    success_curve,
)
from workbench.tracking.features import FeatureExtractor, HOGColorFeatures
from workbench.tracking.opencv import OpenCVTracker
from workbench.tracking.runner import TrackingResult, run_sequence
from workbench.tracking.sequences import ATTRIBUTES, Sequence, load_otb, load_otb_dataset, make_sequence

__all__ = [
    "ATTRIBUTES",
    "CNNFeatures",
    "ChannelDistillation",
    "CorrelationTracker",
    "DCFTracker",
    "ECOTracker",
    "FeatureExtractor",
    "HOGColorFeatures",
    "OPEResult",
    "OpenCVTracker",
    "Sequence",
    "Tracker",
    "TrackingResult",
    "center_error",
    "check_box",
    "check_frame",
    "evaluate",
    "gpu_check_tracking",
    "iou",
    "load_otb",
    "load_otb_dataset",
    "make_sequence",
    "precision_curve",
    "project_cnn_features",
    "run_sequence",
    "select_channels",
    "success_curve",
    "torchvision_features",
]


def __getattr__(name: str) -> Any:
    """Import the torch-based extractors only when asked for."""
    if name in ("CNNFeatures", "torchvision_features"):
        from workbench.tracking import cnn

        return getattr(cnn, name)
    if name in ("project_cnn_features", "gpu_check_tracking"):
        from workbench.tracking import pretrained

        return getattr(pretrained, name)
    raise AttributeError(f"module 'workbench.tracking' has no attribute {name!r}")
