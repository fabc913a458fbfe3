"""Localisation: does the map put its relevance on the ground-truth region (a planted cue, a forgery mask, a box)?

Relevance Mass Accuracy and Relevance Rank Accuracy (Arras et al., Information Fusion 2022) and the Pointing Game
(Zhang et al., IJCV 2018) as Quantus 0.6 defines them; all higher is better, all need ``masks`` (boolean, (B, H, W)).
An empty mask gives NaN, as in Quantus (the scorecard marks such a row failed).
"""

from __future__ import annotations

import torch

from workbench.evaluation.base import Batch, Metric


def _flat(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    a = batch.maps.reshape(batch.maps.shape[0], -1)
    s = batch.masks.expand_as(batch.maps).reshape(a.shape)
    return a, s


def _nan_where_empty(score: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    return torch.where(s.any(1), score, torch.full_like(score, float("nan")))


class _Localisation(Metric):
    family = "localisation"
    higher_is_better = True
    needs_masks = True
    needs_model = False


class RelevanceMassAccuracy(_Localisation):
    """Share of the (signed, normalised) relevance that falls inside the mask: sum inside / sum total."""

    name = "RelevanceMassAccuracy"
    units = "share of the map's relevance inside the mask, 0 to 1"

    def score(self, batch: Batch) -> torch.Tensor:
        a, s = _flat(batch)
        return _nan_where_empty((a * s).sum(1) / a.sum(1), s)


class RelevanceRankAccuracy(_Localisation):
    """Share of the K most relevant features that lie inside the mask, K being the mask's size. Ties in the map
    are broken by position (Quantus's ``np.argsort`` leaves their order unspecified)."""

    name = "RelevanceRankAccuracy"
    units = "share of the top-ranked pixels inside the mask, 0 to 1"

    def score(self, batch: Batch) -> torch.Tensor:
        a, s = _flat(batch)
        size = s.sum(1)
        order = a.argsort(dim=1, descending=True, stable=True)
        top = torch.arange(a.shape[1], device=a.device)[None, :] < size[:, None]
        hits = (s.gather(1, order) & top).sum(1)
        return _nan_where_empty(hits / size.clamp_min(1), s)


def pointing_hits(maps: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """(B,) 1.0 where a maximum of each flattened map ``maps`` (B, N) lies inside the boolean mask ``inside`` (B, N):
    the pointing game's rule (Zhang et al. 2018), shared by :class:`PointingGame` and the whitening views."""
    return (inside & (maps == maps.amax(1, keepdim=True))).any(1).float()


class PointingGame(_Localisation):
    """1 when a maximum of the map lies inside the mask, else 0; ``weighted=True`` scores a hit 1 - |mask| / N."""

    name = "PointingGame"
    units = "1 when the map's peak is inside the mask, else 0"

    def __init__(self, weighted: bool = False, abs: bool = False, normalise: bool = True) -> None:
        super().__init__(abs, normalise)
        self.weighted = weighted

    def score(self, batch: Batch) -> torch.Tensor:
        a, s = _flat(batch)
        hit = pointing_hits(a, s)
        if self.weighted:
            hit = torch.where(hit > 0, 1 - s.sum(1) / s.shape[1], hit)
        return _nan_where_empty(hit, s)
