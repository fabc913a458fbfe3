"""Explainers behind one contract (Captum's ``Attribution`` shape): ``attribute(inputs, target=None) -> maps``.

:mod:`~workbench.explainers.base` holds the :class:`Explainer` base (validation, target resolution, device, per-image
status), :mod:`~workbench.explainers.baselines` the baseline explainers the workbench's methods are compared with
(Captum, lime, random), :mod:`~workbench.explainers.blackbox` the :class:`BlackBox` wrapper of a model one can only
query (gradient explainers refuse it), :mod:`~workbench.explainers.registry` :func:`make_explainer`, which also
builds re-label distillation (:mod:`workbench.relabel`) given a VAE.
"""

from workbench.explainers.base import DEGENERATE_STATUSES, OK, Explainer, ForwardFunc, TargetType, require
from workbench.explainers.baselines import (
    BASELINE_CLASSES,
    BASELINES,
    SAMPLING_BASELINES,
    SEGMENTATIONS,
    CaptumGradCam,
    CaptumIntegratedGradients,
    CaptumKernelShap,
    CaptumLime,
    CaptumOcclusion,
    CaptumSaliency,
    LimeImage,
    RandomMap,
    default_cell,
    superpixels,
)
from workbench.explainers.blackbox import BLACK_BOX_EXPLAINERS, BlackBox, is_black_box, refuse_black_box
from workbench.explainers.registry import (
    DEFAULT_BASELINES,
    EXPLAINERS,
    available_explainers,
    baseline_kwargs,
    baseline_maps,
    make_explainer,
)

__all__ = [
    "BLACK_BOX_EXPLAINERS", "BlackBox", "is_black_box", "refuse_black_box",
    "DEGENERATE_STATUSES", "OK", "Explainer", "ForwardFunc", "TargetType", "require",
    "BASELINE_CLASSES", "BASELINES", "SAMPLING_BASELINES", "SEGMENTATIONS", "CaptumGradCam",
    "CaptumIntegratedGradients", "CaptumKernelShap", "CaptumLime", "CaptumOcclusion", "CaptumSaliency", "LimeImage",
    "RandomMap", "default_cell", "superpixels",
    "DEFAULT_BASELINES", "EXPLAINERS", "available_explainers", "baseline_kwargs", "baseline_maps", "make_explainer",
]
