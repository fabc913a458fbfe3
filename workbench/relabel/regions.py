"""Regions for re-label distillation's region-wise sampling and region student (ours, not the paper's).

A :class:`Regions` strategy splits an image into ``R`` regions, an (H, W) label map. The explainer uses it to mix
each decoded sample with the image region by region (:func:`mix_regions`: every region of every sample is either
kept from the image or taken from the VAE decode, independently), and to fit its student on regions instead of
pixels, whose weights are then painted back onto the pixels (:func:`paint`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from workbench.explainers.baselines import default_cell


class Regions:
    """Splits an (H, W) image into regions: ``labels(height, width) -> (H, W) long`` with labels ``0 .. R-1``."""

    def labels(self, height: int, width: int) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


class GridRegions(Regions):
    """Square ``cell``-pixel grid cells (content-independent, the same for every image, so batches share them).

    ``cell=None``: the grid the lime baselines use (:func:`~workbench.explainers.baselines.default_cell`: an 8x8
    grid, 2x2-pixel cells at 16x16, 4x4 at 32x32), so RLD and lime are compared on the same regions.
    """

    def __init__(self, cell: int | None = None) -> None:
        if cell is not None and (isinstance(cell, bool) or not isinstance(cell, int) or cell < 1):
            raise ValueError(f"cell must be a positive integer or None; got {cell!r}")
        self.cell = cell

    def labels(self, height: int, width: int) -> torch.Tensor:
        cell = self.cell or default_cell(height, width)
        cols = -(-width // cell)
        rows = torch.arange(height) // cell
        return rows[:, None] * cols + (torch.arange(width) // cell)[None, :]


def mix_regions(decoded: torch.Tensor, image: torch.Tensor, keep: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Samples (B, M, C, H, W) whose region ``r`` is the image's where ``keep[b, m, r]`` is 1, else the decode's."""
    kept = keep[..., labels][:, :, None]  # (B, M, 1, H, W)
    return kept * image[:, None] + (1 - kept) * decoded


def pool_regions(decoded: torch.Tensor, source: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Samples (B, M, C, H, W) whose region ``r`` of sample ``m`` comes from decode ``source[0, m, r]`` of the pool:
    the decoded regions of one sample come from different decodes, so they vary independently of each other."""
    index = source[..., labels][:, :, None].expand(decoded.shape[0], -1, decoded.shape[2], -1, -1)
    return torch.gather(decoded, 1, index)


def region_means(samples: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-channel region means (B, M, C * R) of samples (B, M, C, H, W)."""
    onehot = F.one_hot(labels.flatten(), int(labels.max()) + 1).to(samples)
    avg = onehot / onehot.sum(0, keepdim=True)
    return (samples.flatten(3) @ avg).flatten(2)


def region_change(samples: torch.Tensor, image: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """How much each region of each sample changed from the image: the region mean of ``|sample - image|`` over
    its pixels and channels, (B, M, R) for samples (B, M, C, H, W) of images (B, C, H, W)."""
    change = (samples - image[:, None]).abs().mean(2, keepdim=True)
    return region_means(change, labels)


def paint(weight: torch.Tensor, labels: torch.Tensor, channels: int, features: str) -> torch.Tensor:
    """Pixel map (B, C, H, W) of region weights: ``features="regions"``: weight (B, C * R) of region means, painted
    as the equivalent pixel-linear student (weight / region size); ``"mask"``: weight (B, R) of kept-region
    indicators, painted as weight / C on every channel (so the channel-summed map is the region weight);
    ``"change"``: weight (B, R) of region changes, painted as -weight / C (a region whose change lowers the class is
    positive, as a kept region that raises it is for ``"mask"``)."""
    counts = torch.bincount(labels.flatten()).to(weight)
    if features in ("mask", "change"):
        sign = -1.0 if features == "change" else 1.0
        return (sign * weight[:, labels] / channels)[:, None].expand(-1, channels, -1, -1).contiguous()
    per_channel = weight.reshape(weight.shape[0], channels, -1) / counts
    return per_channel[:, :, labels]
