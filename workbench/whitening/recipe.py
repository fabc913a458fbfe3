"""The whitening detector's training recipe: a frozen dataclass (its ``asdict()`` is the cache key), the training
step with the concept alignment, and the cached model.

Ours, not the paper's: AdamW, aligning every ``align_every`` steps on one batch per concept, and after training a
recalibration of the whitening on the whole training set (``calibrate_T`` iterations) with a refit of the head.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from workbench.data.face_sbi import load_sbi_faces
from workbench.data.faces import ForgerySet, load_forgery_faces
from workbench.data.forgery_sets import FreshDraws
from workbench.data.sbi_masks import MASKS
from workbench.recipes import Recipe, optional_field
from workbench.train import cached_model, classification_loss, fit, model_device
from workbench.whitening.metrics import evaluate_detector
from workbench.whitening.model import DEFAULT_CONCEPTS, WhiteningDetector


@dataclass(frozen=True)
class WhiteningRecipe(Recipe):
    """Everything that makes a trained whitening detector; ``dataclasses.asdict`` of it is the cache key.

    Presets: ``WHITENING_FULL`` (the dashboard and benchmark default, about a minute on a 2-core CPU) and
    ``WHITENING_SMOKE`` (tests); change fields with ``dataclasses.replace`` (or ``detector_config``).
    Trains on the 32x32 grey embedded forgery faces (``load_forgery_faces``, ``train_kinds``); ``SbiWhiteningRecipe``
    trains on self-blended colour faces.
    """

    whiten: bool = True
    n_per_identity: int = 8
    epochs: int = 12
    width: int = 16
    batch_size: int = 32
    size: int = 32
    depth: int = 3
    layer: str = "features.2.4"
    num_groups: int = 1
    T: int = 5
    lr: float = 5e-3
    weight_decay: float = 5e-4
    align_every: int = 20
    seed: int = 0
    calibrate_T: int = 20
    calibrate: str = "layer statistics + head refit, both detectors"
    concepts: tuple[str, ...] = DEFAULT_CONCEPTS
    train_kinds: tuple[str, ...] = ("self_blend", "swap", "color", "warp")
    recipe: str = "whitening_detector"

    def __post_init__(self) -> None:  # lists given by a caller become tuples: hashable, and the same cache key
        object.__setattr__(self, "concepts", tuple(self.concepts))
        object.__setattr__(self, "train_kinds", tuple(self.train_kinds))

    @classmethod
    def smoke(cls) -> WhiteningRecipe:
        """6 faces per identity, 10 epochs, width 8 (``WHITENING_SMOKE``)."""
        return cls(n_per_identity=6, epochs=10, width=8)

    @classmethod
    def sbi(cls, smoke: bool = False) -> SbiWhiteningRecipe:
        """The colour self-blended preset (``WHITENING_SBI``, or ``WHITENING_SBI_SMOKE`` with ``smoke``)."""
        return SbiWhiteningRecipe.preset(smoke)


@dataclass(frozen=True)
class SbiWhiteningRecipe(WhiteningRecipe):
    """A whitening recipe on colour self-blended images at ``size`` px (``load_sbi_faces``) of ``face_source`` (a
    folder of face photos or video frames; "" = the embedded colour faces), with compression / resize / blur /
    noise augmentation in training (Shiohara & Yamasaki, CVPR 2022). ``n_per_identity`` = images per face.

    Ours, not the paper's (issue 16's measured causes, ``benchmarks/whitening.py --sbi``):

    * ``blur_p``: probability of the Gaussian blur in training augmentation (``load_sbi_faces``; 0.35 there by
      default): a blur erases the frequency mismatch the detector keys on, so it must see more blurred blends.
    * ``colour_p``: probability of a colour jitter of the whole image in training augmentation (SBI's training code
      does this, p = 0.3 per kind of jitter): the whitening statistics are estimated on the training faces, and a
      held-out face of unusual colour (a saturated background) otherwise lands in directions of tiny training
      variance, which the full whitening amplifies, so its channels come out correlated.
    * ``calibrate_clean``: the after-training calibration (whitening statistics / BatchNorm statistics + head
      refit, both detectors) runs on the training images with *and* without augmentation: held-out images are
      clean, and whitening statistics of only augmented (blurred, compressed) images leave clean features
      correlated.
    * ``realign_steps``: the concept rotation was aligned against the training-time (T = 5, running-average)
      whitening; the calibration replaces that whitening by a full one (T = ``calibrate_T``), which changes the
      whitened basis, so the rotation is re-aligned (``realign_steps`` updates on training batches) and the head
      refitted after it. Without this the concept channel points at a direction that no longer means the concept.
    * ``fresh_draws``: every epoch trains on new blends and augmentations of the training faces (``FreshDraws``;
      the paper's blends are made on the fly too); epoch 0's draw also serves the concept alignment, and the
      calibration runs over every epoch's draw. One fixed draw of 8 blends per face for 10 epochs let the detectors
      learn those blends (development faces, 3 seeds, AUC under blur 0.713 / 0.699 whitened / plain); fresh draws
      for 20 epochs: 0.752 / 0.724, clean 0.789 / 0.792 (``benchmarks/results/whitening_sbi.md``).
      ``calibrate_max_images`` bounds the draws the calibration holds (images at 64 px, scaled by (64 / size)^2;
      the un-augmented copies come on top): a large face folder calibrates on fewer draws, at least one.
    * ``mask``: the blend mask of the self-blends (``load_sbi_faces``): None / "box" (the landmark-free face
      region, the shipped weights' data; left out of the cache key) or "hull" (SBI's landmark convex hull, dlib's 68
      landmarks predicted on each crop). Issue 24 compares the two (``benchmarks/whitening.py --sbi --mask
      box,hull``, ``results/whitening_sbi_masks.md``).
    """

    face_source: str = ""
    blur_p: float = 0.35
    colour_p: float = 0.0
    calibrate_clean: bool = False
    realign_steps: int = 0
    fresh_draws: bool = False
    calibrate_max_images: int = 12_000
    mask: str | None = optional_field()
    recipe: str = "whitening_detector_sbi"

    def __post_init__(self) -> None:  # "box" is the default mask: the same recipe, the same key as None
        super().__post_init__()
        if self.mask not in (None, *MASKS):
            raise ValueError(f"mask must be one of {MASKS} (or None: 'box'); got {self.mask!r}")
        if self.mask == "box":
            object.__setattr__(self, "mask", None)

    @classmethod
    def full(cls) -> SbiWhiteningRecipe:
        """64 px colour, 20 epochs of fresh draws, blur / colour jitter, clean calibration and re-alignment."""
        return cls(size=64, n_per_identity=8, epochs=20, width=16, lr=3e-3, train_kinds=("self_blend",), blur_p=0.5,
                   colour_p=0.5, calibrate_clean=True, realign_steps=30, fresh_draws=True)

    @classmethod
    def smoke(cls) -> SbiWhiteningRecipe:
        """``full()`` on one image per face, 3 epochs, width 8, 5 re-alignment steps."""
        return cls.full().with_(n_per_identity=1, epochs=3, width=8, realign_steps=5)


#: the presets by name, as before issue 25 (``WhiteningRecipe.full()`` ... are the same recipes; 128 px on a GPU:
#: ``SbiWhiteningRecipe.full().with_(size=128)``)
WHITENING_FULL, WHITENING_SMOKE = WhiteningRecipe.full(), WhiteningRecipe.smoke()
WHITENING_SBI, WHITENING_SBI_SMOKE = SbiWhiteningRecipe.full(), SbiWhiteningRecipe.smoke()

DATA_SETTINGS = ("embedded", "sbi")


def in_channels_of(config: WhiteningRecipe) -> int:
    """Input channels of a recipe's detector: 1 (grey embedded faces) or 3 (colour self-blended images)."""
    return 3 if isinstance(config, SbiWhiteningRecipe) else 1


def detector_config(whiten: bool = True, smoke: bool = False, train_kinds: Sequence[str] | None = None,
                    data: str = "embedded", **overrides: Any) -> WhiteningRecipe:
    """The recipe of ``whitening_detector``: the smoke or full preset of ``data`` ("embedded": grey 32 px forgery
    faces; "sbi": colour self-blended images) with ``whiten``, ``train_kinds`` and any other field changed."""
    if data not in DATA_SETTINGS:
        raise ValueError(f"data must be one of {DATA_SETTINGS}; got {data!r}")
    changes: dict[str, Any] = {"whiten": whiten}
    if train_kinds:
        changes["train_kinds"] = tuple(train_kinds)
    changes.update(overrides)
    return (SbiWhiteningRecipe if data == "sbi" else WhiteningRecipe).preset(smoke).with_(**changes)


def build_detector(config: WhiteningRecipe) -> WhiteningDetector:
    """The untrained detector of a recipe (initial weights seeded by ``config.seed``)."""
    torch.manual_seed(config.seed)
    return WhiteningDetector(in_channels_of(config), config.width, config.depth, config.whiten, config.layer,
                             config.num_groups, config.T, concepts=config.concepts, image_size=config.size)


def make_step(align_every: int, align_batch: ForgerySet | None):
    """A ``fit`` step: cross-entropy, and for a whitened detector a concept alignment every ``align_every`` steps."""
    state = {"step": 0}
    gen = torch.Generator().manual_seed(0)

    def step(model: WhiteningDetector, batch: Any, device: torch.device):
        x, y = batch[0].to(device), batch[1].to(device)
        if model.whiten and align_batch is not None and state["step"] % align_every == 0 and state["step"] > 0:
            pick = torch.randperm(len(align_batch), generator=gen)[:128]
            with torch.autocast(device_type=device.type, enabled=False):
                model.align_concepts(align_batch.images[pick].to(device), align_batch.labels[pick].to(device),
                                     align_batch.masks[pick].to(device))
        state["step"] += 1
        return classification_loss(model(x), y)

    return step


def sbi_training_draw(config: SbiWhiteningRecipe, draw: int = 0, augmented: bool = True) -> ForgerySet:
    """The training split of an SBI recipe's faces, augmented unless told otherwise (``draw``: which fresh draw,
    see ``fresh_draws``)."""
    return load_sbi_faces("train", config.size, config.n_per_identity, config.face_source or None, config.seed,
                          augmented=augmented, blur_p=config.blur_p, colour_p=config.colour_p, draw=draw,
                          mask=config.mask or "box")


def training_data(config: WhiteningRecipe) -> tuple[ForgerySet, ForgerySet]:
    """(train split, val split) of a recipe's data: the embedded forgery faces (``config.train_kinds``) or the
    self-blended images of ``config.face_source`` (augmented train split; epoch 0's draw with ``fresh_draws``)."""
    if isinstance(config, SbiWhiteningRecipe):
        return (sbi_training_draw(config),
                load_sbi_faces("val", config.size, config.n_per_identity, config.face_source or None, config.seed,
                               mask=config.mask or "box"))
    train = load_forgery_faces("train", config.size, config.n_per_identity, seed=config.seed)
    val = load_forgery_faces("val", config.size, config.n_per_identity, seed=config.seed)
    return train.with_kinds(config.train_kinds), val


def train_detector(model: WhiteningDetector, config: WhiteningRecipe, device: str = "auto", progress: bool = True,
                   max_steps: int | None = None) -> dict[str, Any]:
    """Train ``model`` on the embedded forgery set's train split (``config.train_kinds``) with ``fit``."""
    train, val = training_data(config)
    fresh = getattr(config, "fresh_draws", False)
    source = FreshDraws(lambda epoch: sbi_training_draw(config, epoch), first=train) if fresh else train
    hist = fit(model, source.loader(config.batch_size, seed=config.seed),
               make_step(config.align_every, train if config.whiten else None),
               epochs=config.epochs, lr=config.lr, weight_decay=config.weight_decay, device=device,
               progress=progress, max_steps=max_steps, seed=config.seed,
               desc=f"{'whitened' if config.whiten else 'plain'} detector",
               evaluate=lambda m: {f"val_{k}": v for k, v in evaluate_detector(m, val).items()})
    meta = {"history": hist.epochs, **{k: v for k, v in hist.epochs[-1].items() if k.startswith("val_")}}
    if config.calibrate_T:
        calibrate_detector(model, config, train, draws=calibration_draws(config, len(train)) if fresh else 1)
        meta.update({f"val_{k}_calibrated": v for k, v in evaluate_detector(model, val).items()})
    return meta


def calibration_draws(config: SbiWhiteningRecipe, per_draw: int) -> int:
    """How many of the ``config.epochs`` training draws (``per_draw`` images each) the calibration runs over."""
    budget = config.calibrate_max_images * (64 / config.size) ** 2
    return int(max(1, min(config.epochs, budget // max(per_draw, 1))))


def calibrate_detector(model: WhiteningDetector, config: WhiteningRecipe, train: ForgerySet, draws: int = 1) -> None:
    """After training (ours, both detectors): the layer's statistics over the training images (for an SBI recipe
    with ``calibrate_clean``, also the un-augmented ones), the concept rotation re-aligned to the calibrated
    whitening (``realign_steps``, whitened detector only), then the head refitted. ``draws`` > 1 (``fresh_draws``):
    over that many draws of the training faces (``train`` is the first), as many images as training saw."""
    if draws > 1:
        train = ForgerySet.concat([train, *(sbi_training_draw(config, d) for d in range(1, draws))])
    images, labels = train.images, train.labels
    if getattr(config, "calibrate_clean", False):
        clean = ForgerySet.concat([sbi_training_draw(config, d, augmented=False) for d in range(draws)])
        images, labels = torch.cat([images, clean.images]), torch.cat([labels, clean.labels])
    realign = getattr(config, "realign_steps", 0) if model.whiten else 0
    model.calibrate(images, None if realign else labels, T=config.calibrate_T)
    if realign:
        gen = torch.Generator().manual_seed(config.seed)
        dev = model_device(model)
        for _ in range(realign):
            pick = torch.randperm(len(train), generator=gen)[:128]
            model.align_concepts(train.images[pick].to(dev), train.labels[pick].to(dev), train.masks[pick].to(dev))
        model.refit_head(images, labels)


def whitening_detector(whiten: bool = True, smoke: bool = False, device: str = "auto", retrain: bool = False,
                       progress: bool = True, train_kinds: Sequence[str] | None = None, data: str = "embedded",
                       recipe: WhiteningRecipe | None = None, **overrides: Any) -> WhiteningDetector:
    """The cached detector (whitened or the plain BatchNorm baseline) trained on the embedded forgery faces, or with
    ``data="sbi"`` on self-blended colour faces (``size`` 64-128, ``face_source`` a folder of real face photos).
    ``recipe``: any other ``WhiteningRecipe`` / ``SbiWhiteningRecipe``, passed whole (``whiten``, ``smoke``,
    ``train_kinds``, ``data`` and the overrides then come from it)."""
    if recipe is not None and (overrides or train_kinds):
        raise ValueError("give either recipe= or train_kinds / field overrides, not both (change the recipe with "
                         "recipe.with_(...))")
    config = recipe if recipe is not None else detector_config(whiten, smoke, train_kinds, data, **overrides)
    sbi, smoke = isinstance(config, SbiWhiteningRecipe), smoke if recipe is None else recipe.is_smoke_but("whiten")
    kind = f"{'sbi_' if sbi else ''}{'white' if config.whiten else 'plain'}"
    name = f"whitening_detector_{kind}{'_smoke' if smoke else ''}"
    return cached_model(name, lambda: build_detector(config),
                        lambda m: train_detector(m, config, device, progress), config, retrain=retrain)
