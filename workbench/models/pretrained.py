"""Named models trained by the project on the embedded data and cached (``workbench.train.cached_model``).

Each recipe has a ``full`` setting (the default models the dashboards use; GPU-friendly, still a minute or two on a
CPU) and a ``smoke`` setting that trains in seconds on a CPU (tests, nbval).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from workbench.data import PATCH_CLASSES, ImageSet, load_digits, load_patches
from workbench.models.classifier import SmallCNN
from workbench.models.vae import ConvVAE, vae_loss
from workbench.train import accuracy, cached_model, classification_step, fit

#: the classifiers' training step, ``workbench.train.classification_step`` (``benchmarks/gpu_check.py`` imports it here)
classifier_step = classification_step

DIGITS_SIZE = 16
PATCHES_SIZE = 32


def vae_step(model: torch.nn.Module, batch: Any, device: torch.device):
    x = batch[0].to(device)
    recon, mu, logvar = model(x)
    return vae_loss(recon, x, mu, logvar)


def _settings(smoke: bool, full_epochs: int, smoke_epochs: int) -> int:
    return smoke_epochs if smoke else full_epochs


def digits_classifier(smoke: bool = False, device: str = "auto", retrain: bool = False,
                      progress: bool = True) -> SmallCNN:
    """The teacher CNN on 16x16 digits (full: 15 epochs, ~98% test accuracy; smoke: 2 epochs)."""
    epochs = _settings(smoke, 15, 2)
    config = {"recipe": "digits_classifier", "size": DIGITS_SIZE, "epochs": epochs, "width": 16, "lr": 3e-3}
    train_set, test_set = load_digits(DIGITS_SIZE, "train"), load_digits(DIGITS_SIZE, "test")

    def train(model: SmallCNN) -> dict[str, Any]:
        hist = fit(model, train_set.loader(64), classification_step, epochs=epochs, lr=config["lr"], device=device,
                   progress=progress, desc="digits classifier",
                   evaluate=lambda m: {"test_acc": accuracy(m, test_set.images, test_set.labels)})
        return {"history": hist.epochs, "test_acc": hist.epochs[-1]["test_acc"]}

    return cached_model(f"digits_classifier{'_smoke' if smoke else ''}",
                        lambda: SmallCNN(1, 10, width=config["width"], depth=3), train, config, retrain=retrain)


def digits_vae(smoke: bool = False, device: str = "auto", retrain: bool = False, progress: bool = True,
               latent_dim: int = 16) -> ConvVAE:
    """The conv VAE on 16x16 digits (full: 60 epochs; smoke: 3 epochs)."""
    epochs = _settings(smoke, 60, 3)
    config = {"recipe": "digits_vae", "size": DIGITS_SIZE, "epochs": epochs, "latent": latent_dim, "lr": 2e-3}
    train_set = load_digits(DIGITS_SIZE, "train")
    test_set = load_digits(DIGITS_SIZE, "test")

    def evaluate(m: ConvVAE) -> dict[str, float]:
        dev = next(m.parameters()).device
        x = test_set.images.to(dev)
        recon = m.decode(m.encode(x)[0])
        return {"test_mse": float(F.mse_loss(recon, x))}

    def train(model: ConvVAE) -> dict[str, Any]:
        hist = fit(model, train_set.loader(64), vae_step, epochs=epochs, lr=config["lr"], device=device,
                   progress=progress, desc="digits VAE", evaluate=evaluate)
        return {"history": hist.epochs, "test_mse": hist.epochs[-1]["test_mse"]}

    return cached_model(f"digits_vae{'_smoke' if smoke else ''}",
                        lambda: ConvVAE(1, DIGITS_SIZE, latent_dim=latent_dim, width=32), train, config,
                        retrain=retrain)


def _patches_train(smoke: bool) -> ImageSet:
    """The patch training set of the patches recipes: a seeded subset per class plus its mirror images."""
    return load_patches(PATCHES_SIZE, "train", max_per_class=20 if smoke else 100, augment=True)


def _patches_test(smoke: bool) -> ImageSet:
    """The held-out patches the recipes report on (all of them; a seeded 30 per class in the smoke setting)."""
    return load_patches(PATCHES_SIZE, "test", max_per_class=30 if smoke else None)


def patches_classifier(smoke: bool = False, device: str = "auto", retrain: bool = False,
                       progress: bool = True) -> SmallCNN:
    """The teacher CNN on 32x32 RGB photograph/texture patches (``load_patches``, 10 classes, 3 channels).

    Trained on 100 patches per class plus their mirror images (2000 images), then evaluated on the held-out right
    part of every photograph. Full: 6 epochs at lr 3e-3 and 2 at 3e-4 (at the high rate the test accuracy swings by
    tens of points from epoch to epoch: the test regions are a domain shift; the low-rate epochs settle it), ~92 %
    test accuracy (chance 10 %). Smoke: 20 patches per class, 4 + 2 epochs of batches of 16, a width-8 net
    (~60 % on a 30-per-class test subset).
    """
    epochs, settle = (4, 2) if smoke else (6, 2)
    config = {"recipe": "patches_classifier", "size": PATCHES_SIZE, "epochs": epochs, "settle_epochs": settle,
              "width": 8 if smoke else 16, "batch": 16 if smoke else 64, "lr": 3e-3, "settle_lr": 3e-4,
              "weight_decay": 1e-4, "per_class": 20 if smoke else 100, "augment": "hflip"}

    def train(model: SmallCNN) -> dict[str, Any]:
        train_set, test_set = _patches_train(smoke), _patches_test(smoke)

        def evaluate(m: torch.nn.Module) -> dict[str, float]:
            return {"test_acc": accuracy(m, test_set.images, test_set.labels)}

        history = []
        for seed, (n, lr) in enumerate([(epochs, config["lr"]), (settle, config["settle_lr"])]):
            hist = fit(model, train_set.loader(config["batch"]), classification_step, epochs=n, lr=lr,
                       weight_decay=config["weight_decay"], device=device, progress=progress, seed=seed,
                       desc="patches classifier", evaluate=evaluate)
            history += hist.epochs
        return {"history": history, "test_acc": history[-1]["test_acc"], "test_images": len(test_set)}

    return cached_model(f"patches_classifier{'_smoke' if smoke else ''}",
                        lambda: SmallCNN(3, len(PATCH_CLASSES), width=config["width"], depth=3), train, config,
                        retrain=retrain)


def patches_vae(smoke: bool = False, device: str = "auto", retrain: bool = False, progress: bool = True,
                latent_dim: int = 32) -> ConvVAE:
    """The conv VAE on 32x32 RGB patches (the RLD companion of ``patches_classifier``, same training patches).

    Full: 15 epochs on 100 patches per class plus mirrors, test MSE ~0.009 (the test patches' pixel variance is
    ~0.045): colours, shading and coarse shapes come back, fine texture (brick, grass, gravel) is blurred away, which
    is what RLD's ``residual=True`` puts back. Smoke: 20 patches per class, 3 epochs.
    """
    epochs = _settings(smoke, 15, 3)
    config = {"recipe": "patches_vae", "size": PATCHES_SIZE, "epochs": epochs, "latent": latent_dim, "lr": 2e-3,
              "per_class": 20 if smoke else 100, "augment": "hflip"}

    def train(model: ConvVAE) -> dict[str, Any]:
        train_set, test_set = _patches_train(smoke), _patches_test(smoke)

        def evaluate(m: ConvVAE) -> dict[str, float]:
            dev = next(m.parameters()).device
            x = test_set.images.to(dev)
            return {"test_mse": float(F.mse_loss(m.decode(m.encode(x)[0]), x))}

        hist = fit(model, train_set.loader(64), vae_step, epochs=epochs, lr=config["lr"], device=device,
                   progress=progress, desc="patches VAE", evaluate=evaluate)
        return {"history": hist.epochs, "test_mse": hist.epochs[-1]["test_mse"],
                "test_pixel_variance": float(test_set.images.var()), "test_images": len(test_set)}

    return cached_model(f"patches_vae{'_smoke' if smoke else ''}",
                        lambda: ConvVAE(3, PATCHES_SIZE, latent_dim=latent_dim, width=32), train, config,
                        retrain=retrain)
