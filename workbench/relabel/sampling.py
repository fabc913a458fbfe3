"""The sampling choices of re-label distillation that are ours, not the paper's (issue 12), as a mixin.

:class:`RegionSampling` validates and applies them for :class:`~workbench.relabel.RelabelDistillation`: several
sigma scales per image, each region of each sample from a random decode of the pool, each region kept from the
image with probability ``keep_share``, and what the student sees (pixels, region means or kept-region indicators).
It also owns how the samples are made in bounded memory (ours, issue 13): decodes and teacher forwards run
``batch_size`` samples at a time, the samples are composed from the decodes a chunk at a time (never all N samples of
a batch at once), and ``attribute`` runs ``max_batch`` images at a time.
"""

from __future__ import annotations

import math

import torch

from workbench.metrics import gaussian_blur
from workbench.relabel.config import SamplingConfig
from workbench.relabel.regions import GridRegions, mix_regions, pool_regions, region_change, region_means
from workbench.validation import check_logits

#: with ``batch_size="auto"``: about this many input values go through the VAE decoder / the teacher in one call,
#: on a CPU (8192 samples of a 16x16 digit, 42 of a 128x128 RGB image) and on a GPU (341 of a 128x128 RGB image)
AUTO_CHUNK_VALUES = {"cpu": 2**21, "cuda": 2**24}
#: the most samples per call with ``batch_size="auto"``, on a CPU and on a GPU
AUTO_CHUNK_MAX = {"cpu": 8192, "cuda": 65536}
#: with ``max_batch="auto"``: the decodes of one chunk of images hold at most about this many values (1 GiB float32)
AUTO_POOL_VALUES = 2**28


class RegionSampling:
    """Application of ``keep_share``, ``regions``, ``features``, ``sigma_scales``, ``region_source``, ``batch_size``
    and ``max_batch`` (documented on :class:`~workbench.relabel.config.RelabelConfig`); ``seed``,
    ``vae``, ``forward_func`` and ``clip`` come from the explainer."""

    seed: int
    batch_size: int | str
    max_batch: int | str

    def _set_sampling(self, sampling: SamplingConfig) -> None:
        """Store the sampling choices that are ours (validated by :class:`SamplingConfig`)."""
        self.keep_share, self.features = sampling.keep_share, sampling.features
        self.sigma_scales, self.region_source = sampling.sigma_scales, sampling.region_source
        self.fill = sampling.fill
        self.regions = sampling.regions if sampling.regions is not None else GridRegions()

    def _scaled(self, eps: torch.Tensor) -> torch.Tensor:
        """``eps`` (B, M, L) with sample m scaled by ``sigma_scales[m % len(sigma_scales)]`` (as is for one scale 1)."""
        if self.sigma_scales == (1.0,):
            return eps
        scales = torch.tensor(self.sigma_scales, dtype=eps.dtype, device=eps.device)
        return eps * scales[torch.arange(eps.shape[1], device=eps.device) % len(scales)][:, None]

    def _source(self, m: int, labels: torch.Tensor, seed: int, device: torch.device) -> torch.Tensor | None:
        """(1, M, R): for each region of each sample, the decode of the pool it comes from (None: its own decode,
        ``region_source="own"``)."""
        if self.region_source == "own":
            return None
        n_regions = int(labels.max()) + 1
        return torch.randint(m, (1, m, n_regions), generator=torch.Generator().manual_seed(seed)).to(device)

    @staticmethod
    def _compose(decoded: torch.Tensor, image: torch.Tensor, source: torch.Tensor | None, keep: torch.Tensor | None,
                 labels: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Samples ``start:stop`` (B, stop - start, C, H, W): their regions from the pool of ``decoded`` (or their
        own decodes), then the kept regions from the image."""
        part = decoded[:, start:stop] if source is None else pool_regions(decoded, source[:, start:stop], labels)
        if keep is not None:
            part = mix_regions(part, image, keep[:, start:stop], labels)
        return part

    def _step(self, shape: tuple[int, ...], device: torch.device) -> int:
        """Samples per decoder / teacher call for images of ``shape`` (C, H, W) on ``device``."""
        if self.batch_size != "auto":
            return int(self.batch_size)
        kind = "cuda" if device.type == "cuda" else "cpu"
        return max(16, min(AUTO_CHUNK_MAX[kind], AUTO_CHUNK_VALUES[kind] // math.prod(shape)))

    def _images_per_chunk(self, n: int, shape: tuple[int, ...]) -> int:
        """Images per :meth:`_run` call in ``attribute``: their N decodes each are the largest tensor RLD holds."""
        if self.max_batch != "auto":
            return int(self.max_batch)
        return max(1, AUTO_POOL_VALUES // (n * math.prod(shape)))

    def _decode(self, z: torch.Tensor, residual: torch.Tensor | None) -> torch.Tensor:
        """Decode (B, M, L) latents to (B, M, C, H, W) samples plus the residual, clipped: decoded ``_step`` at a
        time into one tensor, the residual and the clip applied in place (one copy of the decodes in memory)."""
        b, m, latent = z.shape
        flat = z.reshape(b * m, latent)
        first = self.vae.decode(flat[:1])
        step = self._step(tuple(first.shape[1:]), first.device)
        out = first.new_empty((b * m, *first.shape[1:]))
        for i in range(0, b * m, step):
            out[i:i + step] = self.vae.decode(flat[i:i + step])
        out = out.reshape(b, m, *out.shape[1:])
        if residual is not None:
            out.add_(residual[:, None].to(out.dtype))
        if self.clip is not None:
            out.clamp_(*self.clip)
        return out

    def _pool(self, z0: torch.Tensor, offsets: torch.Tensor, residual: torch.Tensor | None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """The latents (B, M, L) and the decodes (B, M, C, H, W) the samples' regions come from, with ``fill``
        applied: decodes of ``z0 + offsets`` plus the residual (``"decode"``), of ``offsets`` alone (``"prior"``),
        blurred (``"blur"``) or their per-channel mean colour (``"mean"``)."""
        latents = offsets if self.fill == "prior" else z0[:, None] + offsets
        decoded = self._decode(latents, None if self.fill == "prior" else residual)
        if self.fill == "blur":
            decoded = gaussian_blur(decoded.flatten(0, 1), decoded.shape[-1] / 16).reshape(decoded.shape)
        elif self.fill == "mean":
            decoded = decoded.mean((-2, -1), keepdim=True).expand(decoded.shape)
        return latents, decoded

    def _teacher(self, samples: torch.Tensor) -> torch.Tensor:
        """Teacher probabilities (B, M, K) for (B, M, C, H, W) samples, ``_step`` at a time; NaN/Inf logits are an
        error."""
        b, m = samples.shape[:2]
        flat = samples.reshape(b * m, *samples.shape[2:])
        step = self._step(tuple(samples.shape[2:]), samples.device)
        logits = torch.cat([self.forward_func(flat[i:i + step]).float() for i in range(0, b * m, step)])
        logits = check_logits(logits, b * m, "forward_func (on the synthetic samples)")
        return logits.softmax(-1).reshape(b, m, -1)

    def _keep(self, m: int, labels: torch.Tensor, seed: int, device: torch.device) -> torch.Tensor | None:
        """(1, M, R) kept-region indicators, 1 with probability ``keep_share`` (None without mixing)."""
        if self.keep_share is None:
            return None
        n_regions = int(labels.max()) + 1
        draw = torch.rand(1, m, n_regions, generator=torch.Generator().manual_seed(seed))
        return (draw < self.keep_share).float().to(device)

    def _features(self, samples: torch.Tensor, image: torch.Tensor, keep: torch.Tensor | None,
                  labels: torch.Tensor) -> torch.Tensor:
        """What the student sees, (B, N, D): pixels (the paper), region means, kept-region indicators or how much
        each region changed from ``image`` (B, C, H, W)."""
        if self.features == "mask":
            return keep
        if self.features == "change":
            return region_change(samples.float(), image.float(), labels)
        if self.features == "regions":
            return region_means(samples.float(), labels)
        return samples.flatten(2).float()
