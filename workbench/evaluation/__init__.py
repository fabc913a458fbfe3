"""Evaluation of explanations: Quantus-compatible metrics, batched in torch, and a scorecard that scores every
explainer x metric on a batch (issue 11).

Families and metrics (names and definitions as Quantus 0.6 defines them; each declares ``higher_is_better``):

- faithfulness: ``PixelFlipping``, ``RegionPerturbation``, ``ROAD``, ``FaithfulnessCorrelation``, plus RISE's
  ``Deletion`` / ``Insertion`` (``workbench.metrics``);
- localisation (needs ground-truth masks): ``RelevanceMassAccuracy``, ``RelevanceRankAccuracy``, ``PointingGame``;
- randomisation (re-explains): ``MPRT`` (model parameter randomisation, top-down), ``RandomLogit``;
- robustness (re-explains): ``MaxSensitivity``, ``LocalLipschitzEstimate``;
- complexity: ``Sparseness``, ``Complexity``.

Quantus itself (LGPL/GPL) is never imported here; the tests compare against it.
"""

from workbench.evaluation.base import (
    FAMILIES,
    Batch,
    ExplainFn,
    Metric,
    as_explain_fn,
    input_gradient,
    normalise_by_max,
)
from workbench.evaluation.complexity import Complexity, Sparseness
from workbench.evaluation.faithfulness import (
    ROAD,
    Deletion,
    FaithfulnessCorrelation,
    Insertion,
    PixelFlipping,
    RegionPerturbation,
    linear_imputation,
)
from workbench.evaluation.localisation import PointingGame, RelevanceMassAccuracy, RelevanceRankAccuracy
from workbench.evaluation.randomisation import MPRT, MPRTResult, RandomLogit, randomised_models
from workbench.evaluation.robustness import LocalLipschitzEstimate, MaxSensitivity
from workbench.evaluation.scorecard import METRICS, cheap_metrics, default_metrics, scorecard

__all__ = [
    "FAMILIES", "METRICS", "MPRT", "ROAD", "Batch", "Complexity", "Deletion", "ExplainFn", "FaithfulnessCorrelation",
    "Insertion", "LocalLipschitzEstimate", "MPRTResult", "MaxSensitivity", "Metric", "PixelFlipping", "PointingGame",
    "RandomLogit", "RegionPerturbation", "RelevanceMassAccuracy", "RelevanceRankAccuracy", "Sparseness",
    "as_explain_fn", "cheap_metrics", "default_metrics", "input_gradient", "linear_imputation", "normalise_by_max",
    "randomised_models", "scorecard",
]
