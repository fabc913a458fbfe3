"""Faithfulness: does removing what a map calls important change the model's output?

Pixel-Flipping (Bach et al., PLoS ONE 2015), Region-Perturbation (Samek et al., IEEE TNNLS 2016), ROAD (Rong et al.,
ICML 2022) and Faithfulness-Correlation (Bhatt et al., IJCAI 2020) as Quantus 0.6 defines them, plus RISE's
deletion/insertion AUC (Petsiuk et al., BMVC 2018; ``workbench.metrics``). Quantus loops over perturbation steps
(and ROAD over images, with one sparse solve each); here every perturbed copy of every image is built at once and
sent through the model in chunks of ``batch_size`` images, and ROAD's imputation is one batched conjugate-gradient
solve.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from workbench.evaluation.base import Batch, Metric, chunks, image_minimum, pearson, trapezoid
from workbench.metrics import deletion_auc, insertion_auc
from workbench.runtime import predict


def _replacement_curve(batch: Batch, rank: torch.Tensor, counts: torch.Tensor, chunk: int) -> torch.Tensor:
    """Probability of the target (B, S) after replacing, at step s, the features whose ``rank`` < ``counts[s]`` by
    the image's minimum (Quantus's "black" baseline); ``rank`` is (B, C*H*W) over the flattened input."""
    x, t = batch.inputs, batch.targets
    b, c, h, w = x.shape
    base = image_minimum(x)
    steps = counts.numel()
    per_chunk = max(1, chunk // steps)
    out = torch.empty(b, steps, device=x.device)
    for s in chunks(b, per_chunk):
        replaced = (rank[s, None, :] < counts[None, :, None]).view(-1, steps, c, h, w)
        frames = torch.where(replaced, base[s, None], x[s, None]).reshape(-1, c, h, w)
        probs = predict(batch.model, frames, chunk, softmax=True, where="inputs")
        probs = probs.view(-1, steps, probs.shape[-1])
        out[s] = probs.gather(-1, t[s, None, None].expand(-1, steps, 1)).squeeze(-1)
    return out


class PixelFlipping(Metric):
    """Area under the target's probability as features are replaced by the image minimum in order of decreasing
    attribution, ``features_in_step`` at a time (Quantus ``PixelFlipping(return_auc_per_sample=True)``: the curve has
    one point per step, none for the intact image, and its area is ``np.trapz`` with unit spacing). Lower is better.
    Features are the input's values (C*H*W): a 1-channel map is repeated over the channels as Quantus does. Ties in
    the map are broken by position (Quantus's ``np.argsort`` leaves their order unspecified)."""

    name = "PixelFlipping"
    family = "faithfulness"
    higher_is_better = False
    units = "area under p(class) as features are flipped, unit spacing per step"

    def __init__(self, features_in_step: int = 1, abs: bool = False, normalise: bool = True,
                 batch_size: int | None = None) -> None:
        super().__init__(abs, normalise, batch_size)
        self.features_in_step = features_in_step

    def scale(self, shape: tuple[int, ...]) -> str:
        """The area's range grows with the number of steps (Quantus's unit spacing): 0 to steps - 1."""
        features = 1
        for size in shape:
            features *= int(size)
        steps = -(-features // self.features_in_step)
        return f"{self.units}: 0 to {steps - 1} here ({steps} steps of {self.features_in_step} features)"

    def score(self, batch: Batch) -> torch.Tensor:
        return trapezoid(self.curve(batch))

    def curve(self, batch: Batch) -> torch.Tensor:
        x = batch.inputs
        n = x[0].numel()
        if n % self.features_in_step:
            raise ValueError(f"features_in_step={self.features_in_step} must divide the number of features ({n})")
        a = batch.maps.expand_as(x).reshape(x.shape[0], -1)
        rank = _ranks(a)
        counts = torch.arange(1, n // self.features_in_step + 1, device=x.device) * self.features_in_step
        return _replacement_curve(batch, rank, counts, batch.chunk)


def _ranks(values: torch.Tensor, descending: bool = True) -> torch.Tensor:
    """Position of each entry in the row's sorted order (0 = largest when ``descending``), ties by index."""
    order = values.argsort(dim=1, descending=descending, stable=True)
    positions = torch.arange(values.shape[1], device=values.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, positions)


class RegionPerturbation(Metric):
    """Area under the drop of the target's probability, ``p(x) - p(x')``, as ``patch_size`` x ``patch_size`` regions
    are replaced by the image minimum in order of decreasing summed attribution ("morf"), for the first
    ``regions_evaluation`` regions (Quantus ``RegionPerturbation``; the image is padded to whole patches as Quantus
    does: edge values for the image, zeros for the map).

    Direction differs from Quantus on purpose: Quantus 0.6 declares ``ScoreDirection.LOWER``, but its curve is the
    *drop* in the score, which a faithful map makes large early (Samek et al.'s AOPC, higher is better); this
    class declares higher is better."""

    name = "RegionPerturbation"
    family = "faithfulness"
    higher_is_better = True
    units = "area under the drop of p(class) as regions are removed, unit spacing per region"

    def __init__(self, patch_size: int = 8, order: str = "morf", regions_evaluation: int = 100, abs: bool = False,
                 normalise: bool = True, batch_size: int | None = None) -> None:
        super().__init__(abs, normalise, batch_size)
        if order not in ("morf", "lerf"):
            raise ValueError(f"order must be 'morf' or 'lerf'; got {order!r}")
        self.patch_size, self.order, self.regions_evaluation = patch_size, order, regions_evaluation

    def score(self, batch: Batch) -> torch.Tensor:
        return trapezoid(self.curve(batch))

    def curve(self, batch: Batch) -> torch.Tensor:
        x = batch.inputs
        b, c, h, w = x.shape
        p = self.patch_size
        (top, _), (left, _) = _padding(h, p), _padding(w, p)
        n_rows, n_cols = math.ceil(h / p), math.ceil(w / p)
        rows = (torch.arange(h, device=x.device) + top) // p
        cols = (torch.arange(w, device=x.device) + left) // p
        region = (rows[:, None] * n_cols + cols[None, :]).flatten()  # (H*W,) region of each pixel
        a = batch.maps.expand_as(x).sum(1).reshape(b, -1)
        sums = torch.zeros(b, n_rows * n_cols, device=x.device).index_add_(1, region, a)
        region_rank = _ranks(sums, descending=self.order == "morf")
        rank = region_rank[:, region].repeat(1, c)  # (B, C*H*W): channel-major like the flattened input
        n_eval = min(self.regions_evaluation, n_rows * n_cols)
        counts = torch.arange(1, n_eval + 1, device=x.device)
        original = predict(batch.model, x, batch.chunk, softmax=True, where="inputs").gather(1, batch.targets[:, None])
        return original - _replacement_curve(batch, rank, counts, batch.chunk)


def _padding(size: int, patch: int) -> tuple[int, int]:
    extra = (patch - size % patch) % patch
    return extra // 2, extra - extra // 2


def _neighbour_sum(width: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Weighted sum of the 8 neighbours (1/6 direct, 1/12 diagonal: ROAD's imputation weights) of every pixel of
    images stored flat with a one-pixel zero border, ``(N, (H+2)*(W+2))``, as 8 shifted slices (on a CPU several
    times faster in float64 than a grouped ``conv2d``). Border entries of the result are meaningless."""
    row = width + 2
    offsets = [(dy * row + dx, 1 / 6 if dy == 0 or dx == 0 else 1 / 12)
               for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]

    def total(v: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(v)
        inner = out[:, row + 1:v.shape[1] - row - 1]
        for offset, weight in offsets:
            inner.add_(v[:, row + 1 + offset:v.shape[1] - row - 1 + offset], alpha=weight)
        return out

    return total


def linear_imputation(images: torch.Tensor, removed: torch.Tensor, tol: float = 1e-9,
                      max_iter: int | None = None) -> torch.Tensor:
    """ROAD's linear imputation without its noise: every removed pixel becomes the weighted mean of its in-frame
    neighbours (weights 1/6 direct, 1/12 diagonal), a sparse linear system that couples neighbouring removed
    pixels. Quantus (after Rong et al.'s code) builds and factorises one scipy sparse matrix per image and
    percentage; here all systems are solved together by Jacobi-preconditioned conjugate gradients (the system is
    symmetric positive definite), in float64 to ``tol`` (relative residual).

    ``images`` is (N, C, H, W), ``removed`` a (N, 1, H, W) bool mask; returns the imputed images."""
    n, c, h, w = images.shape
    x = F.pad(images.double(), (1, 1, 1, 1)).reshape(n * c, -1)
    m = F.pad(removed.double().expand(n, c, h, w), (1, 1, 1, 1)).reshape(n * c, -1)
    frame = F.pad(torch.ones(1, 1, h, w, dtype=torch.float64, device=x.device), (1, 1, 1, 1)).reshape(1, -1)
    neighbours = _neighbour_sum(w)
    diag = neighbours(frame) * m + (1 - m)  # in-frame neighbour weight of each removed pixel (1 elsewhere)

    def operator(u: torch.Tensor) -> torch.Tensor:
        return m * (diag * u - neighbours(m * u))

    rhs = m * neighbours((1 - m) * x)
    u = rhs / diag
    r = rhs - operator(u)
    z = r / diag
    p = z.clone()
    rz = (r * z).sum(1)
    scale = rhs.norm(dim=1).clamp_min(1e-30)
    for _ in range(max_iter or 4 * h * w):
        if (r.norm(dim=1) / scale).max() < tol:
            break
        ap = operator(p)
        alpha = (rz / (p * ap).sum(1).clamp_min(1e-300))[:, None]
        u = u + alpha * p
        r = r - alpha * ap
        z = r / diag
        rz_new = (r * z).sum(1)
        p = z + (rz_new / rz.clamp_min(1e-300))[:, None] * p
        rz = rz_new
    u = u.view(n, c, h + 2, w + 2)[..., 1:-1, 1:-1]
    return torch.where(removed, u, images.double()).to(images.dtype)


class ROAD(Metric):
    """RemOve And Debias (Rong et al., ICML 2022): for each percentage p in ``percentages`` (default 1, 3, ..., 99)
    the ``int(H*W*p/100)`` most relevant pixels are removed by noisy linear imputation (``linear_imputation`` plus
    Gaussian noise of std ``noise``) and the score is 1 when the model still predicts the target. Quantus 0.6 returns
    the curve averaged over images (``{percentage: accuracy}``); the per-image score here is that image's mean over
    the percentages (the area under its MoRF curve on a [0, 1] axis), so the mean of the column over images is the
    mean of Quantus's curve. Lower is better. Pixels are ranked by the map summed over channels and imputed in all
    channels (Quantus ranks the map's flattened values, the same thing for 1-channel maps)."""

    name = "ROAD"
    family = "faithfulness"
    higher_is_better = False
    units = "share of removal levels at which the class is still predicted, 0 to 1"

    def __init__(self, percentages: list[float] | None = None, noise: float = 0.01, abs: bool = False,
                 normalise: bool = True, batch_size: int | None = None) -> None:
        super().__init__(abs, normalise, batch_size)
        self.percentages = list(range(1, 100, 2)) if percentages is None else list(percentages)
        self.noise = noise

    def score(self, batch: Batch) -> torch.Tensor:
        return self.curve(batch).float().mean(1)

    def curve(self, batch: Batch) -> torch.Tensor:
        """(B, len(percentages)) bool: does the model still predict the target after removing p% of the pixels?"""
        x, t = batch.inputs, batch.targets
        b, c, h, w = x.shape
        rank = _ranks(batch.maps.sum(1).reshape(b, -1)).view(b, 1, h, w)
        counts = torch.tensor([int(h * w * p / 100) for p in self.percentages], device=x.device)
        steps = counts.numel()
        out = torch.empty(b, steps, dtype=torch.bool, device=x.device)
        for s in chunks(b, max(1, batch.chunk // steps)):
            removed = (rank[s, None] < counts.view(1, -1, 1, 1, 1)).reshape(-1, 1, h, w)
            frames = linear_imputation(x[s, None].expand(-1, steps, c, h, w).reshape(-1, c, h, w), removed)
            noise = torch.randn(frames.shape, generator=batch.generator, device=x.device, dtype=frames.dtype)
            frames = torch.where(removed, frames + self.noise * noise, frames)
            pred = predict(batch.model, frames, batch.chunk, where="inputs").argmax(-1).view(-1, steps)
            out[s] = pred == t[s, None]
        return out


class FaithfulnessCorrelation(Metric):
    """Pearson correlation, over ``nr_runs`` random subsets of ``subset_size`` features, between the attribution
    summed over the subset and the drop of the target's logit (Quantus's default ``softmax=False``; probability with
    ``softmax=True``) when the subset is replaced by the image minimum (Quantus ``FaithfulnessCorrelation``; Bhatt et
    al. 2020). Higher is better. The subsets are drawn with the scorecard's ``torch.Generator`` (``draw_subsets``)
    instead of NumPy's global state."""

    name = "FaithfulnessCorrelation"
    units = "Pearson correlation of map mass and probability drop, -1 to 1"
    family = "faithfulness"
    higher_is_better = True

    def __init__(self, nr_runs: int = 100, subset_size: int = 224, softmax: bool = False, abs: bool = False,
                 normalise: bool = True, batch_size: int | None = None) -> None:
        super().__init__(abs, normalise, batch_size)
        self.nr_runs, self.subset_size, self.softmax = nr_runs, subset_size, softmax

    def draw_subsets(self, batch_size: int, n_features: int, generator: torch.Generator) -> torch.Tensor:
        """(B, nr_runs, subset_size) feature indices, each subset without replacement."""
        device = generator.device
        noise = torch.rand(batch_size, self.nr_runs, n_features, generator=generator, device=device)
        return noise.argsort(-1)[..., :self.subset_size]

    def score(self, batch: Batch) -> torch.Tensor:
        x, t = batch.inputs, batch.targets
        b = x.shape[0]
        n = x[0].numel()
        if self.subset_size >= n:
            raise ValueError(f"subset_size={self.subset_size} must be smaller than the number of features ({n})")
        subsets = self.draw_subsets(b, n, batch.generator).to(x.device)
        a = batch.maps.expand_as(x).reshape(b, -1)
        attribution = a.gather(1, subsets.flatten(1)).view(b, self.nr_runs, -1).sum(-1)
        original = predict(batch.model, x, batch.chunk, softmax=self.softmax, where="inputs").gather(1, t[:, None])
        drops = torch.empty(b, self.nr_runs, device=x.device)
        base = image_minimum(x).flatten(1)
        for s in chunks(b, max(1, batch.chunk // self.nr_runs)):
            flat = x[s].reshape(-1, 1, n).repeat(1, self.nr_runs, 1)
            flat.scatter_(2, subsets[s], base[s, :, None].expand(-1, self.nr_runs, self.subset_size))
            probs = predict(batch.model, flat.view(-1, *x.shape[1:]), batch.chunk, softmax=self.softmax,
                            where="inputs")
            drops[s] = original[s] - probs.view(-1, self.nr_runs, probs.shape[-1]).gather(
                -1, t[s, None, None].expand(-1, self.nr_runs, 1)).squeeze(-1)
        return pearson(attribution, drops)


class _RISE(Metric):
    family = "faithfulness"

    def __init__(self, step: int = 1) -> None:
        super().__init__(abs=False, normalise=False)
        self.step = step


class Deletion(_RISE):
    """RISE deletion AUC (``workbench.metrics.deletion_auc``: pixels replaced by zeros in order of decreasing
    saliency, ``step`` at a time, normalised area). Lower is better. Not in Quantus."""

    name = "Deletion"
    higher_is_better = False
    units = "normalised area under p(class) as pixels are deleted, 0 to 1"

    def score(self, batch: Batch) -> torch.Tensor:
        return deletion_auc(batch.model, batch.inputs, batch.maps, batch.targets, step=self.step)


class Insertion(_RISE):
    """RISE insertion AUC (``workbench.metrics.insertion_auc``: pixels put back into a blurred copy in order of
    decreasing saliency, normalised area). Higher is better. Not in Quantus."""

    name = "Insertion"
    higher_is_better = True
    units = "normalised area under p(class) as pixels are inserted, 0 to 1"

    def score(self, batch: Batch) -> torch.Tensor:
        return insertion_auc(batch.model, batch.inputs, batch.maps, batch.targets, step=self.step)
