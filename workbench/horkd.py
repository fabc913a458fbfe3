"""Hybrid-order relational knowledge distillation (HORKD) for low-resolution (LR) recognition.

Paper: Ge, Zhang, Liu, Hua, Zhao, Jin, Wen, "Look One and More: Distilling Hybrid Order Relational Knowledge for
Cross-Resolution Image Recognition", AAAI 2020. Only the abstract is public: a teacher trained on high-resolution
(HR) images, a student on LR images and an *assistant* stream bridging them; the student is taught to preserve the
relational structure of several orders. What follows is our reconstruction:

* first order (individual): Hinton's softened-logit KL (``SoftLogitKD``, temperature tau) and/or embedding MSE;
* second order (pairs): Relational KD's distance loss (``RKDDistance``, Park et al., CVPR 2019, ``metric/loss.py``):
  pairwise Euclidean distances divided by their mean, compared with the smooth-L1 (Huber) loss;
* third order (triplets): RKD's angle loss (``RKDAngle``): cosines of the angles of every triplet, smooth L1;
* ``HybridOrderLoss`` = sum over reference streams R in {teacher, assistant} of
  ``alpha * L1 + beta * L2 + gamma * L3`` (the task cross-entropy is added by the trainer).

Defaults and where they come from: ``beta = 25``, ``gamma = 50`` are RKD's weights for classification (its metric
learning runs use 1 and 2); ``alpha = 1`` with ``tau = 4`` is the usual Hinton KD setting (KL scaled by tau**2).
Reference streams are detached: only the student learns from the losses.

The three-stream trainer: the teacher (``SmallCNN``) is trained on HR patches and frozen; the assistant has the
teacher's architecture, is initialised from the teacher and fine-tuned on up-sampled LR input (cross-entropy plus
KL to the teacher's HR logits: our choice of how it "bridges" the two); the student is a ``SmallCNN`` at least 4x
smaller, fed the LR image itself. Baselines trained by the same code: ``scratch`` (CE only), ``hinton`` (CE + KD),
``rkd`` (CE + distance + angle to the teacher), ``horkd_no_assistant`` and ``horkd``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workbench.data.digits import ImageSet
from workbench.data.patches import PATCH_CLASSES, downsample, load_patches, upsample
from workbench.models.classifier import SmallCNN
from workbench.train import cached_model, fit, resolve_device

METHODS: tuple[str, ...] = ("scratch", "hinton", "rkd", "horkd_no_assistant", "horkd")
METHOD_LABELS: dict[str, str] = {
    "scratch": "student from scratch", "hinton": "Hinton KD", "rkd": "RKD (distance + angle)",
    "horkd_no_assistant": "HORKD without assistant", "horkd": "HORKD (teacher + assistant)",
    "teacher_upsampled": "HR teacher on up-sampled LR", "assistant": "assistant (teacher size, LR-adapted)",
}


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


# --------------------------------------------------------------------------------------------------- losses
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
    """(B, B, B) tensor whose entry [j, i, k] is cos of the angle at e_j between e_i and e_k (RKD's angle)."""
    with torch.autocast(embeddings.device.type, enabled=False):
        e = embeddings.float()
        unit = F.normalize(e[None, :, :] - e[:, None, :], p=2, dim=2)  # [j, i] = (e_i - e_j) / |e_i - e_j|
        return torch.bmm(unit, unit.transpose(1, 2))


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


class RKDDistance(nn.Module):
    """Second order, RKD distance: smooth L1 between mean-normalised pairwise distance matrices.

    Invariant to scaling either stream's embeddings (the mean normalisation) and to translating them.
    """

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        _check_pair(student, teacher, "RKDDistance", min_batch=2)
        with torch.no_grad():
            t = normalized_distances(teacher.detach())
        return F.smooth_l1_loss(normalized_distances(student), t)


class RKDAngle(nn.Module):
    """Third order, RKD angle: smooth L1 between the cosines of all triplet angles (needs a batch >= 3)."""

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        _check_pair(student, teacher, "RKDAngle", min_batch=3)
        with torch.no_grad():
            t = triplet_angles(teacher.detach())
        return F.smooth_l1_loss(triplet_angles(student), t)


class HybridOrderLoss(nn.Module):
    """Sum over reference streams of ``alpha * first + beta * distance + gamma * angle`` (HORKD, reconstructed).

    ``first_order``: 'kl' (softened logits, needs logits), 'mse' (embeddings of equal width) or 'both'.
    ``reference_weights`` scales each reference stream (default 1 each). A weight of 0 skips that term.
    ``forward`` returns the total; ``terms`` returns every weighted term by name (for logging and dashboards).
    """

    def __init__(self, alpha: float = 1.0, beta: float = 25.0, gamma: float = 50.0, temperature: float = 4.0,
                 first_order: str = "kl", reference_weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if first_order not in {"kl", "mse", "both"}:
            raise ValueError(f"first_order must be 'kl', 'mse' or 'both'; got {first_order!r}")
        if min(alpha, beta, gamma) < 0:
            raise ValueError(f"weights must be >= 0; got alpha={alpha}, beta={beta}, gamma={gamma}")
        self.alpha, self.beta, self.gamma, self.first_order = alpha, beta, gamma, first_order
        self.reference_weights = None if reference_weights is None else tuple(float(w) for w in reference_weights)
        self.kd, self.mse = SoftLogitKD(temperature), EmbeddingMSE()
        self.distance, self.angle = RKDDistance(), RKDAngle()

    def terms(self, student: StreamOutput, references: Sequence[StreamOutput]) -> dict[str, torch.Tensor]:
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


# -------------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class HorkdConfig:
    """Sizes and weights of the three-stream experiment on the embedded patch set.

    ``full()``: the benchmark setting (HR 32x32, 96 train patches per class + flips, sized to run the whole
    benchmark in ~10 min on a 2-core CPU; seconds per model on a GPU). ``smoke()``: tests and the dashboard's
    first use on a CPU (under a minute for everything).
    """

    hr_size: int = 32
    resolutions: tuple[int, ...] = (16, 8)
    teacher_width: int = 16
    student_width: int = 6
    depth: int = 3
    train_per_class: int | None = 96
    test_per_class: int | None = 32
    teacher_epochs: int = 12
    assistant_epochs: int = 4
    student_epochs: int = 10
    batch_size: int = 64
    lr: float = 3e-3
    alpha: float = 1.0
    beta: float = 25.0
    gamma: float = 50.0
    temperature: float = 4.0

    @classmethod
    def full(cls) -> HorkdConfig:
        """The benchmark setting (teacher width 16 on 32x32 HR, 73k parameters; student width 6, 10.6k: 6.9x)."""
        return cls()

    @classmethod
    def smoke(cls) -> HorkdConfig:
        """Fewer patches and epochs: the whole set of streams in well under a minute on a CPU (one thread)."""
        return cls(train_per_class=24, test_per_class=16, teacher_epochs=6, assistant_epochs=2, student_epochs=6)

    @classmethod
    def preset(cls, smoke: bool) -> HorkdConfig:
        """``smoke()`` or ``full()`` (pass ``workbench.train.smoke_mode(SMOKE)``)."""
        return cls.smoke() if smoke else cls.full()

    def with_(self, **changes: Any) -> HorkdConfig:
        """A copy with some fields changed (e.g. ``resolutions=(8,)``); the cache key follows the fields."""
        return replace(self, **changes)


def load_horkd_data(config: HorkdConfig) -> tuple[ImageSet, ImageSet]:
    """(train, test) HR patch sets at ``config.hr_size``; train holds every patch and its horizontal flip."""
    train = load_patches(config.hr_size, "train", max_per_class=config.train_per_class, augment=True)
    test = load_patches(config.hr_size, "test", max_per_class=config.test_per_class)
    return train, test


def build_teacher(config: HorkdConfig, seed: int = 0) -> SmallCNN:
    """An untrained teacher-size ``SmallCNN`` (also the assistant's architecture), initialised from ``seed``."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return SmallCNN(3, len(PATCH_CLASSES), width=config.teacher_width, depth=config.depth)


def build_student(config: HorkdConfig, seed: int = 0) -> SmallCNN:
    """An untrained student ``SmallCNN`` initialised from ``seed`` (fully convolutional: any LR size works)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return SmallCNN(3, len(PATCH_CLASSES), width=config.student_width, depth=config.depth)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def stream(model: SmallCNN, x: torch.Tensor) -> StreamOutput:
    """Embedding and logits of a ``SmallCNN`` in one pass (the logits go through the model's own head)."""
    emb = model.forward_head(model.forward_features(x), pre_logits=True)
    return StreamOutput(emb, model.head(model.drop(emb)))


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256) -> float:
    """Top-1 accuracy in eval mode on the model's device."""
    dev = next(model.parameters()).device
    model.eval()
    correct = sum(int((model(images[i:i + batch_size].to(dev)).argmax(1).cpu() == labels[i:i + batch_size]).sum())
                  for i in range(0, len(images), batch_size))
    return correct / max(len(images), 1)


def lr_input(hr: torch.Tensor, resolution: int, for_teacher_size: bool = False) -> torch.Tensor:
    """What a stream sees of HR images at ``resolution``: the LR image, or it up-sampled back for teacher-sized nets."""
    lr = downsample(hr, resolution)
    return upsample(lr, hr.shape[-1]) if for_teacher_size else lr


def _fit_cosine(model: nn.Module, loader: Any, step: Any, *, epochs: int, lr: float, device: str, seed: int,
                progress: bool, desc: str, evaluate: Any = None, max_steps: int | None = None) -> Any:
    """``workbench.train.fit`` with AdamW and a cosine learning-rate decay to 0 over the run (set in the step).

    The decay matters here: train (left) and test (right) patches differ, and a constant rate leaves the last
    epoch's test accuracy swinging by tens of points.
    """
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=1e-4)
    total = max(1, min(epochs * len(loader), max_steps or 10**12))
    count = [0]

    def scheduled(m: nn.Module, batch: Any, dev: torch.device):
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * min(count[0] / total, 1.0)))
        count[0] += 1
        return step(m, batch, dev)

    return fit(model, loader, scheduled, epochs=epochs, optimizer=opt, device=device, seed=seed, progress=progress,
               desc=desc, evaluate=evaluate, max_steps=max_steps)


def _ce_step(model: nn.Module, batch: Any, device: torch.device):
    x, y = (t.to(device) for t in batch[:2])
    logits = model(x)
    return F.cross_entropy(logits.float(), y), {"acc": float((logits.argmax(1) == y).float().mean())}


# ----------------------------------------------------------------------------------------------- three streams
def teacher_model(config: HorkdConfig, device: str = "auto", retrain: bool = False,
                  progress: bool = True) -> SmallCNN:
    """The HR teacher (cross-entropy on HR patches), trained on first use and cached; frozen afterwards."""
    train, test = load_horkd_data(config)

    def fit_teacher(model: SmallCNN) -> dict[str, Any]:
        hist = _fit_cosine(model, train.loader(config.batch_size), _ce_step, epochs=config.teacher_epochs,
                           lr=config.lr, device=device, seed=0, progress=progress, desc="HR teacher",
                   evaluate=lambda m: {"test_acc": accuracy(m, test.images, test.labels)})
        return {"history": hist.epochs, "test_acc": hist.epochs[-1]["test_acc"]}

    cfg = {"recipe": "horkd_teacher", "schedule": "cosine", **_teacher_keys(config)}
    return cached_model("horkd_teacher", lambda: build_teacher(config), fit_teacher, cfg, retrain=retrain)


def _teacher_keys(config: HorkdConfig) -> dict[str, Any]:
    keys = ("hr_size", "teacher_width", "depth", "train_per_class", "test_per_class", "teacher_epochs", "batch_size",
            "lr")
    return {k: getattr(config, k) for k in keys}


def assistant_model(config: HorkdConfig, resolution: int, device: str = "auto", retrain: bool = False,
                    progress: bool = True) -> SmallCNN:
    """The assistant for ``resolution``: teacher architecture and weights, fine-tuned on up-sampled LR input.

    Loss (our reconstruction): cross-entropy + ``alpha * tau**2 * KL`` to the frozen teacher's logits on the HR
    version of the same patch, so it keeps the teacher's output structure while adapting to LR.
    """
    train, test = load_horkd_data(config)
    teacher = teacher_model(config, device=device, progress=progress)
    kd = SoftLogitKD(config.temperature)
    test_lr = lr_input(test.images, resolution, for_teacher_size=True)
    dataset = torch.utils.data.TensorDataset(lr_input(train.images, resolution, True), train.labels,
                                             _predict(teacher, train.images, device)[1])

    def step(model: nn.Module, batch: Any, dev: torch.device):
        x, y, t_logits = (t.to(dev) for t in batch)
        logits = model(x).float()
        loss = F.cross_entropy(logits, y) + config.alpha * kd(logits, t_logits)
        return loss, {"acc": float((logits.argmax(1) == y).float().mean())}

    def fit_assistant(model: SmallCNN) -> dict[str, Any]:
        model.load_state_dict(teacher.state_dict())
        loader = torch.utils.data.DataLoader(dataset, batch_size=config.batch_size, shuffle=True,
                                             generator=torch.Generator().manual_seed(0))
        hist = _fit_cosine(model, loader, step, epochs=config.assistant_epochs, lr=config.lr / 3, device=device,
                           seed=0, progress=progress, desc=f"assistant {resolution}px",
                   evaluate=lambda m: {"test_acc": accuracy(m, test_lr, test.labels)})
        return {"history": hist.epochs, "test_acc": hist.epochs[-1]["test_acc"]}

    cfg = {"recipe": "horkd_assistant", "resolution": resolution, "assistant_epochs": config.assistant_epochs,
           "alpha": config.alpha, "temperature": config.temperature, **_teacher_keys(config)}
    return cached_model(f"horkd_assistant{resolution}", lambda: build_teacher(config), fit_assistant, cfg,
                        retrain=retrain)


@torch.no_grad()
def _predict(model: SmallCNN, images: torch.Tensor, device: str = "auto",
             batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    dev = resolve_device(device)
    model.to(dev).eval()
    outs = [stream(model, images[i:i + batch_size].to(dev)) for i in range(0, len(images), batch_size)]
    model.cpu()
    return torch.cat([o.embedding.float().cpu() for o in outs]), torch.cat([o.logits.float().cpu() for o in outs])


def distillation_loss(config: HorkdConfig, method: str) -> HybridOrderLoss | None:
    """The distillation term of ``method`` (None for the scratch student), all built from ``HybridOrderLoss``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    c = config
    return {
        "scratch": None,
        "hinton": HybridOrderLoss(c.alpha, 0.0, 0.0, c.temperature),
        "rkd": HybridOrderLoss(0.0, c.beta, c.gamma, c.temperature),
        "horkd_no_assistant": HybridOrderLoss(c.alpha, c.beta, c.gamma, c.temperature),
        "horkd": HybridOrderLoss(c.alpha, c.beta, c.gamma, c.temperature),
    }[method]


def student_step(loss_fn: HybridOrderLoss | None,
                 use_assistant: bool) -> Callable[..., tuple[torch.Tensor, dict[str, float]]]:
    """A ``fit`` step for batches ``(lr, label, t_emb, t_logits, a_emb, a_logits)``: CE + distillation term."""

    def step(model: nn.Module, batch: Any, device: torch.device):
        x, y, t_emb, t_logits, a_emb, a_logits = (t.to(device) for t in batch)
        out = stream(model, x)
        s = StreamOutput(out.embedding.float(), out.logits.float())
        ce = F.cross_entropy(s.logits, y)
        metrics = {"ce": float(ce.detach()), "acc": float((s.logits.argmax(1) == y).float().mean())}
        if loss_fn is None:
            return ce, metrics
        refs = [StreamOutput(t_emb, t_logits)] + ([StreamOutput(a_emb, a_logits)] if use_assistant else [])
        kd = loss_fn(s, refs)
        metrics["kd"] = float(kd.detach())
        return ce + kd, metrics

    return step


def _student_dataset(config: HorkdConfig, resolution: int, device: str, progress: bool):
    train, test = load_horkd_data(config)
    teacher = teacher_model(config, device=device, progress=progress)
    assistant = assistant_model(config, resolution, device=device, progress=progress)
    t_emb, t_logits = _predict(teacher, train.images, device)
    a_emb, a_logits = _predict(assistant, lr_input(train.images, resolution, True), device)
    data = torch.utils.data.TensorDataset(lr_input(train.images, resolution), train.labels, t_emb, t_logits,
                                          a_emb, a_logits)
    return data, lr_input(test.images, resolution), test.labels


def train_students(config: HorkdConfig, resolution: int, methods: Sequence[str] = METHODS,
                   seeds: Sequence[int] = (0,), device: str = "auto", retrain: bool = False,
                   progress: bool = True) -> dict[tuple[str, int], SmallCNN]:
    """Students of every ``method`` x ``seed`` at ``resolution`` (cached); teacher/assistant outputs computed once.

    The seed sets the student's initialisation and data order; teacher and assistant are shared across seeds.
    Each returned model carries ``workbench_meta['test_acc']`` (top-1 on the held-out right-hand patches).
    """
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ValueError(f"unknown method(s) {bad}; choose from {METHODS}")
    if resolution > config.hr_size or resolution < 4:
        raise ValueError(f"resolution must lie in [4, {config.hr_size}]; got {resolution}")
    prepared: list[Any] = []

    def data():
        if not prepared:
            prepared.append(_student_dataset(config, resolution, device, progress))
        return prepared[0]

    out: dict[tuple[str, int], SmallCNN] = {}
    for method in methods:
        for seed in seeds:
            def fit_student(model: SmallCNN, method: str = method, seed: int = seed) -> dict[str, Any]:
                dataset, test_x, test_y = data()
                loader = torch.utils.data.DataLoader(dataset, batch_size=config.batch_size, shuffle=True,
                                                     drop_last=True, generator=torch.Generator().manual_seed(seed))
                step = student_step(distillation_loss(config, method), use_assistant=method == "horkd")
                hist = _fit_cosine(model, loader, step, epochs=config.student_epochs, lr=config.lr, device=device,
                                   seed=seed, progress=progress, desc=f"{method} {resolution}px seed {seed}",
                           evaluate=lambda m: {"test_acc": accuracy(m, test_x, test_y)})
                return {"history": hist.epochs, "test_acc": hist.epochs[-1]["test_acc"]}

            cfg = {"recipe": "horkd_student", "method": method, "resolution": resolution, "seed": seed,
                   **asdict(config)}

            out[(method, seed)] = cached_model(f"horkd_student_{method}{resolution}_s{seed}",
                                               lambda seed=seed: build_student(config, seed), fit_student, cfg,
                                               retrain=retrain)
    return out


def student_model(config: HorkdConfig, method: str = "horkd", resolution: int = 8, seed: int = 0,
                  device: str = "auto", retrain: bool = False, progress: bool = True) -> SmallCNN:
    """One cached student (see ``train_students``)."""
    return train_students(config, resolution, [method], [seed], device, retrain, progress)[(method, seed)]


# --------------------------------------------------------------------------------------------- evaluation
def evaluate_resolutions(config: HorkdConfig, seeds: Sequence[int] = (0,), methods: Sequence[str] = METHODS,
                         teacher_resolutions: Sequence[int] | None = None, device: str = "auto",
                         progress: bool = True) -> list[dict[str, Any]]:
    """Top-1 rows ``{method, resolution, seed, top1}`` for every student/seed at ``config.resolutions``, plus the
    assistants, and the HR teacher on up-sampled LR at ``teacher_resolutions`` (default: those and HR)."""
    _, test = load_horkd_data(config)
    teacher = teacher_model(config, device=device, progress=progress)
    rows: list[dict[str, Any]] = []
    for r in teacher_resolutions or sorted({*config.resolutions, config.hr_size}):
        rows.append({"method": "teacher_upsampled", "resolution": r, "seed": 0,
                     "top1": accuracy(teacher, lr_input(test.images, r, True), test.labels)})
    for r in config.resolutions:
        assistant = assistant_model(config, r, device=device, progress=progress)
        rows.append({"method": "assistant", "resolution": r, "seed": 0,
                     "top1": accuracy(assistant, lr_input(test.images, r, True), test.labels)})
        for (method, seed), model in train_students(config, r, methods, seeds, device, progress=progress).items():
            rows.append({"method": method, "resolution": r, "seed": seed,
                         "top1": accuracy(model, lr_input(test.images, r), test.labels)})
    return rows


@torch.no_grad()
def inference_seconds(model: nn.Module, images: torch.Tensor, repeats: int = 5) -> float:
    """Median wall-clock seconds of one eval forward pass over ``images`` on the CPU (after one warm-up)."""
    model.cpu().eval()
    model(images)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(images)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


@torch.no_grad()
def relational_views(models: dict[str, tuple[nn.Module, bool]], hr_images: torch.Tensor, resolution: int,
                     anchor: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """For each named stream ``(model, sees_hr_size_input)``: its normalised distance matrix (B, B) on the batch and
    its angle matrix at ``anchor`` (cos of the angle at sample ``anchor`` between samples i and k), as NumPy.

    The teacher is fed HR images; a model with ``sees_hr_size_input=True`` and not named 'teacher' gets the
    up-sampled LR view; a student gets the LR image.
    """
    if len(hr_images) < 3:
        raise ValueError(f"relational views need a batch of at least 3 images; got {len(hr_images)}")
    if not 0 <= anchor < len(hr_images):
        raise ValueError(f"anchor must lie in [0, {len(hr_images) - 1}]; got {anchor}")
    out = {}
    for name, (model, hr_sized) in models.items():
        model.cpu().eval()
        x = hr_images if name == "teacher" else lr_input(hr_images, resolution, hr_sized)
        emb = stream(model, x).embedding
        out[name] = {"distance": normalized_distances(emb).numpy(), "angle": triplet_angles(emb)[anchor].numpy()}
    return out


# -------------------------------------------------------------------------------------------------- GPU check
def gpu_check_horkd(device: str = "cuda", max_steps: int = 50) -> dict[str, float]:
    """Run the full setting's HORKD student training for ``max_steps`` steps on ``device`` (no cache).

    The teacher is trained for ``max_steps`` steps first and used as both reference streams (assistant = a copy),
    so the check exercises every loss term. Returns the student's first/last loss and training items per second.
    """
    config = HorkdConfig.full()
    resolution = min(config.resolutions)
    train, _ = load_horkd_data(config)
    teacher = build_teacher(config)
    loader = train.loader(config.batch_size)
    _fit_cosine(teacher, loader, _ce_step, epochs=10**6, max_steps=max_steps, lr=config.lr, device=device, seed=0,
                progress=False, desc="GPU check teacher")
    assistant = copy.deepcopy(teacher)
    t_emb, t_logits = _predict(teacher, train.images, device)
    a_emb, a_logits = _predict(assistant, lr_input(train.images, resolution, True), device)
    dataset = torch.utils.data.TensorDataset(lr_input(train.images, resolution), train.labels, t_emb, t_logits,
                                             a_emb, a_logits)
    student_loader = torch.utils.data.DataLoader(dataset, batch_size=config.batch_size, shuffle=True,
                                                 drop_last=True)
    inner = student_step(distillation_loss(config, "horkd"), use_assistant=True)
    losses: list[float] = []

    def step(model: nn.Module, batch: Any, dev: torch.device):
        loss, metrics = inner(model, batch, dev)
        losses.append(float(loss.detach()))
        return loss, metrics

    student = build_student(config)
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    _fit_cosine(student, student_loader, step, epochs=10**6, max_steps=max_steps, lr=config.lr, device=device, seed=0,
                progress=False, desc="GPU check student")
    if dev.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - t0
    return {"loss_first": losses[0], "loss_last": losses[-1], "items_per_s": len(losses) * config.batch_size / elapsed}
