"""The linear students of re-label distillation: strategy objects that fit ``g(x) = <w, x> + b`` per image.

Like lime's ``lime_image`` delegating the surrogate fit to ``lime_base``,
:class:`~workbench.relabel.RelabelDistillation` hands its re-labelled samples to a :class:`Student` and never looks
inside: a new student is a new class with one ``fit`` method, not another constructor flag.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


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


def _spd_solve(matrix: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Solve batched symmetric positive-definite systems by Cholesky.

    Also sidesteps a oneMKL batched-LU failure ("Pivots given to lu_solve ...") seen after ``torch.set_num_threads``
    changes the thread count before the first LU call.
    """
    return torch.cholesky_solve(rhs, torch.linalg.cholesky(matrix))


class Student:
    """A batched linear student: ``fit(x (B, N, D), hard (B, N), soft (B, N)) -> (w (B, D), b (B,))``.

    ``hard`` is 1 where the teacher kept its label, ``soft`` the teacher's probability of the explained class.
    ``threshold`` splits the student's output into kept / shifted; ``constant(kept_share)`` is the bias of a student
    that can only answer the one class it saw (the degenerate case: its weight is zero).
    """

    kind = "student"
    threshold = 0.0

    def fit(self, x: torch.Tensor, hard: torch.Tensor, soft: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def constant(self, kept_share: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({settings})"


class RidgeStudent(Student):
    """Closed-form ridge regression on a blend of hard and soft labels (fast; RLD's default student).

    Target ``(1 - soft_weight) * hard + soft_weight * soft``; objective ``mean squared error + alpha * ||w||^2`` on
    centred data, solved in the primal or the dual, whichever system is smaller. Its output approximates P(kept).
    """

    kind = "ridge"
    threshold = 0.5

    def __init__(self, alpha: float = 1e-2, soft_weight: float = 0.5) -> None:
        self.alpha, self.soft_weight = alpha, soft_weight

    def fit(self, x: torch.Tensor, hard: torch.Tensor, soft: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = (1 - self.soft_weight) * hard + self.soft_weight * soft
        n, d = x.shape[1], x.shape[2]
        xm, tm = x.mean(1, keepdim=True), t.mean(1, keepdim=True)
        xc, tc = x - xm, t - tm
        if d <= n:
            gram = xc.transpose(1, 2) @ xc / n + self.alpha * torch.eye(d, device=x.device)
            w = _spd_solve(gram, (xc.transpose(1, 2) @ tc[..., None]) / n).squeeze(-1)
        else:
            kern = xc @ xc.transpose(1, 2) / n + self.alpha * torch.eye(n, device=x.device)
            w = (xc.transpose(1, 2) @ _spd_solve(kern, tc[..., None] / n)).squeeze(-1)
        b = tm.squeeze(1) - (xm.squeeze(1) * w).sum(-1)
        return w, b

    def constant(self, kept_share: torch.Tensor) -> torch.Tensor:
        return kept_share


class SGDStudent(Student):
    """Logistic student trained by full-batch Adam with distillation (Hinton et al.'s temperature-scaled KL).

    Loss ``BCE(hard) + kd_weight * T^2 * KL(soft^T || student^T) + weight_decay * ||W||^2``; its output is a logit.
    """

    kind = "sgd"
    threshold = 0.0

    def __init__(self, temperature: float = 2.0, kd_weight: float = 1.0, steps: int = 150, lr: float = 0.05,
                 weight_decay: float = 1e-3) -> None:
        self.temperature, self.kd_weight, self.steps, self.lr = temperature, kd_weight, steps, lr
        self.weight_decay = weight_decay

    def fit(self, x: torch.Tensor, hard: torch.Tensor, soft: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        temp = self.temperature
        soft_t = torch.sigmoid(torch.logit(soft.clamp(1e-4, 1 - 1e-4)) / temp)
        xm = x.mean(1, keepdim=True)
        xc = x - xm
        w = torch.zeros(x.shape[0], x.shape[2], device=x.device, requires_grad=True)
        prior = hard.mean(1).clamp(1e-3, 1 - 1e-3)
        b = torch.logit(prior).clone().requires_grad_(True)
        opt = torch.optim.Adam([w, b], lr=self.lr)
        with torch.enable_grad():
            for _ in range(self.steps):
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

    def constant(self, kept_share: torch.Tensor) -> torch.Tensor:
        return (kept_share - 0.5) * 20  # a confident logit for the only class seen


STUDENTS: dict[str, type[Student]] = {"ridge": RidgeStudent, "sgd": SGDStudent}
