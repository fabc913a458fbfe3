"""Correlation-filter tracking with channel distillation (Ge et al., "Distilling Channels for Efficient Deep
Tracking", IEEE TIP 2020): sequences, feature extractors, DCF and ECO-style trackers with and without channel
distillation, OpenCV anchors, and OTB one-pass evaluation.

Quick start::

    from workbench.tracking import DCFTracker, ChannelDistillation, make_sequence, run_sequence, evaluate
    seq = make_sequence("occlusion", seed=0)
    result = run_sequence(DCFTracker(channel_distillation=ChannelDistillation()), seq, record=True)
    print(result.score.success_auc, result.fps, result.telemetry[5].kept_channels, result.profile)

``result.profile`` is the mean cost per frame of each stage (``STAGES``: features, FFT, filter solve, scale search,
channel scoring); ``GOT10kTracker`` and ``PyTrackingTracker`` (``workbench.tracking.adapters``) put any tracker in
the got10k toolkit's and pytracking's shapes.

Hyper-parameters are frozen presets (``DCFParams``, ``ECOParams`` and their CD variants ``DCFCDParams``,
``ECOCDParams``, in ``workbench.tracking.params``), passed as ``params=``. ``CNNFeatures`` and
``torchvision_features`` (in ``workbench.tracking.cnn``) and ``project_cnn_features`` (the project's own pre-trained
CNN, ``workbench.tracking.pretrained``) import torch on first use.
"""

from __future__ import annotations

from typing import Any

from workbench.tracking.adapters import GOT10kTracker, PyTrackingTracker
from workbench.tracking.base import STAGES, FrameTelemetry, Tracker, check_box, check_frame
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
from workbench.tracking.params import CorrelationParams, DCFCDParams, DCFParams, ECOCDParams, ECOParams
from workbench.tracking.runner import TrackingResult, frames_per_second, run_sequence
from workbench.tracking.scale import ScaleFilter, ScaleFilterParams
from workbench.tracking.sequences import (
    ATTRIBUTES,
    Sequence,
    development_sequence_path,
    load_otb,
    load_otb_dataset,
    make_sequence,
)

__all__ = [
    "ATTRIBUTES",
    "CNNFeatures",
    "ChannelDistillation",
    "CorrelationParams",
    "CorrelationTracker",
    "DCFCDParams",
    "DCFParams",
    "ScaleFilter",
    "ScaleFilterParams",
    "DCFTracker",
    "ECOCDParams",
    "ECOParams",
    "ECOTracker",
    "FeatureExtractor",
    "FrameTelemetry",
    "GOT10kTracker",
    "HOGColorFeatures",
    "OPEResult",
    "OpenCVTracker",
    "PyTrackingTracker",
    "STAGES",
    "Sequence",
    "Tracker",
    "TrackingResult",
    "center_error",
    "check_box",
    "check_frame",
    "development_sequence_path",
    "evaluate",
    "frames_per_second",
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
    if name == "project_cnn_features":
        from workbench.tracking import pretrained

        return getattr(pretrained, name)
    raise AttributeError(f"module 'workbench.tracking' has no attribute {name!r}")
