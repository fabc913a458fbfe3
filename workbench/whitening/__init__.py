"""Interpretable face-manipulation detection via feature whitening (Hua, Zhang, Wang, Ge, arXiv:2106.10834).

The paper (only its abstract is public) embeds a feature-whitening module that decorrelates a detector's channels
(feature decorrelation) and aligns them with concepts (feature constraint). Our reconstruction follows the group's
public follow-up code (IFFD), which uses Concept Whitening's IterNormRotation (Chen, Bei & Rudin, Nat. Mach. Intell.
2020):

* ``IterNormWhitening``: grouped ZCA whitening by Newton–Schulz iteration (IterNorm, Huang et al. CVPR 2019), with
  running mean / whitening matrix for eval; gradients flow by autograd through the ``T`` iterations.
* ``ConceptRotation``: an orthogonal matrix R applied after whitening, updated *outside* back-propagation by a
  Cayley transform with a curvilinear line search (Wen & Yin 2013), so that rotated channel k fires maximally on
  concept k. Concepts are names: facial regions of ``workbench.data.faces.FACE_REGIONS`` (on real faces),
  ``"manipulated"`` (fakes, weighted by their true mask), ``"real"`` or ``"fake"`` (whole images of one class).
* ``WhiteningBlock`` = whitening + rotation (+ optional affine), a drop-in for a ``BatchNorm2d``
  (``replace_batchnorm``); ``WhiteningDetector`` = ``SmallCNN`` with the block at a configurable depth, or with
  its plain BatchNorm as the baseline. Channel maps and the layer's input/output are reachable without hooks
  (``forward_internals`` -> ``DetectorInternals``).

Ours, not the paper's: the small grey 32x32 backbone, AdamW, the concept set (default: the "manipulated" concept on
channel 0 plus eyes / nose / mouth), aligning every ``align_every`` steps on one batch per concept, and after
training a recalibration of the whitening on the whole training set (T = 20) with a refit of the linear head (the SBI
recipe also re-aligns the concept rotation to the recalibrated whitening before the refit).

The package, split the way pytracking splits a tracker: ``layers`` (whitening, rotation, block), ``model`` (the
detector and its concepts), ``maps`` (channel maps, Grad-CAM, gallery), ``metrics`` (decorrelation, pointing game,
P(fake) / AUC), ``reading`` (how a user's photo is fed to a detector: the SBI detectors' tinted-grey input step, and
the sentence that says which model read it; ours), ``recipe`` (the frozen-dataclass recipe, training step, cached
model). Everything public is importable from ``workbench.whitening``.
"""

from workbench.whitening.layers import (
    ConceptRotation,
    IterNormWhitening,
    WhiteningBlock,
    batchnorm_layers,
    batchnorm_or_whitening_layers,
    replace_batchnorm,
)
from workbench.whitening.maps import (
    ChannelGallery,
    all_channel_maps,
    channel_gallery,
    channel_maps,
    channel_region_scores,
    gradcam_maps,
    sigmoid_maps,
)
from workbench.whitening.metrics import (
    FaceReading,
    channel_correlation,
    evaluate_detector,
    layer_correlations,
    mean_abs_offdiagonal,
    mean_offdiag_correlation,
    pointing_game,
    pointing_per_channel,
    predict_fake_proba,
    read_face,
)
from workbench.whitening.model import (
    CLASS_CONCEPTS,
    DEFAULT_CONCEPTS,
    DetectorInternals,
    WhiteningDetector,
    concept_weights,
)
from workbench.whitening.reading import (
    LUMA,
    reader_sentence,
    reading_domain,
    reading_input,
    tinted_grey,
    trained_on,
)
from workbench.whitening.recipe import (
    WHITENING_FULL,
    WHITENING_SBI,
    WHITENING_SBI_SMOKE,
    WHITENING_SMOKE,
    SbiWhiteningRecipe,
    WhiteningRecipe,
    build_detector,
    calibrate_detector,
    detector_config,
    make_step,
    train_detector,
    training_data,
    whitening_detector,
)

__all__ = [
    "ConceptRotation", "IterNormWhitening", "WhiteningBlock", "batchnorm_layers", "batchnorm_or_whitening_layers",
    "replace_batchnorm",
    "ChannelGallery", "all_channel_maps", "channel_gallery", "channel_maps", "channel_region_scores", "gradcam_maps",
    "sigmoid_maps",
    "channel_correlation", "evaluate_detector", "layer_correlations", "mean_abs_offdiagonal",
    "mean_offdiag_correlation", "pointing_game", "pointing_per_channel", "predict_fake_proba",
    "FaceReading", "LUMA", "read_face", "reader_sentence", "reading_domain", "reading_input", "tinted_grey",
    "trained_on",
    "CLASS_CONCEPTS", "DEFAULT_CONCEPTS", "DetectorInternals", "WhiteningDetector", "concept_weights",
    "WHITENING_FULL", "WHITENING_SBI", "WHITENING_SBI_SMOKE", "WHITENING_SMOKE", "SbiWhiteningRecipe",
    "WhiteningRecipe", "build_detector",
    "calibrate_detector", "detector_config", "make_step",
    "train_detector", "training_data", "whitening_detector",
]
