"""Classifiers whose decision provably depends only on a known image region (ground truth for explainers)."""

from __future__ import annotations

import torch
from torch import nn


def box_mask(size: int | tuple[int, int], top: int, left: int, height: int, width: int) -> torch.Tensor:
    """A (H, W) float mask that is 1 inside the box and 0 elsewhere."""
    h, w = (size, size) if isinstance(size, int) else size
    if not (0 <= top < top + height <= h and 0 <= left < left + width <= w):
        raise ValueError(f"box (top={top}, left={left}, h={height}, w={width}) lies outside the {h}x{w} image")
    mask = torch.zeros(h, w)
    mask[top:top + height, left:left + width] = 1.0
    return mask


class RegionOnlyClassifier(nn.Module):
    """``f(x) = base(mask * x + fill * (1 - mask))``: pixels outside ``mask`` cannot change the output.

    The planted-evidence classifier of the benchmarks and behaviour tests: any attribution mass outside the mask is
    an explainer's error.
    """

    def __init__(self, base: nn.Module, mask: torch.Tensor, fill: float = 0.0) -> None:
        super().__init__()
        self.base = base
        self.register_buffer("mask", mask.float()[None, None])
        self.fill = fill

    @property
    def gradcam_layer(self) -> nn.Module:
        return self.base.gradcam_layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.mask.to(x.dtype)
        return self.base(x * m + self.fill * (1 - m))
