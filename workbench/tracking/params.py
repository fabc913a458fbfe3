"""Parameter presets of the correlation-filter trackers, after pytracking's ``parameter/<tracker>/<preset>.py``.

One frozen dataclass per tracker family (:class:`DCFParams`, :class:`ECOParams`, both extending the shared
:class:`CorrelationParams`) and one per channel-distilled variant (:class:`DCFCDParams`, :class:`ECOCDParams`),
which add the :class:`~workbench.tracking.distill.ChannelDistillation` settings. A tracker takes one as
``params=``; its ``asdict()`` is the recipe, so a benchmark row or a cache key names every hyper-parameter. The
defaults are the ones the trackers have always used. They are recipes of the house's one idiom
(:class:`workbench.recipes.Recipe`: ``full()`` the defaults, ``with_(...)`` a changed copy)::

    DCFTracker(features, params=DCFCDParams(distillation=ChannelDistillation(keep_ratio=0.1)))
    DCFTracker(features, channel_distillation=ChannelDistillation(keep_ratio=0.1))  # the same tracker
    ECOTracker(params=ECOParams.full().with_(samples=20))

Single parameters as tracker keywords (``ECOTracker(samples=20)``) still work but are deprecated.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Any, TypeVar

from workbench.recipes import Recipe, optional_field
from workbench.tracking.distill import ChannelDistillation
from workbench.tracking.scale import ScaleFilterParams


@dataclass(frozen=True)
class CorrelationParams(Recipe):
    """What every correlation-filter tracker here shares: ``padding`` (search window = target + padding x
    sqrt(area)), ``lambda_`` (ridge weight relative to the mean sample energy), ``sigma_factor`` (label width per
    target cell), ``scales`` and ``scale_step`` (the translation filter's own scale search), ``template_size`` (the
    window's side in pixels after resampling), ``scale_filter`` (DSST's separate 1-D scale filter, run after the
    translation estimate, see :mod:`workbench.tracking.scale`; None: none, as before it existed, and then it is left
    out of the recipe key). DSST runs the translation filter at the current scale only: :meth:`dsst` is that
    preset (``scales=1`` and the paper's scale filter)."""

    padding: float = 1.5
    lambda_: float = 1e-2
    sigma_factor: float = 0.1
    scales: int = 3
    scale_step: float = 1.03
    template_size: int = 128
    scale_filter: ScaleFilterParams | None = optional_field()

    def __post_init__(self) -> None:
        if self.padding < 0 or self.lambda_ <= 0 or self.sigma_factor <= 0:
            raise ValueError("padding must be >= 0, lambda_ and sigma_factor > 0")
        if self.scales < 1 or self.scale_step < 1.0:
            raise ValueError(f"scales must be >= 1 and scale_step >= 1, got {self.scales}, {self.scale_step}")
        if self.scale_filter is not None and not isinstance(self.scale_filter, ScaleFilterParams):
            raise TypeError(f"scale_filter must be a ScaleFilterParams or None, got {type(self.scale_filter).__name__}")

    @classmethod
    def dsst(cls: type[ParamsT], scale_filter: ScaleFilterParams | None = None) -> ParamsT:
        """DSST's split (Danelljan et al., BMVC 2014): the translation filter at the current scale only
        (``scales=1``), then the scale filter (default: the paper's :class:`ScaleFilterParams`)."""
        chosen = scale_filter if scale_filter is not None else ScaleFilterParams()
        return cls.full().with_(scales=1, scale_filter=chosen)


@dataclass(frozen=True)
class DCFParams(CorrelationParams):
    """The DCF's parameters: the shared ones and ``learning_rate``, the running averages' update rate."""

    learning_rate: float = 0.025

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.learning_rate <= 1.0:
            raise ValueError(f"learning_rate must lie in (0, 1], got {self.learning_rate}")


@dataclass(frozen=True)
class ECOParams(CorrelationParams):
    """The ECO-style tracker's parameters: ``compressed_channels`` (projection size), ``samples`` (sample-space
    components), ``learning_rate`` (a new sample's weight), ``update_every`` (frames between filter updates),
    ``cg_iterations`` / ``init_cg_iterations`` (conjugate-gradient steps per update / in the first frame); five
    scales, 1.02 apart."""

    compressed_channels: int = 12
    samples: int = 10
    learning_rate: float = 0.03
    update_every: int = 4
    cg_iterations: int = 5
    init_cg_iterations: int = 30
    scales: int = 5
    scale_step: float = 1.02

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.compressed_channels < 1 or self.samples < 1 or self.update_every < 1 or self.cg_iterations < 1:
            raise ValueError("compressed_channels, samples, update_every and cg_iterations must be at least 1")
        if not 0.0 < self.learning_rate <= 1.0:
            raise ValueError(f"learning_rate must lie in (0, 1], got {self.learning_rate}")


@dataclass(frozen=True)
class DCFCDParams(DCFParams):
    """DCF with channel distillation (DCF-CD): the DCF's parameters and the CD settings."""

    distillation: ChannelDistillation = field(default_factory=ChannelDistillation)


@dataclass(frozen=True)
class ECOCDParams(ECOParams):
    """ECO with channel distillation (ECO-CD): the ECO parameters and the CD settings."""

    distillation: ChannelDistillation = field(default_factory=ChannelDistillation)


ParamsT = TypeVar("ParamsT", bound=CorrelationParams)


def resolve_params(
    base: type[ParamsT],
    distilled: type[ParamsT],
    params: CorrelationParams | None,
    channel_distillation: ChannelDistillation | None,
    overrides: dict[str, Any],
) -> ParamsT:
    """The parameters a tracker runs with: ``params`` (default: ``base.full()``), moved to the ``distilled`` preset
    when ``channel_distillation`` is given, with the deprecated single-parameter keywords ``overrides`` applied."""
    if params is None:
        params = base.full()
    if not isinstance(params, base):
        raise TypeError(f"params must be a {base.__name__}, got {type(params).__name__}")
    unknown = set(overrides) - {f.name for f in dataclasses.fields(params)}
    if unknown:
        raise TypeError(f"unexpected parameters {sorted(unknown)} for {base.__name__}")
    if overrides:
        spelled = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
        warnings.warn(f"tracker keywords {sorted(overrides)} are deprecated: pass params={base.__name__}.full()"
                      f".with_({spelled})", DeprecationWarning, stacklevel=3)
    if channel_distillation is not None:
        values = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
        values["distillation"] = channel_distillation
        params = distilled(**values)
    return dataclasses.replace(params, **overrides) if overrides else params
