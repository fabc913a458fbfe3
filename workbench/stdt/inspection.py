"""What one spatiotemporal-dropout draw of one clip does: kept patches, scores, attention rollout."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from workbench.stdt.model import BagOfPatchesViT, SpatiotemporalDropout, gather_tokens


def kept_mask(keep: tuple[torch.Tensor, torch.Tensor], frames: int, grid: int) -> np.ndarray:
    """(T, grid, grid) boolean map of the kept patches of one clip's draw ``keep = (t_idx (K,), n_idx (K,))``."""
    out = np.zeros(frames * grid * grid, bool)
    out[(keep[0] * grid * grid + keep[1]).numpy()] = True
    return out.reshape(frames, grid, grid)


def dropout_draw(model: BagOfPatchesViT, spatial_ratio: float, temporal_ratio: float, seed: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """One seeded STD draw for one clip of ``model``'s shape: kept ``(t_idx, n_idx)``, each (1, K)."""
    std = SpatiotemporalDropout(spatial_ratio, temporal_ratio, seed=seed)
    return std.draw(1, model.frames, model.grid**2)


class DrawInspection(NamedTuple):
    """What one STD draw of one clip does: the video score without dropout, the draw's score, where it looks."""

    score: float  #: P(fake) of the whole bag (no dropout)
    drawn_score: float  #: P(fake) of the kept patches only
    kept: np.ndarray  #: (T, h, w) bool, the kept patches
    rollout: np.ndarray  #: (T, h, w) attention rollout over the kept patches (0 where dropped)


def inspect_draw(model: BagOfPatchesViT, clip: torch.Tensor, keep: tuple[torch.Tensor, torch.Tensor]
                 ) -> DrawInspection:
    """Score ``clip`` (1, T, C, H, W) with every patch and with the draw ``keep``; the draw's attention rollout."""
    model.eval()
    with torch.no_grad():
        tok = model.tokens(clip)
        score, drawn = (float(torch.softmax(model.forward_head(model.encode(bag)), 1)[0, 1])
                        for bag in (tok.flatten(1, 2), gather_tokens(tok, *keep)))
    rollout = model.attention_rollout(clip, keep)[0].numpy()
    return DrawInspection(score, drawn, kept_mask((keep[0][0], keep[1][0]), model.frames, model.grid), rollout)
