"""The re-label distillation explainer: :class:`RelabelDistillation` and the :class:`RelabelExplanation` it reports.

See :mod:`workbench.relabel` for what comes from the paper and what is ours. The stages run batched over images and
samples on the VAE's device: encode, sigma search (a :class:`~workbench.relabel.sigma.SigmaSearch`), decode the
perturbed latents, re-label them with the teacher, fit the student (a :class:`~workbench.relabel.students.Student`).
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from workbench.explainers.base import OK, Explainer, ForwardFunc, TargetType
from workbench.relabel.fidelity import FidelityCheck, fidelity_status
from workbench.relabel.regions import Regions, paint
from workbench.relabel.sampling import RegionSampling
from workbench.relabel.sigma import FixedSigma, FlipBandBisection, FlipRate, SigmaSearch
from workbench.relabel.students import LinearStudent, RidgeStudent, SGDStudent, Student
from workbench.runtime import synchronize
from workbench.validation import check_images

MIN_SAMPLES = 10


class RelabelWarning(UserWarning):
    """A re-label explanation is degenerate (nothing or everything flipped): its map is all zeros."""


@dataclass
class RelabelExplanation:
    """Everything one RLD explanation produced, for the views and for reporting.

    ``status`` is ``"ok"``, ``"out_of_band"`` (the flip rate missed ``flip_band`` but the student was fitted),
    ``"below_majority"`` (fitted, no better than the majority rate on held-out samples), ``"no_flip"`` or
    ``"all_flip"`` (one class only among the samples: no student, the map is all zeros). ``flip_rate``: the share of
    samples whose label shifted (0 exactly when ``no_flip``, 1 when ``all_flip``). ``fidelity``: the student's
    accuracy against the re-labels on held-out samples; ``majority_rate``: a constant answer's (the majority label).
    """

    image: torch.Tensor
    target: int
    attribution: torch.Tensor
    samples: torch.Tensor
    latents: torch.Tensor
    latent_center: torch.Tensor
    hard_labels: torch.Tensor
    soft_labels: torch.Tensor
    teacher_labels: torch.Tensor
    student: LinearStudent
    sigma: float
    flip_rate: float
    fidelity: float
    majority_rate: float
    status: str
    timings: dict[str, float] = field(default_factory=dict)
    regions: torch.Tensor | None = None
    keep: torch.Tensor | None = None
    region_weight: torch.Tensor | None = None
    features: str = "pixels"

    @property
    def map2d(self) -> torch.Tensor:
        """The signed channel sum of the attribution, (H, W): the map the views draw."""
        return self.attribution.sum(0)

    @property
    def fidelity_check(self) -> FidelityCheck:
        """Fidelity vs majority rate in percent, their difference and a sentence saying it (what pages quote)."""
        return FidelityCheck.of(self.fidelity, self.majority_rate)


@contextlib.contextmanager
def _timed(timings: dict[str, float], stage: str, device: torch.device) -> Iterator[None]:
    """Add the wall time of the block (queued CUDA work included) to ``timings[stage]``."""
    synchronize(device)
    t0 = time.perf_counter()
    yield
    synchronize(device)
    timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - t0


def check_n_samples(n_samples: object) -> int:
    """``n_samples`` as an int of at least :data:`MIN_SAMPLES`, or a ValueError naming the expected range."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < MIN_SAMPLES:
        raise ValueError(f"n_samples must be an integer >= {MIN_SAMPLES} (synthetic samples per image); "
                         f"got {n_samples!r}")
    return n_samples


class RelabelDistillation(RegionSampling, Explainer):
    """Captum-shaped re-label distillation explainer.

    ``RelabelDistillation(forward_func, vae).attribute(inputs, target=None)`` returns attributions shaped like
    ``inputs`` (B, C, H, W) on the inputs' device (``last_status``: one status per image, see
    :class:`RelabelExplanation`); ``.explain(image)`` returns a :class:`RelabelExplanation`.

    The default configuration (ours, issue 12) keeps what RLD is (samples generated around the image through the
    VAE, labelled by the black box, a linear student distilled from those labels) but makes the samples
    identifiable: each grid cell of each sample comes from a decode drawn at random from the pool of decodes
    (``region_source="pool"``), so cells vary independently instead of together along the latent's few directions,
    and each cell is kept from the image with probability 0.5 (``keep_share``); the residual keeps the image's
    detail; a ridge student (alpha 1, on the teacher's soft labels) is fitted on the cell means and painted back
    onto the pixels (``features="regions"``). On the benchmark's planted-evidence
    classifier it puts clearly more of its map on the evidence than the paper's variant (see
    ``benchmarks/results/relabel_variants.md``). :meth:`RelabelDistillation.paper` builds the paper's variant.

    Args:
        forward_func: the black box, ``(B, C, H, W) -> logits (B, K)``; NaN/Inf logits are a ValueError.
        vae: an object with ``encode(x) -> (mu, logvar)`` and ``decode(z) -> x``, trained on the same domain and
            image size (``in_channels`` / ``image_size`` attributes are checked when present).
        n_samples: synthetic samples per image (N >= 10; LIME's default 1000).
        sigma: ``"auto"`` (:class:`FlipBandBisection` from the next three settings), a fixed latent noise scale
            (:class:`FixedSigma`) or any :class:`SigmaSearch`.
        flip_band: the share of label-shifted samples the sigma search aims for (a flip rate outside it is reported
            as ``"out_of_band"``).
        sigma_range, search_steps, probe_samples: bisection bounds, number of halvings and samples per probe.
        residual: add ``x - D(mu_E(x))`` to every decoded sample (ours; default on, off in :meth:`paper`).
        student: ``"ridge"`` (:class:`RidgeStudent`: ``ridge_alpha``, ``soft_weight``; defaults 1 and 1, the
            paper's variant 0.01 and 0.5), ``"sgd"``
            (:class:`SGDStudent`: ``temperature``, ``kd_weight``, ``sgd_steps``, ``sgd_lr``, ``weight_decay``) or any
            :class:`Student`.
        holdout: share of samples kept out of the fit to measure fidelity.
        map_mode: ``"signed"`` (student weights) or ``"times_input"`` (weights * input).
        clip: value range the decoded samples are clipped to (None: no clipping).
        batch_size: samples per VAE decode / teacher forward call (``"auto"``: about 2M input values a call on a
            CPU, 16M on a GPU: 8192 digits of 16x16 but 42 or 341 images of 128x128 RGB), so that the networks'
            activations stay bounded.
        max_batch: ours (issue 13): images explained together by ``attribute`` (``"auto"``: as many as keep their N
            decodes under 1 GiB of float32: 262 digits at N = 1000, 5 images of 128x128 RGB, 1 of 256x256). The
            samples themselves are composed, labelled and reduced to the student's features a chunk at a time, so
            GPU memory stays about the decodes plus one chunk, whatever the batch.
        seed: seed of the latent noise (the same seed gives the same explanation on the same device).
        keep_share: ours: None (the paper: every sample is a whole decode) or (default 0.5) the probability that
            each region of each sample is kept from the image instead of taken from the decode, drawn independently
            per region and sample, so that the student can tell the regions the classifier uses from those that merely
            co-vary with them in the VAE's samples.
        regions: ours: how the image is split for ``keep_share`` and the region students (a :class:`Regions`;
            None: :class:`GridRegions` with the lime baselines' grid).
        features: ours: what the student sees: ``"pixels"`` (the paper), ``"regions"`` (per-channel region means
            of the samples, painted back as the equivalent pixel weights) or ``"mask"`` (the kept-region indicators,
            needs ``keep_share``; the map is each region's weight for being the image's rather than the decode's).
        region_source: ours: where a sample's decoded regions come from: ``"own"`` (its own decode) or ``"pool"``
            (each region from a decode drawn at random among all the samples' decodes, so that regions vary
            independently of each other, not only together along the latent's few directions).
        sigma_scales: ours: the samples cycle through ``sigma * scale`` for these scales (several noise levels per
            image; ``(1.0,)``: the paper's one sigma). The sigma search probes the same mixture.

    :meth:`paper` builds the paper's variant (whole decodes, pixel student, one sigma, no residual, ridge alpha
    0.01, soft_weight 0.5), bit-identical to this class's defaults before issue 12.
    """

    name = "relabel"

    def __init__(
        self,
        forward_func: ForwardFunc,
        vae: nn.Module,
        *,
        n_samples: int = 1000,
        sigma: float | Literal["auto"] | SigmaSearch = "auto",
        flip_band: tuple[float, float] = (0.3, 0.7),
        sigma_range: tuple[float, float] = (0.02, 20.0),
        search_steps: int = 8,
        probe_samples: int = 128,
        residual: bool = True,
        student: Literal["ridge", "sgd"] | Student = "ridge",
        ridge_alpha: float = 1.0,
        soft_weight: float = 1.0,
        temperature: float = 2.0,
        kd_weight: float = 1.0,
        sgd_steps: int = 150,
        sgd_lr: float = 0.05,
        weight_decay: float = 1e-3,
        holdout: float = 0.2,
        map_mode: Literal["signed", "times_input"] = "signed",
        clip: tuple[float, float] | None = (0.0, 1.0),
        batch_size: int | Literal["auto"] = "auto",
        max_batch: int | Literal["auto"] = "auto",
        seed: int = 0,
        keep_share: float | None = 0.5,
        regions: Regions | None = None,
        features: Literal["pixels", "regions", "mask"] = "regions",
        sigma_scales: tuple[float, ...] = (1.0,),
        region_source: Literal["own", "pool"] = "pool",
    ) -> None:
        super().__init__(forward_func)
        if isinstance(student, str) and student in ("ridge", "sgd"):
            student = (RidgeStudent(ridge_alpha, soft_weight) if student == "ridge"
                       else SGDStudent(temperature, kd_weight, sgd_steps, sgd_lr, weight_decay))
        if not isinstance(student, Student):
            raise ValueError(f"student must be 'ridge', 'sgd' or a Student; got {student!r}")
        if map_mode not in ("signed", "times_input"):
            raise ValueError(f"map_mode must be 'signed' or 'times_input'; got {map_mode!r}")
        sigma_search = FlipBandBisection(flip_band, sigma_range, search_steps, probe_samples)  # checks flip_band
        if not isinstance(sigma, SigmaSearch):
            sigma_search = sigma_search if isinstance(sigma, str) and sigma == "auto" else FixedSigma(sigma)
        if not 0.0 < holdout < 0.9:
            raise ValueError(f"holdout must lie in (0, 0.9); got {holdout}")
        self.vae, self.n_samples, self.student = vae, check_n_samples(n_samples), student
        self.sigma_search = sigma if isinstance(sigma, SigmaSearch) else sigma_search
        self.flip_band, self.residual, self.holdout = flip_band, residual, holdout
        self.map_mode, self.clip = map_mode, clip
        for name, value in (("batch_size", batch_size), ("max_batch", max_batch)):
            if value != "auto" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be 'auto' or a positive integer; got {value!r}")
        self.batch_size, self.max_batch, self.seed = batch_size, max_batch, seed
        self._set_sampling(keep_share, regions, features, sigma_scales, region_source)

    #: the paper's sampling: whole decodes of its own latent, a student on pixels, one sigma (fixed by :meth:`paper`)
    PAPER = {"keep_share": None, "features": "pixels", "sigma_scales": (1.0,), "region_source": "own"}
    #: the settings the paper's variant had as defaults before issue 12 (:meth:`paper` starts from them)
    PAPER_DEFAULTS = {"residual": False, "ridge_alpha": 1e-2, "soft_weight": 0.5}

    @classmethod
    def paper(cls, forward_func: ForwardFunc, vae: nn.Module, **kwargs: object) -> RelabelDistillation:
        """The paper's variant, bit-identical to ``RelabelDistillation``'s defaults before issue 12: whole VAE
        decodes, a ridge student on pixels (alpha 0.01, half hard / half soft labels), one sigma per image, no
        residual. ``kwargs`` change any other argument (``residual``, ``student`` ...); the sampling choices of
        :attr:`PAPER` cannot be changed here."""
        clash = sorted(set(kwargs) & set(cls.PAPER))
        if clash:
            raise ValueError(f"paper() fixes {clash}; use RelabelDistillation(...) to change them")
        return cls(forward_func, vae, **cls.PAPER, **{**cls.PAPER_DEFAULTS, **kwargs})

    # ------------------------------------------------------------------------------------------------ public API
    def attribute(self, inputs: torch.Tensor, target: TargetType = None,
                  n_samples: int | None = None) -> torch.Tensor:
        """Attributions shaped like ``inputs`` (batch first), on the inputs' device.

        ``target``: the class to explain (None: the network's prediction for each image); ``n_samples``: this
        call's sample budget (None: the constructor's).
        """
        return super().attribute(inputs, target, n_samples=n_samples)

    def explain(self, image: torch.Tensor, target: int | None = None,
                n_samples: int | None = None) -> RelabelExplanation:
        """Explain one image ((C, H, W) or (1, C, H, W)) and return every intermediate artefact."""
        if isinstance(image, torch.Tensor) and image.dim() == 4 and image.shape[0] != 1:
            raise ValueError(f"explain takes one image (C, H, W) or (1, C, H, W); got a batch of {image.shape[0]}; "
                             "use attribute() for batches")
        x, tgt = self._prepare(image, target)
        out = self._run(x, tgt, n_samples, keep_samples=True, stacklevel=4)
        self.last_status = out["status"]
        labels = out.pop("labels").cpu()
        first = {k: v[0].cpu() for k, v in out.items() if isinstance(v, torch.Tensor)}
        pixels = self.features == "pixels"
        return RelabelExplanation(
            image=first["inputs"], target=int(first["target"]), attribution=first["attribution"],
            samples=first["samples"], latents=first["latents"], latent_center=first["z0"],
            hard_labels=first["hard"], soft_labels=first["soft"], teacher_labels=first["teacher_labels"],
            student=LinearStudent(first["weight"], float(first["bias"]), self.student.kind),
            sigma=float(first["sigma"]), flip_rate=float(first["flip_rate"]), fidelity=float(first["fidelity"]),
            majority_rate=float(first["majority"]), status=out["status"][0], timings=out["timings"],
            regions=None if pixels and self.keep_share is None else labels, keep=first.get("keep"),
            region_weight=None if pixels else first["region_weight"], features=self.features,
        )

    @property
    def device(self) -> torch.device | None:
        """RLD runs where the VAE is (None for a parameter-free VAE: then the inputs' device)."""
        return self._module_device(self.vae)

    # ------------------------------------------------------------------------------------------------ internals
    def _validate(self, inputs: torch.Tensor) -> torch.Tensor:
        channels = getattr(self.vae, "in_channels", None)
        size = getattr(self.vae, "image_size", None)
        x = check_images(inputs, "inputs", channels=channels, value_range=self.clip)
        if size is not None and tuple(x.shape[-2:]) != (size, size):
            raise ValueError(f"inputs are {x.shape[-2]}x{x.shape[-1]} pixels but the VAE was built for "
                             f"{size}x{size} images; resize the inputs or use a VAE trained at this size")
        return x

    def _attribute(self, x: torch.Tensor, target: torch.Tensor,
                   n_samples: int | None = None) -> tuple[torch.Tensor, list[str]]:
        n = self.n_samples if n_samples is None else check_n_samples(n_samples)
        per = self._images_per_chunk(n, tuple(x.shape[1:]))
        maps, status = [], []
        for i in range(0, x.shape[0], per):
            out = self._run(x[i:i + per], target[i:i + per], n_samples, first_index=i)
            maps.append(out["attribution"])
            status += out["status"]
        return torch.cat(maps), status

    def _flip_rate(self, x: torch.Tensor, z0: torch.Tensor, residual: torch.Tensor | None,
                   target: torch.Tensor, labels: torch.Tensor) -> FlipRate:
        """The sigma search's probe: decode ``z0 + sigma * eps`` for the active images (mixed with the image and at
        the sigma scales as the samples will be), share of shifted labels."""
        def flip_rate(active: torch.Tensor, sigma: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
            res = residual[active] if residual is not None else None
            m = eps.shape[1]
            decoded = self._decode(z0[active, None] + sigma[:, None, None] * self._scaled(eps), res)
            keep = self._keep(m, labels, self.seed + 3, x.device)
            keep = None if keep is None else keep.expand(len(active), -1, -1)
            probes = self._compose(decoded, x[active], self._source(m, labels, self.seed + 5, x.device), keep,
                                   labels, 0, m)
            probs = self._teacher(probes)
            return (probs.argmax(-1) != target[active, None]).float().mean(1)

        return flip_rate

    def _fit(self, feats: torch.Tensor, probs: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Re-label the samples, fit the student on the first part, score it on the held-out rest.

        Degenerate (one class among all the samples, the same samples ``flip_rate`` counts): zero weight and a
        constant student that answers the only class.
        """
        bsz, n = probs.shape[:2]
        teacher_labels = probs.argmax(-1)
        hard = (teacher_labels == target[:, None]).float()
        soft = probs.gather(-1, target[:, None, None].expand(bsz, n, 1)).squeeze(-1)
        n_fit = n - max(1, int(round(self.holdout * n)))
        w, b = self.student.fit(feats[:, :n_fit], hard[:, :n_fit], soft[:, :n_fit])
        kept_share = hard.mean(1)
        degenerate = (kept_share == 0) | (kept_share == 1)
        w = torch.where(degenerate[:, None], torch.zeros_like(w), w)
        b = torch.where(degenerate, self.student.constant(kept_share), b)
        held_pred = (torch.einsum("bnd,bd->bn", feats[:, n_fit:], w) + b[:, None]) > self.student.threshold
        held_true = hard[:, n_fit:] > 0.5
        held_kept = held_true.float().mean(1)
        return {"weight": w, "bias": b, "hard": hard, "soft": soft, "teacher_labels": teacher_labels,
                "flip_rate": 1.0 - kept_share, "fidelity": (held_pred == held_true).float().mean(1),
                "majority": torch.maximum(held_kept, 1 - held_kept)}

    @torch.no_grad()
    def _run(self, x: torch.Tensor, target: torch.Tensor, n_samples: int | None, keep_samples: bool = False,
             stacklevel: int = 5, first_index: int = 0) -> dict:
        """Every stage for a validated batch on the VAE's device; ``stacklevel`` points warnings at the caller.

        The N decodes of each image are the one full-size tensor held; the samples are composed from them, sent
        through the teacher and reduced to the student's features ``_step`` samples at a time (all of them are kept
        only for ``explain``)."""
        n = self.n_samples if n_samples is None else check_n_samples(n_samples)
        timings = {"sigma_search": 0.0, "decode": 0.0, "teacher_forward": 0.0, "student_fit": 0.0}
        bsz, device = x.shape[0], x.device
        labels = self.regions.labels(*x.shape[-2:]).to(device)
        with _timed(timings, "sigma_search", device):
            z0 = self.vae.encode(x)[0].float()
            residual = (x - self.vae.decode(z0)) if self.residual else None
            sigma = self.sigma_search(z0, self._flip_rate(x, z0, residual, target, labels),
                                      torch.Generator().manual_seed(self.seed + 1))
        with _timed(timings, "decode", device):
            # one draw shared by every image of the batch: an image's explanation does not depend on its batch-mates
            eps = torch.randn(1, n, z0.shape[1], generator=torch.Generator().manual_seed(self.seed))
            latents = z0[:, None] + sigma[:, None, None] * self._scaled(eps.to(device).expand(bsz, -1, -1))
            decoded = self._decode(latents, residual)
            source = self._source(n, labels, self.seed + 4, device)
            keep = self._keep(n, labels, self.seed + 2, device)
            keep = None if keep is None else keep.expand(bsz, -1, -1)
        step = max(1, self._step(tuple(x.shape[1:]), device) // bsz)
        probs, feats, kept = [], [], []
        for start in range(0, n, step):
            with _timed(timings, "decode", device):
                part = self._compose(decoded, x, source, keep, labels, start, start + step)
            with _timed(timings, "teacher_forward", device):
                probs.append(self._teacher(part))
            with _timed(timings, "student_fit", device):
                feats.append(self._features(part, None if keep is None else keep[:, start:start + step], labels))
            if keep_samples:
                kept.append(part)
        del decoded
        samples = torch.cat(kept, 1) if keep_samples else None
        with _timed(timings, "student_fit", device):
            fit = self._fit(torch.cat(feats, 1), torch.cat(probs, 1), target)
        if self.features == "pixels":
            weight = fit["weight"].reshape(bsz, *x.shape[1:])
        else:
            weight = paint(fit["weight"], labels, x.shape[1], self.features)
        out = {**fit, "inputs": x, "target": target, "weight": weight, "sigma": sigma, "z0": z0, "timings": timings,
               "attribution": weight * x if self.map_mode == "times_input" else weight,
               "region_weight": fit["weight"], "labels": labels}
        out["status"] = self._status(fit, sigma, stacklevel, first_index)
        if keep_samples:
            out.update(samples=samples, latents=latents, keep=keep)
        else:
            for key in ("hard", "soft", "teacher_labels"):
                del out[key]
        return out

    def _status(self, fit: dict[str, torch.Tensor], sigma: torch.Tensor, stacklevel: int,
                first_index: int = 0) -> list[str]:
        """One status per image from its flip rate and its student's held-out fidelity; a warning per degenerate one."""
        low, high = self.flip_band
        status = []
        for i, (fr, fidelity, majority) in enumerate(zip(*(fit[k].tolist() for k in ("flip_rate", "fidelity",
                                                                                      "majority")), strict=True)):
            if fr in (0.0, 1.0):
                status.append("no_flip" if fr == 0.0 else "all_flip")
                what = "no synthetic sample" if fr == 0.0 else "every synthetic sample"
                warnings.warn(f"image {first_index + i}: {what} changed the label (sigma={float(sigma[i]):.3g}); "
                              "the student cannot be fitted and the map is zero", RelabelWarning, stacklevel=stacklevel)
            else:
                status.append(fidelity_status(OK if low <= fr <= high else "out_of_band", fidelity, majority))
        return status
