"""Complexity: is the map concise? Sparseness (Chalasani et al., ICML 2020: the Gini index of the absolute map,
higher is better) and Complexity (Bhatt et al., IJCAI 2020: the entropy of the map's fractional contributions, lower
is better), as Quantus 0.6 defines them (``abs=True``, ``normalise=True``, the map's own values as features)."""

from __future__ import annotations

import torch

from workbench.evaluation.base import Batch, Metric


class _Complexity(Metric):
    family = "complexity"
    needs_model = False

    def __init__(self, abs: bool = True, normalise: bool = True) -> None:
        super().__init__(abs, normalise)


class Sparseness(_Complexity):
    """Gini index of the flattened map (plus 1e-7, as Quantus): 0 for a uniform map, towards 1 for a single peak."""

    name = "Sparseness"
    higher_is_better = True
    units = "Gini index of the map, 0 (uniform) to 1 (one peak)"

    def score(self, batch: Batch) -> torch.Tensor:
        a = batch.maps.reshape(batch.maps.shape[0], -1).double() + 1e-7
        n = a.shape[1]
        a = a.sort(1).values
        k = torch.arange(1, n + 1, device=a.device, dtype=a.dtype)
        return (((2 * k - n - 1) * a).sum(1) / (n * a.sum(1))).float()


class Complexity(_Complexity):
    """Entropy of the fractional contributions |a_i| / sum |a|: log(N) for a uniform map, 0 for a single peak."""

    name = "Complexity"
    higher_is_better = False
    units = "entropy of the map's shares, 0 (one peak) to ln(pixels) (uniform)"

    def score(self, batch: Batch) -> torch.Tensor:
        a = batch.maps.reshape(batch.maps.shape[0], -1).double()
        p = a / a.abs().sum(1, keepdim=True)
        return (-(p * torch.log(p + 1e-12)).sum(1)).float()
