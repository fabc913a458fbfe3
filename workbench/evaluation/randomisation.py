"""Randomisation: does the explanation depend on what the model learned? (Adebayo et al.'s sanity checks.)

MPRT, the model parameter randomisation test (Adebayo et al., NeurIPS 2018), and Random Logit (Sixt et al., ICML
2020) as Quantus 0.6 defines them; both lower is better (an explanation that survives randomising the model, or
that looks the same for another class, explains little of the model).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from workbench.evaluation.base import Batch, Metric, spearman, ssim_1d
from workbench.runtime import predict


@dataclass
class MPRTResult:
    """Similarity of each image's map to the maps of progressively randomised models.

    ``layers[0]`` is ``"original"`` (the map against a re-explanation of the trained model), then one entry per
    randomised module in the order randomised; ``similarity`` is (B, len(layers)); ``maps`` (kept on request) holds
    the prepared (normalised, absolute) re-explanations, one (B, ...) tensor per entry of ``layers``.
    """

    layers: list[str]
    similarity: torch.Tensor
    maps: list[torch.Tensor] | None = None


def randomised_models(model: nn.Module, order: str = "top_down", seed: int = 42) -> Iterator[tuple[str, nn.Module]]:
    """Yield ``(module name, model copy)`` with one more module's parameters re-initialised at each step.

    As Quantus's ``PyTorchModel.get_random_layer_generator``: the modules that have ``reset_parameters`` (convs,
    linears, norms), last first for ``"top_down"`` (cascading), first first for ``"bottom_up"``, or one at a time on
    a fresh copy for ``"independent"``; before each reset the torch seed is set to ``seed + 1``. The model is
    deep-copied (never modified) and the global torch random state is restored afterwards (``fork_rng``).
    """
    if order not in ("top_down", "bottom_up", "independent"):
        raise ValueError(f"order must be 'top_down', 'bottom_up' or 'independent'; got {order!r}")
    original = copy.deepcopy(model.state_dict())
    randomised = copy.deepcopy(model)
    modules = [(n, m) for n, m in randomised.named_modules() if hasattr(m, "reset_parameters")]
    if order == "top_down":
        modules = modules[::-1]
    devices = [p.device for p in randomised.parameters() if p.device.type == "cuda"][:1]
    for name, module in modules:
        if order == "independent":
            randomised.load_state_dict(original)
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed + 1)
            module.reset_parameters()
        yield name, randomised


class MPRT(Metric):
    """Model Parameter Randomisation Test: Spearman rank correlation between the map and the map of the same input
    under a model whose layers are randomised top-down, one more layer at each step (Quantus ``MPRT``: ``abs=True``,
    ``normalise=True``, ``seed=42``). ``curve`` gives the correlation after each layer; the score is the correlation
    with the fully randomised model (Quantus's ``return_last_correlation=True``). Lower is better.

    Quantus's ``return_average_correlation`` averages over its "original" entry too (its code skips a key named
    "orig" that does not exist); use ``curve(...).similarity[:, 1:].mean(1)`` for the average over randomised layers.
    """

    name = "MPRT"
    family = "randomisation"
    higher_is_better = False
    units = "Spearman correlation with the map under the randomised model, -1 to 1"
    needs_explain = True

    def __init__(self, layer_order: str = "top_down", seed: int = 42, abs: bool = True, normalise: bool = True) -> None:
        super().__init__(abs, normalise)
        self.layer_order, self.seed = layer_order, seed

    def score(self, batch: Batch) -> torch.Tensor:
        return self.curve(batch).similarity[:, -1]

    def curve(self, batch: Batch, keep_maps: bool = False) -> MPRTResult:
        if not isinstance(batch.model, nn.Module):
            raise TypeError(f"MPRT randomises the model's layers and needs an nn.Module; got {type(batch.model)}")
        a = batch.maps.reshape(batch.maps.shape[0], -1)
        layers, scores, maps = [], [], []

        def compare(name: str, model: nn.Module) -> None:
            e = self._explain(batch, model)
            layers.append(name)
            scores.append(spearman(a, e.reshape(e.shape[0], -1)))
            if keep_maps:
                maps.append(e)

        compare("original", batch.model)
        for name, model in randomised_models(batch.model, self.layer_order, self.seed):
            compare(name, model)
        return MPRTResult(layers, torch.stack(scores, 1), maps if keep_maps else None)

    def _explain(self, batch: Batch, model: nn.Module) -> torch.Tensor:
        e = torch.as_tensor(batch.explain(model, batch.inputs, batch.targets)).detach().to(batch.inputs.device).float()
        if e.shape[0] != batch.inputs.shape[0] or e[0].numel() != batch.maps[0].numel():
            raise ValueError(f"re-explanation has shape {tuple(e.shape)}; the maps have {tuple(batch.maps.shape)}")
        return self.prepare(e)


class RandomLogit(Metric):
    """SSIM between the map of the target class and the map of a random other class (Quantus ``RandomLogit``:
    ``abs=False``, ``normalise=True``, SSIM of the flattened maps). Lower is better. The other class is drawn
    uniformly from the model's other classes with the scorecard's generator (``draw_off_targets``); Quantus draws it
    from NumPy's global state and needs ``num_classes`` (default 1000), here read from the model's output when None.
    """

    name = "RandomLogit"
    family = "randomisation"
    higher_is_better = False
    units = "SSIM of the class's map and another class's map, -1 to 1"
    needs_explain = True

    def __init__(self, num_classes: int | None = None, abs: bool = False, normalise: bool = True) -> None:
        super().__init__(abs, normalise)
        self.num_classes = num_classes

    def draw_off_targets(self, targets: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
        """A class other than each target, uniformly."""
        shift = torch.randint(1, num_classes, targets.shape, generator=generator, device=generator.device)
        return (targets + shift.to(targets.device)) % num_classes

    def score(self, batch: Batch) -> torch.Tensor:
        k = self.num_classes or predict(batch.model, batch.inputs[:1], 1, where="inputs").shape[-1]
        if k < 2:
            raise ValueError("RandomLogit needs a model with at least two classes")
        off = self.draw_off_targets(batch.targets, k, batch.generator)
        e = torch.as_tensor(batch.explain(batch.model, batch.inputs, off)).detach().to(batch.inputs.device).float()
        if e[0].numel() != batch.maps[0].numel():
            raise ValueError(f"re-explanation has shape {tuple(e.shape)}; the maps have {tuple(batch.maps.shape)}")
        e = self.prepare(e)
        b = batch.maps.shape[0]
        return ssim_1d(batch.maps.reshape(b, -1), e.reshape(b, -1))


__all__ = ["MPRT", "MPRTResult", "RandomLogit", "randomised_models"]
