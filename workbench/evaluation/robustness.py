"""Robustness: does the explanation stay put when the input barely moves?

Max-Sensitivity (Yeh et al., NeurIPS 2019) and the Local Lipschitz Estimate (Alvarez-Melis & Jaakkola, 2018) as
Quantus 0.6 defines them; both lower is better. Quantus re-explains one noise sample of the batch at a time
(``nr_samples`` calls); here all samples of all images are stacked and re-explained ``batch_size`` images per call.
The noise comes from the scorecard's ``torch.Generator`` (``draw_noise``) instead of NumPy's global state.
"""

from __future__ import annotations

import torch

from workbench.evaluation.base import Batch, Metric, explain_in_chunks


class _Resampling(Metric):
    needs_explain = True
    nr_samples: int

    def draw_noise(self, inputs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def reexplain(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Perturbed inputs (S, B, F) and their prepared maps (S, B, F')."""
        x = batch.inputs
        s = self.nr_samples
        noisy = x[None] + self.draw_noise(x, batch.generator).to(x)
        maps = explain_in_chunks(batch.explain, batch.model, noisy.reshape(-1, *x.shape[1:]),
                                 batch.targets.repeat(s), batch.chunk)
        if maps.shape[1] != batch.maps[0].numel():
            raise ValueError(f"re-explanations have {maps.shape[1]} values per image; the maps have "
                             f"{batch.maps[0].numel()}")
        return noisy.reshape(s, x.shape[0], -1), self.prepare(maps).view(s, x.shape[0], -1)


class MaxSensitivity(_Resampling):
    """Largest relative change ||a - a'|| / ||a|| (Frobenius) of the map over ``nr_samples`` inputs with uniform
    noise in [-``lower_bound``, ``lower_bound``] added to every value (Quantus ``MaxSensitivity``: ``abs=False``,
    ``normalise=False``)."""

    name = "MaxSensitivity"
    units = "largest relative change of the map under small input noise, 0 and up"
    family = "robustness"
    higher_is_better = False

    def __init__(self, nr_samples: int = 200, lower_bound: float = 0.2, abs: bool = False, normalise: bool = False,
                 batch_size: int | None = None) -> None:
        super().__init__(abs, normalise, batch_size)
        self.nr_samples, self.lower_bound = nr_samples, lower_bound

    def draw_noise(self, inputs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(S, B, C, H, W) uniform noise in [-lower_bound, lower_bound]."""
        u = torch.rand(self.nr_samples, *inputs.shape, generator=generator, device=generator.device)
        return (2 * u - 1) * self.lower_bound

    def score(self, batch: Batch) -> torch.Tensor:
        _, maps = self.reexplain(batch)
        a = batch.maps.reshape(batch.maps.shape[0], -1)
        ratio = (a[None] - maps).norm(dim=-1) / a.norm(dim=-1)[None]
        return ratio.amax(0)


class LocalLipschitzEstimate(_Resampling):
    """Largest ||a - a'||_2 / (||x - x'||_2 + 1e-10) over ``nr_samples`` inputs with Gaussian noise
    (mean ``perturb_mean``, std ``perturb_std``) added to every value (Quantus ``LocalLipschitzEstimate``:
    ``abs=False``, ``normalise=True``; normalisation per image, see ``workbench.evaluation.base``)."""

    name = "LocalLipschitzEstimate"
    units = "largest map change per unit of input change, 0 and up"
    family = "robustness"
    higher_is_better = False

    def __init__(self, nr_samples: int = 200, perturb_std: float = 0.1, perturb_mean: float = 0.0, abs: bool = False,
                 normalise: bool = True, batch_size: int | None = None) -> None:
        super().__init__(abs, normalise, batch_size)
        self.nr_samples, self.perturb_std, self.perturb_mean = nr_samples, perturb_std, perturb_mean

    def draw_noise(self, inputs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(S, B, C, H, W) Gaussian noise."""
        z = torch.randn(self.nr_samples, *inputs.shape, generator=generator, device=generator.device)
        return self.perturb_mean + self.perturb_std * z

    def score(self, batch: Batch) -> torch.Tensor:
        noisy, maps = self.reexplain(batch)
        a = batch.maps.reshape(batch.maps.shape[0], -1)
        x = batch.inputs.reshape(batch.inputs.shape[0], -1)
        ratio = (a[None] - maps).norm(dim=-1) / ((x[None] - noisy).norm(dim=-1) + 1e-10)
        return ratio.amax(0)
