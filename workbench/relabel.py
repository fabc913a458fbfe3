"""Re-label distillation (RLD): explain a black-box classifier with a linear student fitted on VAE neighbours.

Paper: Hua, Ge, Zhang, "Interpret the Predictions of Deep Networks via Re-Label Distillation", IEEE ICME 2021
(arXiv:2409.13137). Only the abstract is public; what it fixes and what this module reconstructs:

* paper: project the image into a VAE subspace, perturb the latent vector at random, decode synthetic images, label
  each one by whether the network's label shifts, train a linear student on them with the network as teacher; the
  student is the explanation.
* ours (reconstruction, every choice a constructor argument): the perturbation ``z = mu_E(x) + sigma * eps``;
  ``sigma`` found per image by bisection in log space so that the flip rate lands in ``flip_band``; the optional
  residual ``x - D(mu_E(x))`` added to every sample so samples keep the image's detail; two students — a closed-form
  ridge regression on a blend of hard and soft labels (fast), and a logistic student trained by full-batch Adam with
  ``CE(hard) + kd_weight * T^2 * KL(soft^T || student^T) + weight_decay * ||W||^2``; the map is the student's weight
  (``W_keep - W_shift`` for a two-class student, which is the single logit's weight here), optionally times the input.

Everything runs batched over images and samples on the VAE's device: no per-sample Python loop.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from workbench.validation import check_images, check_target

ForwardFunc = Callable[[torch.Tensor], torch.Tensor]


class RelabelWarning(UserWarning):
    """A re-label explanation is degenerate (nothing or everything flipped) or its flip rate is out of band."""


@dataclass
class LinearStudent:
    """The fitted linear student ``g(x) = <weight, x> + bias`` for one image (weight shaped like the image).

    ``kind`` is ``"ridge"`` (output approximates P(kept), threshold 0.5) or ``"sgd"`` (output is a logit,
    threshold 0).
    """

    weight: torch.Tensor
    bias: float
    kind: str

    def decision(self, samples: torch.Tensor) -> torch.Tensor:
        """Raw student output for ``samples`` (N, C, H, W)."""
        return samples.flatten(1) @ self.weight.flatten().to(samples) + self.bias

    def predict_kept(self, samples: torch.Tensor) -> torch.Tensor:
        """Boolean (N,): does the student predict that the teacher keeps its label?"""
        return self.decision(samples) > (0.5 if self.kind == "ridge" else 0.0)


@dataclass
class RelabelExplanation:
    """Everything one RLD explanation produced, for the views and for reporting.

    ``status`` is ``"ok"``, ``"out_of_band"`` (the flip rate missed ``flip_band`` but the student was fitted),
    ``"no_flip"`` or ``"all_flip"`` (one class only: the student cannot be fitted and the map is all zeros).
    ``fidelity`` is the student's accuracy against the teacher's re-labels on held-out synthetic samples;
    ``majority_rate`` is what always answering the majority label would score on them.
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

    @property
    def map2d(self) -> torch.Tensor:
        """The signed channel sum of the attribution, (H, W): the map the views draw."""
        return self.attribution.sum(0)


def _module_device(obj: object, fallback: torch.device) -> torch.device:
    if isinstance(obj, nn.Module):
        for p in obj.parameters():
            return p.device
    return fallback


def _spd_solve(matrix: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Solve batched symmetric positive-definite systems by Cholesky.

    Also sidesteps a oneMKL batched-LU failure ("Pivots given to lu_solve ...") seen after ``torch.set_num_threads``
    changes the thread count before the first LU call.
    """
    return torch.cholesky_solve(rhs, torch.linalg.cholesky(matrix))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class RelabelDistillation:
    """Captum-shaped re-label distillation explainer.

    ``RelabelDistillation(forward_func, vae).attribute(inputs, target=None)`` returns attributions shaped like
    ``inputs`` (B, C, H, W) on the inputs' device; ``.explain(image)`` returns a :class:`RelabelExplanation`.

    Args:
        forward_func: the black box, ``(B, C, H, W) -> logits (B, K)``.
        vae: an object with ``encode(x) -> (mu, logvar)`` and ``decode(z) -> x``, trained on the same domain and
            image size (``in_channels`` / ``image_size`` attributes are checked when present).
        n_samples: synthetic samples per image (N; LIME's default 1000).
        sigma: ``"auto"`` (search per image) or a fixed latent noise scale.
        flip_band: the share of label-shifted samples the sigma search aims for.
        sigma_range, search_steps, probe_samples: bisection bounds, number of halvings and samples per probe.
        residual: add ``x - D(mu_E(x))`` to every decoded sample.
        student: ``"ridge"`` (closed form) or ``"sgd"`` (distillation with KL to the soft labels).
        ridge_alpha: L2 weight of the ridge student (objective ``mean squared error + alpha * ||w||^2``).
        soft_weight: ridge target = ``(1 - soft_weight) * hard + soft_weight * soft``.
        temperature, kd_weight, sgd_steps, sgd_lr, weight_decay: the SGD student's distillation settings.
        holdout: share of samples kept out of the fit to measure fidelity.
        map_mode: ``"signed"`` (student weights) or ``"times_input"`` (weights * input).
        clip: value range the decoded samples are clipped to (None: no clipping).
        batch_size: images per decode / teacher forward chunk.
        seed: seed of the latent noise (the same seed gives the same explanation on the same device).
    """

    def __init__(
        self,
        forward_func: ForwardFunc,
        vae: nn.Module,
        *,
        n_samples: int = 1000,
        sigma: float | Literal["auto"] = "auto",
        flip_band: tuple[float, float] = (0.3, 0.7),
        sigma_range: tuple[float, float] = (0.02, 20.0),
        search_steps: int = 8,
        probe_samples: int = 128,
        residual: bool = False,
        student: Literal["ridge", "sgd"] = "ridge",
        ridge_alpha: float = 1e-2,
        soft_weight: float = 0.5,
        temperature: float = 2.0,
        kd_weight: float = 1.0,
        sgd_steps: int = 150,
        sgd_lr: float = 0.05,
        weight_decay: float = 1e-3,
        holdout: float = 0.2,
        map_mode: Literal["signed", "times_input"] = "signed",
        clip: tuple[float, float] | None = (0.0, 1.0),
        batch_size: int = 8192,
        seed: int = 0,
    ) -> None:
        if student not in ("ridge", "sgd"):
            raise ValueError(f"student must be 'ridge' or 'sgd'; got {student!r}")
        if map_mode not in ("signed", "times_input"):
            raise ValueError(f"map_mode must be 'signed' or 'times_input'; got {map_mode!r}")
        if not 0.0 <= flip_band[0] < flip_band[1] <= 1.0:
            raise ValueError(f"flip_band must satisfy 0 <= low < high <= 1; got {flip_band}")
        if not (isinstance(sigma, str) and sigma == "auto") and not (isinstance(sigma, int | float) and sigma > 0):
            raise ValueError(f"sigma must be 'auto' or a positive number; got {sigma!r}")
        if n_samples < 10:
            raise ValueError(f"n_samples must be at least 10; got {n_samples}")
        if not 0.0 < holdout < 0.9:
            raise ValueError(f"holdout must lie in (0, 0.9); got {holdout}")
        self.forward_func, self.vae = forward_func, vae
        self.n_samples, self.sigma, self.flip_band = n_samples, sigma, flip_band
        self.sigma_range, self.search_steps, self.probe_samples = sigma_range, search_steps, probe_samples
        self.residual, self.student, self.ridge_alpha, self.soft_weight = residual, student, ridge_alpha, soft_weight
        self.temperature, self.kd_weight, self.sgd_steps, self.sgd_lr = temperature, kd_weight, sgd_steps, sgd_lr
        self.weight_decay, self.holdout, self.map_mode, self.clip = weight_decay, holdout, map_mode, clip
        self.batch_size, self.seed = batch_size, seed

    # ------------------------------------------------------------------------------------------------ public API
    def attribute(self, inputs: torch.Tensor, target: int | list[int] | torch.Tensor | None = None,
                  n_samples: int | None = None) -> torch.Tensor:
        """Attributions shaped like ``inputs`` (batch first), on the inputs' device.

        ``target``: the class to explain (None: the network's prediction for each image).
        """
        squeeze = isinstance(inputs, torch.Tensor) and inputs.dim() == 3
        out = self._run(inputs, target, n_samples)
        attr = out["attribution"].to(inputs.device)
        return attr[0] if squeeze else attr

    def explain(self, image: torch.Tensor, target: int | None = None,
                n_samples: int | None = None) -> RelabelExplanation:
        """Explain one image ((C, H, W) or (1, C, H, W)) and return every intermediate artefact."""
        if isinstance(image, torch.Tensor) and image.dim() == 4 and image.shape[0] != 1:
            raise ValueError(f"explain takes one image (C, H, W) or (1, C, H, W); got a batch of {image.shape[0]}; "
                             "use attribute() for batches")
        out = self._run(image, target, n_samples, keep_samples=True)
        return RelabelExplanation(
            image=out["inputs"][0].cpu(), target=int(out["target"][0]), attribution=out["attribution"][0].cpu(),
            samples=out["samples"][0].cpu(), latents=out["latents"][0].cpu(), latent_center=out["z0"][0].cpu(),
            hard_labels=out["hard"][0].cpu(), soft_labels=out["soft"][0].cpu(),
            teacher_labels=out["teacher_labels"][0].cpu(),
            student=LinearStudent(out["weight"][0].cpu(), float(out["bias"][0]), self.student),
            sigma=float(out["sigma"][0]), flip_rate=float(out["flip_rate"][0]), fidelity=float(out["fidelity"][0]),
            majority_rate=float(out["majority"][0]), status=out["status"][0], timings=out["timings"],
        )

    # ------------------------------------------------------------------------------------------------ internals
    def _validate(self, inputs: torch.Tensor) -> torch.Tensor:
        channels = getattr(self.vae, "in_channels", None)
        size = getattr(self.vae, "image_size", None)
        x = check_images(inputs, "inputs", channels=channels, value_range=self.clip)
        if size is not None and tuple(x.shape[-2:]) != (size, size):
            raise ValueError(f"inputs are {x.shape[-2]}x{x.shape[-1]} pixels but the VAE was built for "
                             f"{size}x{size} images; resize the inputs or use a VAE trained at this size")
        return x

    def _decode(self, z: torch.Tensor, residual: torch.Tensor | None) -> torch.Tensor:
        """Decode (B, M, L) latents to (B, M, C, H, W) samples, in chunks, plus the residual, clipped."""
        b, m, latent = z.shape
        flat = z.reshape(b * m, latent)
        out = torch.cat([self.vae.decode(flat[i:i + self.batch_size]) for i in range(0, b * m, self.batch_size)])
        out = out.reshape(b, m, *out.shape[1:])
        if residual is not None:
            out = out + residual[:, None]
        if self.clip is not None:
            out = out.clamp(*self.clip)
        return out

    def _teacher(self, samples: torch.Tensor) -> torch.Tensor:
        """Teacher probabilities (B, M, K) for (B, M, C, H, W) samples, in chunks."""
        b, m = samples.shape[:2]
        flat = samples.reshape(b * m, *samples.shape[2:])
        logits = torch.cat([self.forward_func(flat[i:i + self.batch_size]).float()
                            for i in range(0, b * m, self.batch_size)])
        return logits.softmax(-1).reshape(b, m, -1)

    def _search_sigma(self, z0: torch.Tensor, residual: torch.Tensor | None, target: torch.Tensor,
                      gen: torch.Generator) -> torch.Tensor:
        """Per-image bisection of log(sigma) until the probe flip rate lies in ``flip_band`` (common random numbers)."""
        b, latent = z0.shape
        eps = torch.randn(1, self.probe_samples, latent, generator=gen).to(z0).expand(b, -1, -1)
        log_lo = torch.full((b,), math.log(self.sigma_range[0]), device=z0.device)
        log_hi = torch.full((b,), math.log(self.sigma_range[1]), device=z0.device)
        log_sigma = torch.zeros(b, device=z0.device).clamp(log_lo, log_hi)  # start at the prior's scale, 1
        done = torch.zeros(b, dtype=torch.bool, device=z0.device)
        margin = 0.1 * (self.flip_band[1] - self.flip_band[0])  # aim inside the band: the probe is noisy
        low, high = self.flip_band[0] + margin, self.flip_band[1] - margin
        for _ in range(self.search_steps):
            active = (~done).nonzero().squeeze(1)  # only images still outside the band are decoded again
            sigma = log_sigma[active].exp()
            res = residual[active] if residual is not None else None
            probs = self._teacher(self._decode(z0[active, None] + sigma[:, None, None] * eps[active], res))
            flip = torch.full((b,), (low + high) / 2, device=z0.device)
            flip[active] = (probs.argmax(-1) != target[active, None]).float().mean(1)
            too_low, too_high = (flip < low) & ~done, (flip > high) & ~done
            done |= ~(too_low | too_high)
            log_lo = torch.where(too_low, log_sigma, log_lo)
            log_hi = torch.where(too_high, log_sigma, log_hi)
            if bool(done.all()):
                break
            log_sigma = torch.where(done, log_sigma, (log_lo + log_hi) / 2)
        return log_sigma.exp()

    def _fit_ridge(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Batched ridge on centred data: min (1/n)||Xw - t||^2 + alpha ||w||^2; primal or dual (smaller)."""
        n, d = x.shape[1], x.shape[2]
        xm, tm = x.mean(1, keepdim=True), t.mean(1, keepdim=True)
        xc, tc = x - xm, t - tm
        alpha = self.ridge_alpha
        if d <= n:
            gram = xc.transpose(1, 2) @ xc / n + alpha * torch.eye(d, device=x.device)
            w = _spd_solve(gram, (xc.transpose(1, 2) @ tc[..., None]) / n).squeeze(-1)
        else:
            kern = xc @ xc.transpose(1, 2) / n + alpha * torch.eye(n, device=x.device)
            w = (xc.transpose(1, 2) @ _spd_solve(kern, tc[..., None] / n)).squeeze(-1)
        b = tm.squeeze(1) - (xm.squeeze(1) * w).sum(-1)
        return w, b

    def _fit_sgd(self, x: torch.Tensor, hard: torch.Tensor, soft: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Batched logistic student: BCE(hard) + kd_weight * T^2 * KL(soft^T || student^T) + weight_decay ||W||^2."""
        temp = self.temperature
        soft_t = torch.sigmoid(torch.logit(soft.clamp(1e-4, 1 - 1e-4)) / temp)
        xm = x.mean(1, keepdim=True)
        xc = x - xm
        w = torch.zeros(x.shape[0], x.shape[2], device=x.device, requires_grad=True)
        prior = hard.mean(1).clamp(1e-3, 1 - 1e-3)
        b = torch.logit(prior).clone().requires_grad_(True)
        opt = torch.optim.Adam([w, b], lr=self.sgd_lr)
        with torch.enable_grad():
            for _ in range(self.sgd_steps):
                logit = torch.einsum("bnd,bd->bn", xc, w) + b[:, None]
                ce = F.binary_cross_entropy_with_logits(logit, hard, reduction="none").mean(1)
                student_t = torch.sigmoid(logit / temp).clamp(1e-6, 1 - 1e-6)
                kl = (soft_t * (soft_t / student_t).log()
                      + (1 - soft_t) * ((1 - soft_t).clamp_min(1e-6) / (1 - student_t)).log()).mean(1)
                loss = (ce + self.kd_weight * temp**2 * kl + self.weight_decay * w.pow(2).sum(1)).sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
        w, b = w.detach(), b.detach()
        return w, b - (xm.squeeze(1) * w).sum(-1)

    @torch.no_grad()
    def _run(self, inputs: torch.Tensor, target, n_samples: int | None, keep_samples: bool = False) -> dict:
        x = self._validate(inputs)
        device = _module_device(self.vae, x.device)
        x = x.to(device)
        n = int(n_samples or self.n_samples)
        if n < 10:
            raise ValueError(f"n_samples must be at least 10; got {n}")
        timings = {"sigma_search": 0.0, "decode": 0.0, "teacher_forward": 0.0, "student_fit": 0.0}
        bsz = x.shape[0]

        _sync(device)
        t0 = time.perf_counter()
        z0 = self.vae.encode(x)[0].float()
        residual = (x - self.vae.decode(z0)) if self.residual else None
        logits0 = self.forward_func(x).float()
        tgt = check_target(target, bsz, logits0.shape[-1])
        tgt = logits0.argmax(-1) if tgt is None else tgt.to(device)
        if isinstance(self.sigma, str):
            sigma = self._search_sigma(z0, residual, tgt, torch.Generator().manual_seed(self.seed + 1))
        else:
            sigma = torch.full((bsz,), float(self.sigma), device=device)
        _sync(device)
        timings["sigma_search"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        # one draw shared by every image of the batch: an image's explanation does not depend on its batch-mates
        gen = torch.Generator().manual_seed(self.seed)
        eps = torch.randn(1, n, z0.shape[1], generator=gen).to(device).expand(bsz, -1, -1)
        latents = z0[:, None] + sigma[:, None, None] * eps
        samples = self._decode(latents, residual)
        _sync(device)
        timings["decode"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        probs = self._teacher(samples)
        _sync(device)
        timings["teacher_forward"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        teacher_labels = probs.argmax(-1)
        hard = (teacher_labels == tgt[:, None]).float()
        soft = probs.gather(-1, tgt[:, None, None].expand(bsz, n, 1)).squeeze(-1)
        n_fit = n - max(1, int(round(self.holdout * n)))
        feats = samples.flatten(2).float()
        fit_x, fit_hard, fit_soft = feats[:, :n_fit], hard[:, :n_fit], soft[:, :n_fit]
        if self.student == "ridge":
            target_values = (1 - self.soft_weight) * fit_hard + self.soft_weight * fit_soft
            w, b = self._fit_ridge(fit_x, target_values)
            threshold = 0.5
        else:
            w, b = self._fit_sgd(fit_x, fit_hard, fit_soft)
            threshold = 0.0
        kept_share = fit_hard.mean(1)
        degenerate = (kept_share == 0) | (kept_share == 1)
        w = torch.where(degenerate[:, None], torch.zeros_like(w), w)
        constant = kept_share if self.student == "ridge" else (kept_share - 0.5) * 20  # predicts the only class
        b = torch.where(degenerate, constant, b)
        held_pred = (torch.einsum("bnd,bd->bn", feats[:, n_fit:], w) + b[:, None]) > threshold
        held_true = hard[:, n_fit:] > 0.5
        fidelity = (held_pred == held_true).float().mean(1)
        held_kept = held_true.float().mean(1)
        majority = torch.maximum(held_kept, 1 - held_kept)
        _sync(device)
        timings["student_fit"] = time.perf_counter() - t0

        flip_rate = 1.0 - hard.mean(1)
        weight = w.reshape(bsz, *x.shape[1:])
        attribution = weight * x if self.map_mode == "times_input" else weight
        status = self._status(flip_rate, kept_share, sigma)
        out = {"inputs": x, "target": tgt, "attribution": attribution, "weight": weight, "bias": b,
               "sigma": sigma, "flip_rate": flip_rate, "fidelity": fidelity, "majority": majority,
               "status": status, "timings": timings, "z0": z0}
        if keep_samples:
            out.update(samples=samples, latents=latents, hard=hard, soft=soft, teacher_labels=teacher_labels)
        return out

    def _status(self, flip_rate: torch.Tensor, kept_share: torch.Tensor, sigma: torch.Tensor) -> list[str]:
        low, high = self.flip_band
        status = []
        for i, (fr, kept) in enumerate(zip(flip_rate.tolist(), kept_share.tolist(), strict=True)):
            if kept == 1.0:
                status.append("no_flip")
                warnings.warn(f"image {i}: no synthetic sample changed the label (sigma={float(sigma[i]):.3g}); "
                              "the student cannot be fitted and the map is zero", RelabelWarning, stacklevel=4)
            elif kept == 0.0:
                status.append("all_flip")
                warnings.warn(f"image {i}: every synthetic sample changed the label (sigma={float(sigma[i]):.3g}); "
                              "the student cannot be fitted and the map is zero", RelabelWarning, stacklevel=4)
            elif not low <= fr <= high:
                status.append("out_of_band")
            else:
                status.append("ok")
        return status
