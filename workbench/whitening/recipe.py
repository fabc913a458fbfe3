"""The whitening detector's training recipe: a frozen dataclass (its ``asdict()`` is the cache key), the training
step with the concept alignment, and the cached model.

Ours, not the paper's: AdamW, aligning every ``align_every`` steps on one batch per concept, and after training a
recalibration of the whitening on the whole training set (``calibrate_T`` iterations) with a refit of the head.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from workbench.data.faces import ForgerySet, load_forgery_faces
from workbench.train import cached_model, classification_loss, fit
from workbench.whitening.metrics import evaluate_detector
from workbench.whitening.model import DEFAULT_CONCEPTS, WhiteningDetector


@dataclass(frozen=True)
class WhiteningRecipe:
    """Everything that makes a trained whitening detector; ``dataclasses.asdict`` of it is the cache key.

    Presets: ``WHITENING_FULL`` (the dashboard and benchmark default, about a minute on a 2-core CPU) and
    ``WHITENING_SMOKE`` (tests); change fields with ``dataclasses.replace`` (or ``detector_config``).
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


WHITENING_FULL = WhiteningRecipe()
WHITENING_SMOKE = WhiteningRecipe(n_per_identity=6, epochs=10, width=8)


def detector_config(whiten: bool = True, smoke: bool = False, train_kinds: Sequence[str] | None = None,
                    **overrides: Any) -> WhiteningRecipe:
    """The recipe of ``whitening_detector``: the smoke or full preset with ``whiten``, ``train_kinds`` and any other
    field changed (``dataclasses.replace``)."""
    changes: dict[str, Any] = {"whiten": whiten}
    if train_kinds:
        changes["train_kinds"] = tuple(train_kinds)
    changes.update(overrides)
    return dataclasses.replace(WHITENING_SMOKE if smoke else WHITENING_FULL, **changes)


def build_detector(config: WhiteningRecipe) -> WhiteningDetector:
    """The untrained detector of a recipe (initial weights seeded by ``config.seed``)."""
    torch.manual_seed(config.seed)
    return WhiteningDetector(1, config.width, config.depth, config.whiten, config.layer, config.num_groups, config.T,
                             concepts=config.concepts)


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


def training_data(config: WhiteningRecipe) -> tuple[ForgerySet, ForgerySet]:
    """(train split of ``config.train_kinds``, val split) of the embedded forgery faces for a recipe."""
    train = load_forgery_faces("train", config.size, config.n_per_identity, seed=config.seed)
    val = load_forgery_faces("val", config.size, config.n_per_identity, seed=config.seed)
    return train.with_kinds(config.train_kinds), val


def train_detector(model: WhiteningDetector, config: WhiteningRecipe, device: str = "auto", progress: bool = True,
                   max_steps: int | None = None) -> dict[str, Any]:
    """Train ``model`` on the embedded forgery set's train split (``config.train_kinds``) with ``fit``."""
    train, val = training_data(config)
    hist = fit(model, train.loader(config.batch_size, seed=config.seed),
               make_step(config.align_every, train if config.whiten else None),
               epochs=config.epochs, lr=config.lr, weight_decay=config.weight_decay, device=device,
               progress=progress, max_steps=max_steps, seed=config.seed,
               desc=f"{'whitened' if config.whiten else 'plain'} detector",
               evaluate=lambda m: {f"val_{k}": v for k, v in evaluate_detector(m, val).items()})
    meta = {"history": hist.epochs, **{k: v for k, v in hist.epochs[-1].items() if k.startswith("val_")}}
    if config.calibrate_T:
        model.calibrate(train.images, train.labels, T=config.calibrate_T)
        meta.update({f"val_{k}_calibrated": v for k, v in evaluate_detector(model, val).items()})
    return meta


def whitening_detector(whiten: bool = True, smoke: bool = False, device: str = "auto", retrain: bool = False,
                       progress: bool = True, train_kinds: Sequence[str] | None = None,
                       **overrides: Any) -> WhiteningDetector:
    """The cached detector (whitened or the plain BatchNorm baseline) trained on the embedded forgery faces."""
    config = detector_config(whiten, smoke, train_kinds, **overrides)
    name = f"whitening_detector_{'white' if whiten else 'plain'}{'_smoke' if smoke else ''}"
    return cached_model(name, lambda: build_detector(config),
                        lambda m: train_detector(m, config, device, progress), config, retrain=retrain)
