"""The re-label distillation explainer: :class:`RelabelDistillation` and the :class:`RelabelExplanation` it reports.

See :mod:`workbench.relabel` for what comes from the paper and what is ours. The stages run batched over images and
samples on the VAE's device: encode, sigma search (a :class:`~workbench.relabel.sigma.SigmaSearch`), decode the
perturbed latents, re-label them with the teacher, fit the student (a :class:`~workbench.relabel.students.Student`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from workbench.explainers.base import OK, Explainer, ForwardFunc, TargetType
from workbench.relabel.config import RelabelConfig, SamplingConfig, check_n_samples
from workbench.relabel.fidelity import FidelityCheck, fidelity_status
from workbench.relabel.regions import paint
from workbench.relabel.sampling import RegionSampling
from workbench.relabel.sigma import FlipRate
from workbench.relabel.students import LinearStudent
from workbench.runtime import synchronize
from workbench.validation import check_images


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
        config: every other setting, a :class:`~workbench.relabel.config.RelabelConfig` (None: its default, ours);
            ``RelabelConfig.paper()`` is the paper's variant.
        changes: settings changed by their flat names, applied with ``config.with_(**changes)``:
            ``n_samples``, ``sigma``, ``residual``, ``student``, ``holdout``, ``map_mode``, ``clip``,
            ``batch_size``, ``max_batch``, ``seed`` and the strategies' own (``flip_band``, ``ridge_alpha``,
            ``sgd_steps``, ``keep_share``, ``features``, ``region_source``, ``sigma_scales`` ...).

    :meth:`paper` builds the paper's variant (whole decodes, pixel student, one sigma, no residual, ridge alpha
    0.01, soft_weight 0.5), bit-identical to this class's defaults before issue 12.
    """

    name = "relabel"

    def __init__(self, forward_func: ForwardFunc, vae: nn.Module, config: RelabelConfig | None = None,
                 **changes: Any) -> None:
        super().__init__(forward_func)
        if config is not None and not isinstance(config, RelabelConfig):
            raise TypeError(f"config must be a RelabelConfig (e.g. RelabelConfig.paper()); got {config!r}")
        self.config = (config or RelabelConfig()).with_(**changes)
        c = self.config
        self.vae, self.n_samples, self.student = vae, c.n_samples, c.student.build()
        self.sigma_search, self.flip_band = c.sigma.build(), c.sigma.flip_band
        self.residual, self.holdout, self.map_mode, self.clip = c.residual, c.holdout, c.map_mode, c.clip
        self.batch_size, self.max_batch, self.seed = c.batch_size, c.max_batch, c.seed
        self._set_sampling(c.sampling)

    @classmethod
    def paper(cls, forward_func: ForwardFunc, vae: nn.Module, **changes: Any) -> RelabelDistillation:
        """The paper's variant (``RelabelConfig.paper()``), bit-identical to ``RelabelDistillation``'s defaults
        before issue 12: whole VAE decodes, a ridge student on pixels (alpha 0.01, half hard / half soft labels),
        one sigma per image, no residual. ``changes`` change any other setting (``residual``, ``student`` ...);
        the paper's sampling (:meth:`SamplingConfig.paper`) cannot be changed here."""
        fixed = {"sampling", *(f.name for f in dataclasses.fields(SamplingConfig))}
        clash = sorted(set(changes) & fixed)
        if clash:
            raise ValueError(f"paper() fixes {clash}; use RelabelDistillation(...) to change them")
        return cls(forward_func, vae, RelabelConfig.paper(), **changes)

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
            decoded = self._pool(z0[active], sigma[:, None, None] * self._scaled(eps), res)[1]
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
            latents, decoded = self._pool(z0, sigma[:, None, None] * self._scaled(eps.to(device).expand(bsz, -1, -1)),
                                          residual)
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
                feats.append(self._features(part, x, None if keep is None else keep[:, start:start + step], labels))
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
