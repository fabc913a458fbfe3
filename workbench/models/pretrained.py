"""Named models trained by the project on the embedded data and cached (``workbench.train.cached_model``).

Each recipe has a ``full`` setting (the default models the dashboards use; GPU-friendly, still a minute or two on a
CPU) and a ``smoke`` setting that trains in seconds on a CPU (tests, nbval).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from workbench.data import load_digits
from workbench.models.classifier import SmallCNN
from workbench.models.vae import ConvVAE, vae_loss
from workbench.train import cached_model, fit

DIGITS_SIZE = 16


def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` on a tensor set, in eval mode, on the model's device."""
    dev = next(model.parameters()).device
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            pred = model(images[i:i + batch_size].to(dev)).argmax(1).cpu()
            correct += int((pred == labels[i:i + batch_size]).sum())
    return correct / max(len(images), 1)


def classifier_step(model: torch.nn.Module, batch: Any, device: torch.device):
    x, y = (t.to(device) for t in batch)
    logits = model(x)
    loss = F.cross_entropy(logits.float(), y)
    return loss, {"acc": float((logits.argmax(1) == y).float().mean())}


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
        hist = fit(model, train_set.loader(64), classifier_step, epochs=epochs, lr=config["lr"], device=device,
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
