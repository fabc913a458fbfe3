"""The sampling choices of re-label distillation that are ours, not the paper's (issue 12), as a mixin.

:class:`RegionSampling` validates and applies them for :class:`~workbench.relabel.RelabelDistillation`: several
sigma scales per image, each region of each sample from a random decode of the pool, each region kept from the
image with probability ``keep_share``, and what the student sees (pixels, region means or kept-region indicators).
"""

from __future__ import annotations

import torch

from workbench.relabel.regions import GridRegions, Regions, pool_regions, region_means


class RegionSampling:
    """Validation and application of ``keep_share``, ``regions``, ``features``, ``sigma_scales``, ``region_source``
    (documented on :class:`~workbench.relabel.RelabelDistillation`); ``seed`` comes from the explainer."""

    seed: int

    def _set_sampling(self, keep_share: float | None, regions: Regions | None, features: str,
                      sigma_scales: tuple[float, ...], region_source: str) -> None:
        """Validate and store the sampling choices that are ours (see the class docstring)."""
        if keep_share is not None and not (isinstance(keep_share, float | int) and 0.0 < keep_share < 1.0):
            raise ValueError(f"keep_share must be None or lie in (0, 1); got {keep_share!r}")
        if features not in ("pixels", "regions", "mask"):
            raise ValueError(f"features must be 'pixels', 'regions' or 'mask'; got {features!r}")
        if features == "mask" and keep_share is None:
            raise ValueError("features='mask' needs keep_share (the kept-region indicators are its features)")
        if regions is not None and not isinstance(regions, Regions):
            raise ValueError(f"regions must be None or a Regions; got {regions!r}")
        scales = tuple(sigma_scales)
        if not scales or not all(isinstance(v, float | int) and v > 0 for v in scales):
            raise ValueError(f"sigma_scales must be a non-empty tuple of positive numbers; got {sigma_scales!r}")
        if region_source not in ("own", "pool"):
            raise ValueError(f"region_source must be 'own' or 'pool'; got {region_source!r}")
        self.keep_share, self.features, self.sigma_scales = keep_share, features, scales
        self.region_source = region_source
        self.regions = regions if regions is not None else GridRegions()

    def _scaled(self, eps: torch.Tensor) -> torch.Tensor:
        """``eps`` (B, M, L) with sample m scaled by ``sigma_scales[m % len(sigma_scales)]`` (as is for one scale 1)."""
        if self.sigma_scales == (1.0,):
            return eps
        scales = torch.tensor(self.sigma_scales, dtype=eps.dtype, device=eps.device)
        return eps * scales[torch.arange(eps.shape[1], device=eps.device) % len(scales)][:, None]

    def _pooled(self, decoded: torch.Tensor, labels: torch.Tensor, seed: int) -> torch.Tensor:
        """``decoded`` as is (``region_source="own"``) or with each region of each sample from a random decode."""
        if self.region_source == "own":
            return decoded
        m, n_regions = decoded.shape[1], int(labels.max()) + 1
        source = torch.randint(m, (1, m, n_regions), generator=torch.Generator().manual_seed(seed))
        return pool_regions(decoded, source.to(decoded.device), labels)

    def _keep(self, m: int, labels: torch.Tensor, seed: int, device: torch.device) -> torch.Tensor | None:
        """(1, M, R) kept-region indicators, 1 with probability ``keep_share`` (None without mixing)."""
        if self.keep_share is None:
            return None
        n_regions = int(labels.max()) + 1
        draw = torch.rand(1, m, n_regions, generator=torch.Generator().manual_seed(seed))
        return (draw < self.keep_share).float().to(device)

    def _features(self, samples: torch.Tensor, keep: torch.Tensor | None, labels: torch.Tensor) -> torch.Tensor:
        """What the student sees, (B, N, D): pixels (the paper), region means or kept-region indicators."""
        if self.features == "mask":
            return keep
        if self.features == "regions":
            return region_means(samples.float(), labels)
        return samples.flatten(2).float()
