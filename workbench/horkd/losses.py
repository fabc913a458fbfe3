"""HORKD's distillation losses: first order (softened logits, embeddings), second order (RKD distance), third order
(RKD angle), and their weighted sum over reference streams (``HybridOrderLoss``).

Each loss is an ``nn.Module`` usable in any training loop; reference streams are detached, so only the student
learns. Sources: Hinton et al. (2015) for the softened-logit KL; Park et al., "Relational Knowledge Distillation",
CVPR 2019 (``metric/loss.py``) for the distance and angle potentials; the sum over teacher and assistant is our
reconstruction of Ge et al., AAAI 2020 (see :mod:`workbench.horkd`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


class StreamOutput(NamedTuple):
    """One stream's outputs for a batch: the pooled embedding (B, D) and the logits (B, K) (None if unused)."""

    embedding: torch.Tensor
    logits: torch.Tensor | None = None


# ------------------------------------------------------------------------------------------------ validation
def _check_pair(student: torch.Tensor, reference: torch.Tensor, what: str, min_batch: int = 1) -> None:
    for name, t in (("student", student), ("reference", reference)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{what}: {name} must be a torch.Tensor; got {type(t).__name__}")
        if t.dim() != 2:
            raise ValueError(f"{what}: {name} must have shape (B, D); got {tuple(t.shape)}")
        if t.shape[0] == 0:
            raise ValueError(f"{what}: {name} is an empty batch; expected at least {max(min_batch, 1)} rows")
        if not torch.isfinite(t).all():
            raise ValueError(f"{what}: {name} contains NaN/Inf values; expected finite embeddings/logits")
    if student.shape[0] != reference.shape[0]:
        raise ValueError(f"{what}: batch sizes differ between streams: student has {student.shape[0]} rows, "
                         f"reference has {reference.shape[0]}; all streams must see the same batch")
    if student.shape[0] < min_batch:
        raise ValueError(f"{what} needs a batch of at least {min_batch} samples; got {student.shape[0]}")


def _check_streams(student: object, references: object) -> None:
    """``HybridOrderLoss`` takes ``StreamOutput``s, not bare tensors: say so instead of failing deep inside."""
    expected = "StreamOutput(embedding, logits)"
    if not isinstance(student, StreamOutput):
        raise TypeError(f"HybridOrderLoss: student must be a {expected} from workbench.horkd; "
                        f"got {type(student).__name__}")
    if isinstance(references, (StreamOutput, torch.Tensor)) or not isinstance(references, Sequence):
        raise TypeError(f"HybridOrderLoss: references must be a list of {expected} (one per reference stream, "
                        f"e.g. [teacher] or [teacher, assistant]); got {type(references).__name__}")
    for r, ref in enumerate(references):
        if not isinstance(ref, StreamOutput):
            raise TypeError(f"HybridOrderLoss: reference {r} must be a {expected}; got {type(ref).__name__}")


# --------------------------------------------------------------------------------------------- relations
def pairwise_distances(embeddings: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Euclidean distance matrix (B, B) with a zero diagonal (RKD's ``pdist``, clamped for a stable gradient).

    Computed in float32 even under autocast: the expansion |a|^2 + |b|^2 - 2ab cancels badly in bfloat16.
    """
    with torch.autocast(embeddings.device.type, enabled=False):
        e = embeddings.float()
        sq = e.pow(2).sum(1)
        d = (sq[:, None] + sq[None, :] - 2 * e @ e.t()).clamp(min=eps).sqrt()
        return d * (1 - torch.eye(len(e), device=d.device, dtype=d.dtype))


def normalized_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """Pairwise distances divided by their mean over distinct pairs (RKD's scale-free distance potential)."""
    d = pairwise_distances(embeddings)
    off = ~torch.eye(len(embeddings), dtype=torch.bool, device=d.device)
    return d / d[off].mean().clamp(min=1e-12)


def triplet_angles(embeddings: torch.Tensor) -> torch.Tensor:
    """(B, B, B) tensor whose entry [j, i, k] is cos of the angle at vertex e_j between e_i and e_k (RKD's angle)."""
    with torch.autocast(embeddings.device.type, enabled=False):
        e = embeddings.float()
        unit = F.normalize(e[None, :, :] - e[:, None, :], p=2, dim=2)  # [j, i] = (e_i - e_j) / |e_i - e_j|
        return torch.bmm(unit, unit.transpose(1, 2))


# ------------------------------------------------------------------------------------------------- losses
class SoftLogitKD(nn.Module):
    """First order, Hinton et al. (2015): ``tau**2 * KL(softmax(t / tau) || softmax(s / tau))``, batch mean."""

    def __init__(self, temperature: float = 4.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0; got {temperature}")
        self.temperature = temperature

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        _check_pair(student_logits, teacher_logits, "SoftLogitKD")
        if student_logits.shape[1] != teacher_logits.shape[1]:
            raise ValueError(f"SoftLogitKD: class counts differ ({student_logits.shape[1]} vs "
                             f"{teacher_logits.shape[1]})")
        tau = self.temperature
        target = F.log_softmax(teacher_logits.detach() / tau, dim=1)
        return F.kl_div(F.log_softmax(student_logits / tau, dim=1), target, reduction="batchmean",
                        log_target=True) * tau**2


class EmbeddingMSE(nn.Module):
    """First order on embeddings: mean squared error (FitNets-style); both streams need the same width."""

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        _check_pair(student, teacher, "EmbeddingMSE")
        if student.shape[1] != teacher.shape[1]:
            raise ValueError(f"EmbeddingMSE: embedding widths differ ({student.shape[1]} vs {teacher.shape[1]}); "
                             "use first_order='kl' or give the student a projection to the teacher's width")
        return F.mse_loss(student, teacher.detach())


class RelationalLoss(nn.Module):
    """Smooth L1 (Huber) between a relation of the student's embeddings and the same relation of the detached
    reference's: RKD's recipe, shared by its distance and angle losses (subclasses set ``relation``/``min_batch``)."""

    relation: Callable[[torch.Tensor], torch.Tensor]
    min_batch: int = 1

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        _check_pair(student, teacher, type(self).__name__, min_batch=self.min_batch)
        with torch.no_grad():
            t = self.relation(teacher.detach())
        return F.smooth_l1_loss(self.relation(student), t)


class RKDDistance(RelationalLoss):
    """Second order, RKD distance: smooth L1 between mean-normalised pairwise distance matrices.

    Invariant to scaling either stream's embeddings (the mean normalisation) and to translating them.
    """

    relation = staticmethod(normalized_distances)
    min_batch = 2


def sampled_triplet_angles(embeddings: torch.Tensor, triplets: torch.Tensor) -> torch.Tensor:
    """Cosines (T,) of the angles at vertex e_j between e_i and e_k for index rows ``triplets`` (T, 3) = (j, i, k):
    the entries ``triplet_angles(embeddings)[j, i, k]``, at O(T * D) cost instead of O(B^3 * D)."""
    with torch.autocast(embeddings.device.type, enabled=False):
        e = embeddings.float()
        j, i, k = triplets.unbind(1)
        u = F.normalize(e[i] - e[j], p=2, dim=1)
        v = F.normalize(e[k] - e[j], p=2, dim=1)
        return (u * v).sum(1)


class RKDAngle(RelationalLoss):
    """Third order, RKD angle: smooth L1 between the cosines of all triplet angles (needs a batch >= 3).

    ``triplets=None`` (default): RKD's exact term, the mean over all B^3 index triples (B^3 x D memory and time:
    about 2.6 s a step at B = 512 on a CPU). ``triplets=T`` (ours, not RKD's): the mean over T triples drawn
    uniformly with replacement from the same B^3 (``torch``'s global generator, so ``fit``'s seed fixes them),
    student and reference at the same triples: an unbiased estimate of the full-batch loss and of its gradient.
    """

    relation = staticmethod(triplet_angles)
    min_batch = 3

    def __init__(self, triplets: int | None = None) -> None:
        super().__init__()
        if triplets is not None and (isinstance(triplets, bool) or not isinstance(triplets, int) or triplets < 1):
            raise ValueError(f"triplets must be None (every triplet) or an int >= 1; got {triplets!r}")
        self.triplets = triplets

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        if self.triplets is None:
            return super().forward(student, teacher)
        _check_pair(student, teacher, type(self).__name__, min_batch=self.min_batch)
        idx = torch.randint(len(student), (self.triplets, 3), device=student.device)
        with torch.no_grad():
            t = sampled_triplet_angles(teacher.detach(), idx)
        return F.smooth_l1_loss(sampled_triplet_angles(student, idx), t)


class HybridOrderLoss(nn.Module):
    """Sum over reference streams of ``alpha * first + beta * distance + gamma * angle`` (HORKD, reconstructed).

    ``first_order``: 'kl' (softened logits, needs logits), 'mse' (embeddings of equal width) or 'both'.
    ``reference_weights`` scales each reference stream (default 1 each). A weight of 0 skips that term.
    ``angle_triplets``: None for RKD's exact angle term over every triplet, or the number of sampled triplets of
    our unbiased estimate of it (see ``RKDAngle``).
    ``forward(student, references)`` takes a ``StreamOutput`` and a list of them and returns the total; ``terms``
    returns every weighted term by name (for logging and dashboards).
    """

    def __init__(self, alpha: float = 1.0, beta: float = 25.0, gamma: float = 50.0, temperature: float = 4.0,
                 first_order: str = "kl", reference_weights: Sequence[float] | None = None,
                 angle_triplets: int | None = None) -> None:
        super().__init__()
        if first_order not in {"kl", "mse", "both"}:
            raise ValueError(f"first_order must be 'kl', 'mse' or 'both'; got {first_order!r}")
        if min(alpha, beta, gamma) < 0:
            raise ValueError(f"weights must be >= 0; got alpha={alpha}, beta={beta}, gamma={gamma}")
        self.alpha, self.beta, self.gamma, self.first_order = alpha, beta, gamma, first_order
        self.reference_weights = None if reference_weights is None else tuple(float(w) for w in reference_weights)
        self.kd, self.mse = SoftLogitKD(temperature), EmbeddingMSE()
        self.distance, self.angle = RKDDistance(), RKDAngle(angle_triplets)

    def terms(self, student: StreamOutput, references: Sequence[StreamOutput]) -> dict[str, torch.Tensor]:
        _check_streams(student, references)
        if not references:
            raise ValueError("HybridOrderLoss needs at least one reference stream (teacher, assistant)")
        weights = self.reference_weights or (1.0,) * len(references)
        if len(weights) != len(references):
            raise ValueError(f"{len(weights)} reference_weights for {len(references)} reference streams")
        out: dict[str, torch.Tensor] = {}
        for r, (ref, w) in enumerate(zip(references, weights, strict=True)):
            if self.alpha > 0 and self.first_order in {"kl", "both"}:
                if student.logits is None or ref.logits is None:
                    raise ValueError("first_order='kl' needs logits in the student and every reference stream")
                out[f"first_kl/{r}"] = w * self.alpha * self.kd(student.logits, ref.logits)
            if self.alpha > 0 and self.first_order in {"mse", "both"}:
                out[f"first_mse/{r}"] = w * self.alpha * self.mse(student.embedding, ref.embedding)
            if self.beta > 0:
                out[f"distance/{r}"] = w * self.beta * self.distance(student.embedding, ref.embedding)
            if self.gamma > 0:
                out[f"angle/{r}"] = w * self.gamma * self.angle(student.embedding, ref.embedding)
        return out

    def forward(self, student: StreamOutput, references: Sequence[StreamOutput]) -> torch.Tensor:
        terms = self.terms(student, references)
        if not terms:
            return student.embedding.sum() * 0.0
        return torch.stack(list(terms.values())).sum()
