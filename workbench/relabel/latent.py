"""The latent explorer's compute: encode an image into the VAE's latent space, decode a nudged latent, and what the
black box says of each (the relabel dashboard's latent sliders only draw what this returns)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from workbench.runtime import model_device


@dataclass
class LatentExplorer:
    """A classifier (the black box) and a VAE, both in eval mode; :meth:`encode` then :meth:`decode` with nudges."""

    classifier: torch.nn.Module
    vae: torch.nn.Module

    def __post_init__(self) -> None:
        self.classifier.eval()
        self.vae.eval()

    @torch.no_grad()
    def probs(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax of the classifier on a batch of one, (K,) on the CPU."""
        if x.ndim != 4 or x.shape[0] != 1:
            raise ValueError(f"probs expects a batch of one image (1, C, H, W); got {tuple(x.shape)}")
        return self.classifier(x.to(model_device(self.classifier))).float().softmax(-1)[0].cpu()

    @torch.no_grad()
    def encode(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z0, probs): the image's latent mean and the classifier's probabilities on the image itself."""
        if image.ndim != 3:
            raise ValueError(f"encode expects one (C, H, W) image; got {tuple(image.shape)}")
        z0 = self.vae.encode(image[None].to(model_device(self.vae)))[0][0].float()
        return z0, self.probs(image[None])

    @torch.no_grad()
    def decode(self, z0: torch.Tensor, delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(decoded (1, C, H, W) in [0, 1], probs): the decode of ``z0 + delta`` and the classifier on it."""
        if delta.shape != z0.shape:
            raise ValueError(f"delta must have the latent's shape {tuple(z0.shape)}; got {tuple(delta.shape)}")
        decoded = self.vae.decode((z0 + delta.to(z0))[None]).clamp(0, 1)
        return decoded, self.probs(decoded)
