"""How re-label distillation picks the latent noise scale ``sigma`` per image: strategy objects.

:class:`FlipBandBisection` (the default, ``sigma="auto"``) bisects ``log(sigma)`` per image until the share of
label-shifted probe samples lies in a band; :class:`FixedSigma` uses one value for every image. A strategy gets the
latent centres and a ``flip_rate(active, sigma, eps)`` callback that decodes and re-labels probe samples for the
images ``active``; it never touches the VAE or the teacher itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

#: ``flip_rate(active (A,) long, sigma (A,), eps (A, M, L)) -> (A,)``: the share of probe samples that changed label
FlipRate = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class SigmaSearch:
    """Chooses ``sigma`` (B,) for latent centres ``z0`` (B, L); ``gen`` seeds any probe noise."""

    def __call__(self, z0: torch.Tensor, flip_rate: FlipRate, gen: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


class FixedSigma(SigmaSearch):
    """The same positive ``sigma`` for every image (no probing)."""

    def __init__(self, sigma: float) -> None:
        if not (isinstance(sigma, int | float) and not isinstance(sigma, bool) and sigma > 0):
            raise ValueError(f"sigma must be 'auto' or a positive number; got {sigma!r}")
        self.sigma = float(sigma)

    def __call__(self, z0: torch.Tensor, flip_rate: FlipRate, gen: torch.Generator) -> torch.Tensor:
        return torch.full((z0.shape[0],), self.sigma, device=z0.device)


class FlipBandBisection(SigmaSearch):
    """Per-image bisection of ``log(sigma)`` within ``sigma_range`` until the probe flip rate lies in ``flip_band``.

    ``probe_samples`` common random numbers are shared by every step and image; the aim is the band shrunk by 10 % of
    its width on each side (the probe is noisy); at most ``steps`` halvings; only images still outside the band are
    probed again. Starts at the prior's scale, 1.
    """

    def __init__(self, flip_band: tuple[float, float] = (0.3, 0.7), sigma_range: tuple[float, float] = (0.02, 20.0),
                 steps: int = 8, probe_samples: int = 128) -> None:
        if not 0.0 <= flip_band[0] < flip_band[1] <= 1.0:
            raise ValueError(f"flip_band must satisfy 0 <= low < high <= 1; got {flip_band}")
        self.flip_band, self.sigma_range, self.steps, self.probe_samples = flip_band, sigma_range, steps, probe_samples

    def __call__(self, z0: torch.Tensor, flip_rate: FlipRate, gen: torch.Generator) -> torch.Tensor:
        b, latent = z0.shape
        eps = torch.randn(1, self.probe_samples, latent, generator=gen).to(z0).expand(b, -1, -1)
        log_lo = torch.full((b,), math.log(self.sigma_range[0]), device=z0.device)
        log_hi = torch.full((b,), math.log(self.sigma_range[1]), device=z0.device)
        log_sigma = torch.zeros(b, device=z0.device).clamp(log_lo, log_hi)
        done = torch.zeros(b, dtype=torch.bool, device=z0.device)
        margin = 0.1 * (self.flip_band[1] - self.flip_band[0])
        low, high = self.flip_band[0] + margin, self.flip_band[1] - margin
        for _ in range(self.steps):
            active = (~done).nonzero().squeeze(1)
            flip = torch.full((b,), (low + high) / 2, device=z0.device)
            flip[active] = flip_rate(active, log_sigma[active].exp(), eps[active])
            too_low, too_high = (flip < low) & ~done, (flip > high) & ~done
            done |= ~(too_low | too_high)
            log_lo = torch.where(too_low, log_sigma, log_lo)
            log_hi = torch.where(too_high, log_sigma, log_hi)
            if bool(done.all()):
                break
            log_sigma = torch.where(done, log_sigma, (log_lo + log_hi) / 2)
        return log_sigma.exp()
