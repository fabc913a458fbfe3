"""Named models trained by the project on the embedded data and cached (``workbench.train.cached_model``).

Each model has a frozen recipe (:class:`workbench.recipes.Recipe`) with a ``full()`` preset (the default models the
dashboards use; GPU-friendly, still a minute or two on a CPU) and a ``smoke()`` preset that trains in seconds on a
CPU (tests, nbval). The recipe is handed whole to ``cached_model``: its fields are the cache key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from workbench.data import PATCH_CLASSES, ImageSet, load_digits, load_patches
from workbench.models.classifier import SmallCNN
from workbench.models.vae import ConvVAE, vae_step
from workbench.recipes import Recipe
from workbench.runtime import model_device
from workbench.train import accuracy, cached_model, classification_step, fit

#: the classifiers' training step, ``workbench.train.classification_step`` (``benchmarks/gpu_check.py`` imports it here)
classifier_step = classification_step

DIGITS_SIZE = 16
PATCHES_SIZE = 32


@dataclass(frozen=True)
class DigitsClassifierRecipe(Recipe):
    """The teacher CNN on 16x16 digits: ``epochs`` at ``lr``, a 3-block ``SmallCNN`` of ``width``."""

    recipe: str = "digits_classifier"
    size: int = DIGITS_SIZE
    epochs: int = 15
    width: int = 16
    lr: float = 3e-3

    @classmethod
    def smoke(cls) -> DigitsClassifierRecipe:
        """2 epochs."""
        return cls(epochs=2)


@dataclass(frozen=True)
class DigitsVaeRecipe(Recipe):
    """The conv VAE on 16x16 digits: ``epochs`` at ``lr``, a ``latent``-dimensional latent."""

    recipe: str = "digits_vae"
    size: int = DIGITS_SIZE
    epochs: int = 60
    latent: int = 16
    lr: float = 2e-3

    @classmethod
    def smoke(cls) -> DigitsVaeRecipe:
        """3 epochs."""
        return cls(epochs=3)


@dataclass(frozen=True)
class PatchesClassifierRecipe(Recipe):
    """The teacher CNN on 32x32 RGB patches: ``epochs`` at ``lr`` then ``settle_epochs`` at ``settle_lr`` (AdamW,
    ``weight_decay``), batches of ``batch``, ``per_class`` training patches per class plus their mirror images."""

    recipe: str = "patches_classifier"
    size: int = PATCHES_SIZE
    epochs: int = 6
    settle_epochs: int = 2
    width: int = 16
    batch: int = 64
    lr: float = 3e-3
    settle_lr: float = 3e-4
    weight_decay: float = 1e-4
    per_class: int = 100
    augment: str = "hflip"

    @classmethod
    def smoke(cls) -> PatchesClassifierRecipe:
        """20 patches per class, 4 + 2 epochs of batches of 16, a width-8 net."""
        return cls(epochs=4, width=8, batch=16, per_class=20)


@dataclass(frozen=True)
class PatchesVaeRecipe(Recipe):
    """The conv VAE on 32x32 RGB patches (the same training patches as ``PatchesClassifierRecipe``)."""

    recipe: str = "patches_vae"
    size: int = PATCHES_SIZE
    epochs: int = 15
    latent: int = 32
    lr: float = 2e-3
    per_class: int = 100
    augment: str = "hflip"

    @classmethod
    def smoke(cls) -> PatchesVaeRecipe:
        """20 patches per class, 3 epochs."""
        return cls(epochs=3, per_class=20)


def _cache_name(recipe: Recipe, smoke: bool) -> str:
    """The cache name of a recipe's model: its ``recipe`` field, ``_smoke`` appended in the smoke setting (asked
    for, or the recipe is its class's ``smoke()``)."""
    return f"{recipe.recipe}{'_smoke' if smoke or recipe.is_smoke else ''}"


def digits_classifier(smoke: bool = False, device: str = "auto", retrain: bool = False, progress: bool = True,
                      recipe: DigitsClassifierRecipe | None = None) -> SmallCNN:
    """The teacher CNN on 16x16 digits (full: 15 epochs, ~98% test accuracy; smoke: 2 epochs); ``recipe``: any
    other ``DigitsClassifierRecipe`` (default: the ``smoke`` or full preset)."""
    recipe = recipe or DigitsClassifierRecipe.preset(smoke)
    train_set, test_set = load_digits(recipe.size, "train"), load_digits(recipe.size, "test")

    def train(model: SmallCNN) -> dict[str, Any]:
        hist = fit(model, train_set.loader(64), classification_step, epochs=recipe.epochs, lr=recipe.lr,
                   device=device, progress=progress, desc="digits classifier",
                   evaluate=lambda m: {"test_acc": accuracy(m, test_set.images, test_set.labels)})
        return {"history": hist.epochs, "test_acc": hist.epochs[-1]["test_acc"]}

    return cached_model(_cache_name(recipe, smoke), lambda: SmallCNN(1, 10, width=recipe.width, depth=3), train,
                        recipe, retrain=retrain)


def digits_vae(smoke: bool = False, device: str = "auto", retrain: bool = False, progress: bool = True,
               latent_dim: int = 16, recipe: DigitsVaeRecipe | None = None) -> ConvVAE:
    """The conv VAE on 16x16 digits (full: 60 epochs; smoke: 3 epochs); ``recipe``: any other ``DigitsVaeRecipe``
    (default: the ``smoke`` or full preset with ``latent_dim``)."""
    recipe = recipe or DigitsVaeRecipe.preset(smoke).with_(latent=latent_dim)
    train_set = load_digits(DIGITS_SIZE, "train")
    test_set = load_digits(DIGITS_SIZE, "test")

    def evaluate(m: ConvVAE) -> dict[str, float]:
        dev = model_device(m)
        x = test_set.images.to(dev)
        recon = m.decode(m.encode(x)[0])
        return {"test_mse": float(F.mse_loss(recon, x))}

    def train(model: ConvVAE) -> dict[str, Any]:
        hist = fit(model, train_set.loader(64), vae_step, epochs=recipe.epochs, lr=recipe.lr, device=device,
                   progress=progress, desc="digits VAE", evaluate=evaluate)
        return {"history": hist.epochs, "test_mse": hist.epochs[-1]["test_mse"]}

    return cached_model(_cache_name(recipe, smoke),
                        lambda: ConvVAE(1, recipe.size, latent_dim=recipe.latent, width=32), train, recipe,
                        retrain=retrain)


def _patches_train(recipe: PatchesClassifierRecipe | PatchesVaeRecipe) -> ImageSet:
    """The patch training set of the patches recipes: a seeded subset per class plus its mirror images."""
    return load_patches(recipe.size, "train", max_per_class=recipe.per_class, augment=True)


def _patches_test(recipe: PatchesClassifierRecipe | PatchesVaeRecipe, smoke: bool) -> ImageSet:
    """The held-out patches the recipes report on (all of them; a seeded 30 per class in the smoke setting)."""
    return load_patches(recipe.size, "test", max_per_class=30 if smoke or recipe.is_smoke else None)


def patches_classifier(smoke: bool = False, device: str = "auto", retrain: bool = False, progress: bool = True,
                       recipe: PatchesClassifierRecipe | None = None) -> SmallCNN:
    """The teacher CNN on 32x32 RGB photograph/texture patches (``load_patches``, 10 classes, 3 channels).

    Trained on 100 patches per class plus their mirror images (2000 images), then evaluated on the held-out right
    part of every photograph. Full: 6 epochs at lr 3e-3 and 2 at 3e-4 (at the high rate the test accuracy swings by
    tens of points from epoch to epoch: the test regions are a domain shift; the low-rate epochs settle it), ~92 %
    test accuracy (chance 10 %). Smoke: 20 patches per class, 4 + 2 epochs of batches of 16, a width-8 net
    (~60 % on a 30-per-class test subset). ``recipe``: any other ``PatchesClassifierRecipe``.
    """
    recipe = recipe or PatchesClassifierRecipe.preset(smoke)

    def train(model: SmallCNN) -> dict[str, Any]:
        train_set, test_set = _patches_train(recipe), _patches_test(recipe, smoke)

        def evaluate(m: torch.nn.Module) -> dict[str, float]:
            return {"test_acc": accuracy(m, test_set.images, test_set.labels)}

        history = []
        for seed, (n, lr) in enumerate([(recipe.epochs, recipe.lr), (recipe.settle_epochs, recipe.settle_lr)]):
            hist = fit(model, train_set.loader(recipe.batch), classification_step, epochs=n, lr=lr,
                       weight_decay=recipe.weight_decay, device=device, progress=progress, seed=seed,
                       desc="patches classifier", evaluate=evaluate)
            history += hist.epochs
        return {"history": history, "test_acc": history[-1]["test_acc"], "test_images": len(test_set)}

    return cached_model(_cache_name(recipe, smoke),
                        lambda: SmallCNN(3, len(PATCH_CLASSES), width=recipe.width, depth=3), train, recipe,
                        retrain=retrain)


def patches_vae(smoke: bool = False, device: str = "auto", retrain: bool = False, progress: bool = True,
                latent_dim: int = 32, recipe: PatchesVaeRecipe | None = None) -> ConvVAE:
    """The conv VAE on 32x32 RGB patches (the RLD companion of ``patches_classifier``, same training patches).

    Full: 15 epochs on 100 patches per class plus mirrors, test MSE ~0.009 (the test patches' pixel variance is
    ~0.045): colours, shading and coarse shapes come back, fine texture (brick, grass, gravel) is blurred away, which
    is what RLD's ``residual=True`` puts back. Smoke: 20 patches per class, 3 epochs. ``recipe``: any other
    ``PatchesVaeRecipe`` (default: the ``smoke`` or full preset with ``latent_dim``).
    """
    recipe = recipe or PatchesVaeRecipe.preset(smoke).with_(latent=latent_dim)

    def train(model: ConvVAE) -> dict[str, Any]:
        train_set, test_set = _patches_train(recipe), _patches_test(recipe, smoke)

        def evaluate(m: ConvVAE) -> dict[str, float]:
            dev = model_device(m)
            x = test_set.images.to(dev)
            return {"test_mse": float(F.mse_loss(m.decode(m.encode(x)[0]), x))}

        hist = fit(model, train_set.loader(64), vae_step, epochs=recipe.epochs, lr=recipe.lr, device=device,
                   progress=progress, desc="patches VAE", evaluate=evaluate)
        return {"history": hist.epochs, "test_mse": hist.epochs[-1]["test_mse"],
                "test_pixel_variance": float(test_set.images.var()), "test_images": len(test_set)}

    return cached_model(_cache_name(recipe, smoke),
                        lambda: ConvVAE(3, recipe.size, latent_dim=recipe.latent, width=32), train, recipe,
                        retrain=retrain)
