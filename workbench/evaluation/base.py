"""What every scorecard metric shares: the call convention, map preparation, explainer adapters, batched statistics.

A metric is called as ``metric(model, inputs, targets, maps, masks=None, explain=None, generator=None)`` and returns
one score per image (a ``(B,)`` tensor on the inputs' device). Conventions follow Quantus 0.6 (Hedström et al., JMLR
2023): maps may be ``(B, H, W)``, ``(B, 1, H, W)`` or shaped like the inputs; ``normalise`` divides a map by its
largest absolute value and ``abs`` takes absolute values, in that order. One deliberate difference applies to every
metric: Quantus's default ``normalise_by_max`` divides by the maximum over the *whole batch*, so an image's score
depends on which other images share its batch; here each map is divided by its own maximum. The two agree on a batch
of one image, and for every metric that is invariant to a common positive scale (ranks, ratios, correlations) on any
batch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from workbench.validation import check_images, check_target

ExplainFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
FAMILIES = ("faithfulness", "localisation", "randomisation", "robustness", "complexity")


@dataclass
class Batch:
    """The validated inputs of one metric call (all tensors on the inputs' device)."""

    model: nn.Module | Callable[[torch.Tensor], torch.Tensor] | None
    inputs: torch.Tensor  # (B, C, H, W)
    targets: torch.Tensor  # (B,) long
    maps: torch.Tensor  # (B, C', H, W), C' in {1, C}, after normalise/abs
    masks: torch.Tensor | None  # (B, 1, H, W) bool
    explain: ExplainFn | None
    generator: torch.Generator
    chunk: int  # images per model/explainer call


class Metric:
    """Base class: validates at the boundary, prepares maps, then ``score(batch) -> (B,)``.

    Subclasses declare ``name`` (Quantus's class name), ``family``, ``higher_is_better`` and whether they need ground
    truth masks (``needs_masks``) or re-explain (``needs_explain``); ``abs``/``normalise`` defaults are Quantus's.
    ``units`` says in a few words what a score measures and its range (:meth:`scale` adds what depends on the images).
    """

    name: ClassVar[str]
    family: ClassVar[str]
    higher_is_better: ClassVar[bool]
    needs_masks: ClassVar[bool] = False
    needs_explain: ClassVar[bool] = False
    needs_model: ClassVar[bool] = True
    units: ClassVar[str] = ""

    def __init__(self, abs: bool = False, normalise: bool = True, batch_size: int | None = None) -> None:
        self.abs = abs
        self.normalise = normalise
        self.batch_size = batch_size  # None: 4096 images per call on CUDA, 256 on a CPU (cache-sized, measured fastest)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __call__(self, model: nn.Module | Callable[[torch.Tensor], torch.Tensor] | None, inputs: torch.Tensor,
                 targets: int | list[int] | torch.Tensor, maps: torch.Tensor, masks: torch.Tensor | None = None,
                 explain: ExplainFn | Any | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """One score per image, ``(B,)``; see the class docstring for what the score means and its direction."""
        return self.score(self.batch(model, inputs, targets, maps, masks, explain, generator))

    def batch(self, model: nn.Module | Callable[[torch.Tensor], torch.Tensor] | None, inputs: torch.Tensor,
              targets: int | list[int] | torch.Tensor, maps: torch.Tensor, masks: torch.Tensor | None = None,
              explain: ExplainFn | Any | None = None, generator: torch.Generator | None = None) -> Batch:
        """Validate the arguments of a call (clear errors at the boundary) and prepare the maps."""
        x = check_images(inputs, "inputs")
        t = check_target(targets, x.shape[0], name="targets")
        if t is None:
            raise ValueError(f"{self.name} needs targets (one class index per image); got None")
        if self.needs_model and model is None:
            raise ValueError(f"{self.name} needs the model")
        if self.needs_masks and masks is None:
            raise ValueError(f"{self.name} is a localisation metric and needs ground-truth masks (a boolean tensor "
                             f"(B, H, W)); got masks=None")
        if self.needs_explain and explain is None:
            raise ValueError(f"{self.name} re-explains perturbed inputs or models and needs `explain`: an "
                             f"explain_fn(model, inputs, targets) -> maps or an explainer with .attribute(inputs, "
                             f"target=...)")
        gen = generator if generator is not None else torch.Generator(device=x.device).manual_seed(0)
        return Batch(model, x, t.to(x.device), self.prepare(check_maps(maps, x)),
                     check_masks(masks, x) if masks is not None else None,
                     as_explain_fn(explain, model) if explain is not None else None, gen,
                     self.batch_size or (4096 if x.device.type == "cuda" else 256))

    def prepare(self, maps: torch.Tensor) -> torch.Tensor:
        """Quantus's preprocessing of a map: normalise (here per image, see the module docstring), then abs."""
        if self.normalise:
            maps = normalise_by_max(maps)
        return maps.abs() if self.abs else maps

    def scale(self, shape: tuple[int, ...]) -> str:
        """What a score means and its range for images of ``shape`` (C, H, W), for a page's legend."""
        return self.units

    def score(self, batch: Batch) -> torch.Tensor:
        raise NotImplementedError


def check_maps(maps: torch.Tensor, inputs: torch.Tensor, name: str = "maps", finite: bool = True) -> torch.Tensor:
    """Return maps as a float ``(B, C', H, W)`` tensor on the inputs' device, C' being 1 or the inputs' C; with
    ``finite`` a NaN/Inf value is an error naming the images."""
    if not isinstance(maps, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(maps).__name__}")
    b, c, h, w = inputs.shape
    m = maps.detach().to(inputs.device).float()
    if m.dim() == 3:
        m = m.unsqueeze(1)
    if m.dim() != 4 or m.shape[0] != b or m.shape[-2:] != (h, w) or m.shape[1] not in (1, c):
        raise ValueError(f"{name} must be (B, H, W), (B, 1, H, W) or (B, C, H, W) matching inputs {tuple(inputs.shape)}"
                         f"; got {tuple(maps.shape)}")
    bad = ~torch.isfinite(m).flatten(1).all(1)
    if finite and bad.any():
        raise ValueError(f"{name} contain NaN/Inf values for image(s) {bad.nonzero().flatten().tolist()}")
    return m


def check_masks(masks: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Ground-truth masks as a ``(B, 1, H, W)`` bool tensor; accepts (H, W), (B, H, W) or (B, 1, H, W)."""
    if not isinstance(masks, torch.Tensor):
        raise TypeError(f"masks must be a boolean torch.Tensor (B, H, W); got {type(masks).__name__}")
    b, _, h, w = inputs.shape
    m = masks.to(inputs.device)
    if m.dim() == 2 and tuple(m.shape) == (h, w):
        m = m.expand(b, h, w)
    if m.dim() == 4 and m.shape[1] == 1:
        m = m[:, 0]
    if m.dim() != 3 or tuple(m.shape) != (b, h, w):
        raise ValueError(f"masks must be (H, W), (B, H, W) or (B, 1, H, W) matching inputs {tuple(inputs.shape)}; "
                         f"got {tuple(masks.shape)}")
    if m.dtype != torch.bool:
        if not ((m == 0) | (m == 1)).all():
            raise ValueError("masks must be boolean (or hold only 0 and 1)")
        m = m.bool()
    return m.unsqueeze(1)


def normalise_by_max(maps: torch.Tensor) -> torch.Tensor:
    """Divide each map by its largest absolute value (an all-zero map stays zero)."""
    peak = maps.abs().flatten(1).amax(1).view(-1, *([1] * (maps.dim() - 1)))
    return torch.where(peak > 0, maps / peak.clamp_min(torch.finfo(maps.dtype).tiny), maps)


# ---------------------------------------------------------------------------------------------- explainers


def as_explain_fn(explainer: ExplainFn | Any, model: nn.Module | None) -> ExplainFn:
    """Quantus's ``explain_fn(model, inputs, targets) -> maps`` from either that or a Captum-shaped explainer.

    An explainer object (``.attribute(inputs, target=...)``) is bound to ``model``; to explain another model (MPRT's
    randomised copies) it is deep-copied with every module of ``model`` mapped to the same module of the copy.
    """
    if hasattr(explainer, "attribute"):
        return AttributeExplain(explainer, model)
    if callable(explainer):
        return explainer
    raise TypeError(f"an explainer must be an explain_fn(model, inputs, targets) or have .attribute(inputs, target=...)"
                    f"; got {type(explainer).__name__}")


class AttributeExplain:
    """Adapter from a Captum-shaped explainer object to ``explain_fn(model, inputs, targets)``."""

    def __init__(self, explainer: Any, model: nn.Module | None) -> None:
        self.explainer = explainer
        self.model = model
        self._rebound: dict[int, tuple[nn.Module, Any]] = {}

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if model is self.model or self.model is None:
            return self.explainer.attribute(inputs, target=targets)
        key = id(model)
        if key not in self._rebound:
            self._rebound[key] = (model, self._rebind(model))
        return self._rebound[key][1].attribute(inputs, target=targets)

    def _rebind(self, other: nn.Module) -> Any:
        if not isinstance(self.model, nn.Module) or not _refers_to(self.explainer, self.model):
            raise ValueError(f"{type(self.explainer).__name__} holds no reference to the model, so it cannot explain a "
                             f"randomised copy; pass an explain_fn(model, inputs, targets) instead")
        memo = {id(a): b for a, b in zip(self.model.modules(), other.modules(), strict=True)}
        return copy.deepcopy(self.explainer, memo)


def _refers_to(obj: Any, model: nn.Module, depth: int = 3) -> bool:
    """Whether ``obj`` holds ``model`` or one of its modules in its attributes (a few levels deep)."""
    targets = {id(m) for m in model.modules()}
    frontier: list[Any] = [obj]
    for _ in range(depth):
        nxt: list[Any] = []
        for item in frontier:
            values = list(vars(item).values()) if hasattr(item, "__dict__") else []
            if isinstance(item, (list, tuple)):
                values = list(item)
            for v in values:
                if id(v) in targets:
                    return True
                if not isinstance(v, (torch.Tensor, str, int, float, bool, type(None))):
                    nxt.append(v)
        frontier = nxt
    return False


def explain_in_chunks(explain: ExplainFn, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                      chunk: int) -> torch.Tensor:
    """Re-explain a large stack of inputs ``chunk`` images at a time; maps come back flattened ``(N, F)``."""
    out = []
    for i in range(0, inputs.shape[0], chunk):
        m = explain(model, inputs[i:i + chunk], targets[i:i + chunk])
        m = torch.as_tensor(m).detach().to(inputs.device).float()
        if not torch.isfinite(m).all():
            raise ValueError("the explainer returned NaN/Inf maps for perturbed inputs")
        out.append(m.reshape(m.shape[0], -1))
    return torch.cat(out)


# ---------------------------------------------------------------------------------------------- model and statistics


def chunks(n: int, size: int) -> Iterator[slice]:
    for i in range(0, n, max(1, size)):
        yield slice(i, min(n, i + max(1, size)))


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Pearson correlation of ``(B, N)`` tensors (scipy's ``pearsonr(axis=1)``; NaN for a constant row)."""
    a = a.double() - a.double().mean(-1, keepdim=True)
    b = b.double() - b.double().mean(-1, keepdim=True)
    return ((a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))).float()


def average_ranks(x: torch.Tensor) -> torch.Tensor:
    """Row-wise ranks 1..N with ties given their average rank (scipy's ``rankdata(method="average")``)."""
    b, n = x.shape
    values, order = x.sort(dim=1, stable=True)
    new_group = torch.ones_like(values, dtype=torch.bool)
    new_group[:, 1:] = values[:, 1:] != values[:, :-1]
    group = (new_group.cumsum(1) - 1) + torch.arange(b, device=x.device)[:, None] * n
    position = torch.arange(1, n + 1, device=x.device, dtype=torch.float64).expand(b, n)
    sums = torch.zeros(b * n, dtype=torch.float64, device=x.device).index_add_(0, group.flatten(), position.flatten())
    counts = torch.zeros(b * n, dtype=torch.float64, device=x.device).index_add_(
        0, group.flatten(), torch.ones(b * n, dtype=torch.float64, device=x.device))
    mean_rank = (sums / counts.clamp_min(1))[group]
    return torch.empty_like(mean_rank).scatter_(1, order, mean_rank)


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Spearman rank correlation of ``(B, N)`` tensors (scipy's ``spearmanr``, average ranks for ties)."""
    return pearson(average_ranks(a), average_ranks(b))


def ssim_1d(a: torch.Tensor, b: torch.Tensor, win_size: int = 7, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Row-wise SSIM of flattened ``(B, N)`` maps, as Quantus's ``ssim`` (scikit-image ``structural_similarity`` on
    the 1-D arrays: a uniform window of 7, sample covariance, ``data_range`` = the pair's max - min, mean over the
    windows that fit; the windows that fit are exactly the valid positions of a 1-D average pool)."""
    a, b = a.double(), b.double()
    lo = torch.minimum(a.amin(-1), b.amin(-1))
    hi = torch.maximum(a.amax(-1), b.amax(-1))
    data_range = (hi - lo)[:, None]
    pool = torch.nn.functional.avg_pool1d

    def mean(v: torch.Tensor) -> torch.Tensor:
        return pool(v[:, None], win_size, stride=1)[:, 0]

    ux, uy = mean(a), mean(b)
    cov_norm = win_size / (win_size - 1)
    vx = cov_norm * (mean(a * a) - ux * ux)
    vy = cov_norm * (mean(b * b) - uy * uy)
    vxy = cov_norm * (mean(a * b) - ux * uy)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return s.mean(-1).float()


def trapezoid(curves: torch.Tensor) -> torch.Tensor:
    """Area under ``(B, S)`` curves with unit spacing (Quantus's ``calculate_auc``: ``np.trapz(dx=1)``)."""
    if curves.shape[-1] < 2:
        return torch.zeros(curves.shape[:-1], device=curves.device)
    return torch.trapezoid(curves, dx=1.0, dim=-1)


def image_minimum(inputs: torch.Tensor) -> torch.Tensor:
    """Quantus's ``perturb_baseline="black"``: each image's own minimum, ``(B, 1, 1, 1)``."""
    return inputs.flatten(1).amin(1).view(-1, 1, 1, 1)


def input_gradient(model: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor,
                   targets: torch.Tensor) -> torch.Tensor:
    """Signed gradient of each target logit with respect to the input (Simonyan et al.'s saliency before abs): a
    dependency-free ``explain_fn`` for sanity checks and benchmarks."""
    x = inputs.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = model(x)
        (grad,) = torch.autograd.grad(out.gather(1, torch.as_tensor(targets).view(-1, 1).long().to(x.device)).sum(), x)
    return grad.detach()
