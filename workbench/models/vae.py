"""A convolutional VAE: ``encode(x) -> (mu, logvar)``, ``decode(z) -> x`` in [0, 1]."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class ConvVAE(nn.Module):
    """Stride-2 conv encoder down to 4x4, Gaussian latent of ``latent_dim``, transposed-conv decoder, sigmoid output.

    ``image_size`` must be a power of two >= 8 (each level halves it down to 4x4).
    """

    def __init__(self, in_channels: int = 1, image_size: int = 16, latent_dim: int = 16, width: int = 32) -> None:
        super().__init__()
        levels = int(round(math.log2(image_size / 4)))
        if image_size < 8 or 4 * 2**levels != image_size:
            raise ValueError(f"image_size must be a power of two >= 8; got {image_size}")
        self.in_channels, self.image_size, self.latent_dim = in_channels, image_size, latent_dim
        enc: list[nn.Module] = []
        c = in_channels
        chans = [width * 2**i for i in range(levels)]
        for c_out in chans:
            enc += [nn.Conv2d(c, c_out, 4, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True)]
            c = c_out
        self.encoder = nn.Sequential(*enc, nn.Flatten())
        self._top = (c, 4, 4)
        flat = c * 16
        self.fc_mu = nn.Linear(flat, latent_dim)
        self.fc_logvar = nn.Linear(flat, latent_dim)
        self.fc_dec = nn.Linear(latent_dim, flat)
        dec: list[nn.Module] = []
        for c_out in reversed(chans[:-1]):
            dec += [nn.ConvTranspose2d(c, c_out, 4, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(True)]
            c = c_out
        dec += [nn.ConvTranspose2d(c, in_channels, 4, stride=2, padding=1)]
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h).clamp(-10, 10)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc_dec(z).view(-1, *self._top)
        return torch.sigmoid(self.decoder(F.relu(h)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        return self.decode(z), mu, logvar


def vae_loss(recon: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             beta: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Bernoulli reconstruction (BCE summed over pixels) + beta * KL, both averaged over the batch.

    The BCE runs in float32 outside autocast: torch refuses ``binary_cross_entropy`` under CUDA autocast.
    """
    with torch.autocast(device_type=recon.device.type, enabled=False):
        rec = F.binary_cross_entropy(recon.float().clamp(1e-6, 1 - 1e-6), x.float(), reduction="sum") / x.shape[0]
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / x.shape[0]
    return rec + beta * kl, {"recon": float(rec.detach()), "kl": float(kl.detach())}


def vae_step(model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
    """One training step's loss for :func:`workbench.train.fit`: the batch's first tensor is the VAE's input."""
    x = batch[0].to(device, non_blocking=True)
    recon, mu, logvar = model(x)
    return vae_loss(recon, x, mu, logvar)
