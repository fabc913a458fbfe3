"""Every setting of re-label distillation as one frozen config: :class:`RelabelConfig`, with its sampling, sigma
and student strategies as nested frozen configs (after lime's ``lime_image`` delegating the surrogate to
``lime_base``, and pytracking's parameter presets: a preset is a classmethod, ``RelabelConfig.paper()``).

``RelabelDistillation(forward_func, vae, config, **changes)`` runs with ``config.with_(**changes)``; ``with_``
takes every flat keyword the constructor took before issue 25 (``n_samples=``, ``sigma=``, ``ridge_alpha=``,
``keep_share=`` ...) and puts it where it belongs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from workbench.relabel.regions import Regions
from workbench.relabel.sigma import FixedSigma, FlipBandBisection, SigmaSearch
from workbench.relabel.students import RidgeStudent, SGDStudent, Student

MIN_SAMPLES = 10
#: what the student can see (``SamplingConfig.features``)
FEATURES = ("pixels", "regions", "mask", "change")
#: what the regions not kept from the image show (``SamplingConfig.fill``, issue 26)
FILLS = ("decode", "prior", "blur", "mean")


def check_n_samples(n_samples: object) -> int:
    """``n_samples`` as an int of at least :data:`MIN_SAMPLES`, or a ValueError naming the expected range."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < MIN_SAMPLES:
        raise ValueError(f"n_samples must be an integer >= {MIN_SAMPLES} (synthetic samples per image); "
                         f"got {n_samples!r}")
    return n_samples


@dataclass(frozen=True)
class SigmaConfig:
    """How the latent noise scale is chosen. ``search``: ``"auto"`` (:class:`FlipBandBisection` from the other
    fields), a fixed scale (:class:`FixedSigma`) or any :class:`SigmaSearch`. ``flip_band``: the share of
    label-shifted samples aimed for (a flip rate outside it is reported as ``"out_of_band"``, whatever the search);
    ``sigma_range``, ``search_steps``, ``probe_samples``: the bisection's bounds, halvings and samples per probe."""

    search: float | Literal["auto"] | SigmaSearch = "auto"
    flip_band: tuple[float, float] = (0.3, 0.7)
    sigma_range: tuple[float, float] = (0.02, 20.0)
    search_steps: int = 8
    probe_samples: int = 128

    def __post_init__(self) -> None:
        self.build()  # checks flip_band and a fixed sigma

    def build(self) -> SigmaSearch:
        """The sigma search these settings describe."""
        bisection = FlipBandBisection(self.flip_band, self.sigma_range, self.search_steps, self.probe_samples)
        if isinstance(self.search, SigmaSearch):
            return self.search
        return bisection if isinstance(self.search, str) and self.search == "auto" else FixedSigma(self.search)


@dataclass(frozen=True)
class StudentConfig:
    """The linear student. ``kind``: ``"ridge"`` (:class:`RidgeStudent`: ``ridge_alpha``, ``soft_weight``),
    ``"sgd"`` (:class:`SGDStudent`: ``temperature``, ``kd_weight``, ``sgd_steps``, ``sgd_lr``, ``weight_decay``) or
    any :class:`Student` (the other fields then do not apply)."""

    kind: Literal["ridge", "sgd"] | Student = "ridge"
    ridge_alpha: float = 1.0
    soft_weight: float = 1.0
    temperature: float = 2.0
    kd_weight: float = 1.0
    sgd_steps: int = 150
    sgd_lr: float = 0.05
    weight_decay: float = 1e-3

    def __post_init__(self) -> None:
        if not isinstance(self.kind, Student) and not (isinstance(self.kind, str) and self.kind in ("ridge", "sgd")):
            raise ValueError(f"student must be 'ridge', 'sgd' or a Student; got {self.kind!r}")

    def build(self) -> Student:
        """The student these settings describe."""
        if isinstance(self.kind, Student):
            return self.kind
        if self.kind == "ridge":
            return RidgeStudent(self.ridge_alpha, self.soft_weight)
        return SGDStudent(self.temperature, self.kd_weight, self.sgd_steps, self.sgd_lr, self.weight_decay)


@dataclass(frozen=True)
class SamplingConfig:
    """How the samples are made (ours, issue 12; :meth:`paper` is the paper's). ``keep_share``: None (every sample a
    whole decode) or the probability that each region of each sample is kept from the image, drawn independently,
    so the student can tell the regions the classifier uses from those that merely co-vary with them.
    ``regions``: how the image is split (a :class:`Regions`; None: :class:`GridRegions`, the lime baselines' grid).
    ``features``: what the student sees: ``"pixels"`` (the paper), ``"regions"`` (per-channel region means,
    painted back as pixel weights) or ``"mask"`` (the kept-region indicators; needs ``keep_share``).
    ``sigma_scales``: the samples cycle through ``sigma * scale`` (``(1.0,)``: the paper's one sigma).
    ``region_source``: ``"own"`` (a sample's regions from its own decode) or ``"pool"`` (each region from a decode
    drawn at random among all the samples', so regions vary independently of each other).
    ``fill`` (ours, issue 26): what the regions not kept from the image show, the sample's "off" state (see
    :data:`FILLS`): ``"decode"`` (the decodes of ``z0 + sigma * eps`` plus the residual, as before), ``"prior"``
    (decodes of ``sigma * eps``: faces of the VAE's prior, not the image's neighbourhood; no residual), ``"blur"``
    (the decodes blurred by a Gaussian of a sixteenth of the image side: the image's detail gone) or ``"mean"``
    (each decode's per-channel mean colour: a flat fill, like lime's, in the decode's colour).
    ``features="change"`` (ours, issue 26): the student sees how much each region changed (the region mean of
    ``|sample - image|``), painted back as minus its weight (a region whose change lowers the class is positive)."""

    keep_share: float | None = 0.5
    regions: Regions | None = None
    features: Literal["pixels", "regions", "mask", "change"] = "regions"
    sigma_scales: tuple[float, ...] = (1.0,)
    region_source: Literal["own", "pool"] = "pool"
    fill: Literal["decode", "prior", "blur", "mean"] = "decode"

    def __post_init__(self) -> None:
        keep = self.keep_share
        if keep is not None and not (isinstance(keep, float | int) and 0.0 < keep < 1.0):
            raise ValueError(f"keep_share must be None or lie in (0, 1); got {keep!r}")
        if self.features not in FEATURES:
            raise ValueError(f"features must be one of {FEATURES}; got {self.features!r}")
        if self.features == "mask" and keep is None:
            raise ValueError("features='mask' needs keep_share (the kept-region indicators are its features)")
        if self.regions is not None and not isinstance(self.regions, Regions):
            raise ValueError(f"regions must be None or a Regions; got {self.regions!r}")
        scales = tuple(self.sigma_scales)
        if not scales or not all(isinstance(v, float | int) and v > 0 for v in scales):
            raise ValueError(f"sigma_scales must be a non-empty tuple of positive numbers; got {self.sigma_scales!r}")
        object.__setattr__(self, "sigma_scales", scales)
        if self.region_source not in ("own", "pool"):
            raise ValueError(f"region_source must be 'own' or 'pool'; got {self.region_source!r}")
        if self.fill not in FILLS:
            raise ValueError(f"fill must be one of {FILLS}; got {self.fill!r}")

    @classmethod
    def paper(cls) -> SamplingConfig:
        """The paper's sampling: whole decodes of each sample's own latent, a student on pixels, one sigma."""
        return cls(keep_share=None, features="pixels", sigma_scales=(1.0,), region_source="own")


_NESTED = {"sigma": SigmaConfig, "student": StudentConfig, "sampling": SamplingConfig}
#: the flat keyword of each nested config's first field (``sigma=0.8``, ``student="sgd"``)
_SHORTHAND = {"sigma": "search", "student": "kind"}


@dataclass(frozen=True)
class RelabelConfig:
    """Every setting of :class:`~workbench.relabel.RelabelDistillation`. The default (ours, issue 12) is the
    constructor's default; :meth:`paper` is the paper's variant.

    ``n_samples``: synthetic samples per image (>= 10; LIME's default 1000). ``sigma``, ``student``, ``sampling``:
    the strategies (:class:`SigmaConfig`, :class:`StudentConfig`, :class:`SamplingConfig`). ``residual``: add
    ``x - D(mu_E(x))`` to every decoded sample (ours). ``holdout``: share of samples kept out of the fit to measure
    fidelity. ``map_mode``: ``"signed"`` (student weights) or ``"times_input"``. ``clip``: the range decoded samples
    are clipped to (None: none). ``batch_size``: samples per VAE decode / teacher call (``"auto"``: about 2M input
    values a call on a CPU, 16M on a GPU). ``max_batch`` (ours, issue 13): images explained together by
    ``attribute`` (``"auto"``: as many as keep their N decodes under 1 GiB of float32). ``seed``: seed of the
    latent noise (the same seed gives the same explanation on the same device).
    """

    n_samples: int = 1000
    sigma: SigmaConfig = field(default_factory=SigmaConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    residual: bool = True
    holdout: float = 0.2
    map_mode: Literal["signed", "times_input"] = "signed"
    clip: tuple[float, float] | None = (0.0, 1.0)
    batch_size: int | Literal["auto"] = "auto"
    max_batch: int | Literal["auto"] = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        check_n_samples(self.n_samples)
        for name, kind in _NESTED.items():
            if not isinstance(getattr(self, name), kind):
                raise TypeError(f"{name} must be a {kind.__name__}; got {getattr(self, name)!r} (or give it as "
                                f"RelabelConfig().with_({name}=...))")
        if not 0.0 < self.holdout < 0.9:
            raise ValueError(f"holdout must lie in (0, 0.9); got {self.holdout}")
        if self.map_mode not in ("signed", "times_input"):
            raise ValueError(f"map_mode must be 'signed' or 'times_input'; got {self.map_mode!r}")
        for name in ("batch_size", "max_batch"):
            value = getattr(self, name)
            if value != "auto" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be 'auto' or a positive integer; got {value!r}")

    @classmethod
    def paper(cls) -> RelabelConfig:
        """The paper's variant, bit-identical to RLD's defaults before issue 12: whole VAE decodes, a ridge student
        on pixels (alpha 0.01, half hard / half soft labels), one sigma per image, no residual."""
        return cls(residual=False, student=StudentConfig(ridge_alpha=1e-2, soft_weight=0.5),
                   sampling=SamplingConfig.paper())

    @classmethod
    def black_box(cls) -> RelabelConfig:
        """Ours (issue 26), for a black box that reads what the regions show (dlib's face recognition): regions not
        kept are the decode's mean colour, a ridge student (alpha 0.01) on the kept-region indicators, one fixed
        sigma (no search: the fill hardly depends on it). See ``benchmarks/results/blackbox.md``."""
        return cls(sigma=SigmaConfig(search=1.0), student=StudentConfig(ridge_alpha=1e-2),
                   sampling=SamplingConfig(fill="mean", features="mask"))

    def with_(self, **changes: Any) -> RelabelConfig:
        """A copy with settings changed, each by its flat name (``n_samples=``, ``sigma=0.8``, ``student="sgd"``,
        ``sgd_steps=``, ``keep_share=``, ``features=`` ...) or a nested config (``sampling=SamplingConfig(...)``)."""
        if not changes:
            return self
        top, nested = {}, {name: {} for name in _NESTED}
        owners = {f.name: name for name, kind in _NESTED.items() for f in dataclasses.fields(kind)}
        for key, value in changes.items():
            if key in _NESTED and not isinstance(value, _NESTED[key]) and key in _SHORTHAND:
                nested[key][_SHORTHAND[key]] = value
            elif key in _NESTED or key in {f.name for f in dataclasses.fields(self)}:
                top[key] = value
            elif key in owners and key not in _SHORTHAND.values():
                nested[owners[key]][key] = value
            else:
                raise TypeError(f"unexpected RLD setting {key!r}; see RelabelConfig, SigmaConfig, StudentConfig and "
                                "SamplingConfig for the settings")
        for name, values in nested.items():
            if values:
                top[name] = dataclasses.replace(top.get(name, getattr(self, name)), **values)
        return dataclasses.replace(self, **top)
