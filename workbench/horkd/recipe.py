"""HORKD's recipe: the setting (``HorkdConfig``), the three streams and how each is trained and cached.

The teacher (``SmallCNN``) is trained on HR patches and frozen; the assistant has the teacher's architecture, is
initialised from the teacher and fine-tuned on up-sampled low-resolution input (cross-entropy plus KL to the
teacher's HR logits: our choice of how it "bridges" the two); the student is a ``SmallCNN`` at least 4x smaller, fed
the low-resolution image itself. Every model trains through ``workbench.train.fit`` with AdamW and a cosine
learning-rate decay to 0 over the run: train (left) and test (right) patches differ, and a constant rate leaves the
last epoch's test accuracy swinging by tens of points.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.data.patch_bank import FACE_LAYOUT, bank_classes, face_folder_digest
from workbench.data.patches import PATCH_CLASSES, downsample, upsample
from workbench.horkd.data import load_horkd_data
from workbench.horkd.identification import identification_metric
from workbench.horkd.losses import HybridOrderLoss, SoftLogitKD, StreamOutput
from workbench.models.classifier import SmallCNN
from workbench.train import (
    History,
    accuracy,
    cached_model,
    classification_loss,
    classification_step,
    cosine_schedule,
    fit,
    resolve_device,
)

METHODS: tuple[str, ...] = ("scratch", "hinton", "rkd", "horkd_no_assistant", "horkd")
METHOD_LABELS: dict[str, str] = {
    "scratch": "student from scratch", "hinton": "Hinton KD", "rkd": "RKD (distance + angle)",
    "horkd_no_assistant": "HORKD without assistant", "horkd": "HORKD (teacher + assistant)",
    "teacher_upsampled": "HR teacher on up-sampled LR", "assistant": "assistant (teacher size, LR-adapted)",
}
WEIGHT_DECAY = 1e-4  # AdamW's, for every stream


# -------------------------------------------------------------------------------------------------- settings
TASKS: tuple[str, ...] = ("bank", "patches", "faces")


@dataclass(frozen=True)
class HorkdConfig:
    """Sizes and weights of the three-stream experiment (``lr``: the learning rate). Frozen: ``asdict()`` is the
    cache key of every stream it trains.

    ``task``: ``"bank"`` (``workbench.data.load_patch_bank``: 22 photographs/textures x ``bands`` bands, 44 classes
    by default, the harder task), ``"patches"`` (the 10-class colour patch set of ``load_patches``) or ``"faces"``
    (the paper's own setting: low-resolution faces from ``face_root``, laid out ``root/<identity>/<image>``; the
    streams classify the training identities and are judged by rank-1 identification and verification AUC on
    unseen ones, see ``workbench.horkd.identification``; ``bands`` and ``*_per_class`` do not apply).
    ``angle_triplets``: None for RKD's exact angle term over all B^3 triplets of a batch, or the number of triplets
    of our sampled, unbiased estimate of it (``RKDAngle(triplets)``; the full setting's, which makes it fit a CPU).
    ``full()``: the benchmark and dashboard setting (the whole 5-seed benchmark in about three minutes on one
    H200). ``smoke()``: tests and first use on a CPU (seconds per model; numbers meaningless).
    """

    task: str = "bank"
    bands: int = 2
    hr_size: int = 32
    resolutions: tuple[int, ...] = (16, 8)
    teacher_width: int = 32
    student_width: int = 6
    depth: int = 3
    train_per_class: int | None = 160
    test_per_class: int | None = 48
    teacher_epochs: int = 30
    assistant_epochs: int = 10
    student_epochs: int = 24
    batch_size: int = 512
    lr: float = 3e-3
    alpha: float = 1.0
    beta: float = 25.0
    gamma: float = 50.0
    temperature: float = 4.0
    face_root: str | None = None
    angle_triplets: int | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}; got {self.task!r}")
        if self.task == "faces" and not self.face_root:
            raise ValueError(f"task='faces' needs face_root: a folder laid out as {FACE_LAYOUT}")
        if self.task != "faces" and self.face_root is not None:
            raise ValueError(f"face_root is only read by task='faces'; got task={self.task!r}")
        if self.face_root is not None:
            object.__setattr__(self, "face_root", str(Path(self.face_root).expanduser()))
        if not self.resolutions or any(not 4 <= r <= self.hr_size for r in self.resolutions):
            raise ValueError(f"resolutions must lie in [4, hr_size={self.hr_size}]; got {self.resolutions}")
        if self.angle_triplets is not None and self.angle_triplets < 1:
            raise ValueError(f"angle_triplets must be None (every triplet) or >= 1; got {self.angle_triplets}")

    @classmethod
    def full(cls) -> HorkdConfig:
        """The benchmark setting: the 44-class bank at HR 32x32 (11,430 training patches with flips), teacher width
        32 and student width 6 (a 25.5x capacity gap), batch 512: about 27,500 optimiser steps for the 5-seed
        benchmark (teacher, 2 assistants, 50 students). The angle term over 16,384 sampled triplets a batch (ours,
        unbiased; the exact term builds a 512^3 tensor, seconds a step on a CPU)."""
        return cls(angle_triplets=16384)

    @classmethod
    def smoke(cls) -> HorkdConfig:
        """One band (22 classes), a width-16 teacher, few patches and epochs: every stream in seconds on a CPU."""
        return cls(bands=1, teacher_width=16, student_width=4, train_per_class=16, test_per_class=8,
                   teacher_epochs=6, assistant_epochs=2, student_epochs=12, batch_size=64)

    @classmethod
    def preset(cls, smoke: bool) -> HorkdConfig:
        """``smoke()`` or ``full()`` (pass ``workbench.train.smoke_mode(SMOKE)``)."""
        return cls.smoke() if smoke else cls.full()

    @classmethod
    def faces(cls, root: str | Path, smoke: bool = False) -> HorkdConfig:
        """``preset(smoke)`` on the faces of ``root`` (``root/<identity>/<image>``), batches of at most 64 faces:
        a face folder is far smaller than the bank, and big batches would leave a few steps an epoch."""
        base = cls.preset(smoke)
        return base.with_(task="faces", face_root=str(root), batch_size=min(base.batch_size, 64))

    def with_(self, **changes: Any) -> HorkdConfig:
        """A copy with some fields changed (e.g. ``resolutions=(8,)``); the cache key follows the fields."""
        return replace(self, **changes)

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names of ``task`` (for ``"faces"``: the training identities, read from ``face_root``)."""
        if self.task == "faces":
            return load_horkd_data(self)[0].classes
        return bank_classes(self.bands) if self.task == "bank" else PATCH_CLASSES

    @property
    def metric(self) -> str:
        """The held-out score the benchmark compares: ``"top1"``, or ``"rank1"`` (identification) for faces."""
        return "rank1" if self.task == "faces" else "top1"

    def recipe(self) -> dict[str, Any]:
        """The cache key of the students: every field, except ``face_root`` outside the faces task (so the bank and
        patch recipes hash as before the field existed); for faces also a digest of the folder's files, so adding
        or replacing images retrains rather than reusing models trained on other faces."""
        fields = asdict(self)
        if self.task == "faces":
            fields["face_data"] = face_folder_digest(self.face_root)
        else:
            del fields["face_root"]
        if self.angle_triplets is None:  # the exact angle term: hashes as before the field existed (shipped smoke)
            del fields["angle_triplets"]
        return fields


def build_teacher(config: HorkdConfig, seed: int = 0) -> SmallCNN:
    """An untrained teacher-size ``SmallCNN`` (also the assistant's architecture), initialised from ``seed``."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return SmallCNN(3, len(config.classes), width=config.teacher_width, depth=config.depth)


def build_student(config: HorkdConfig, seed: int = 0) -> SmallCNN:
    """An untrained student ``SmallCNN`` initialised from ``seed`` (fully convolutional: any input size works)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return SmallCNN(3, len(config.classes), width=config.student_width, depth=config.depth)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def stream(model: SmallCNN, x: torch.Tensor) -> StreamOutput:
    """Embedding and logits of a ``SmallCNN`` in one pass (the logits go through the model's own head)."""
    emb = model.forward_head(model.forward_features(x), pre_logits=True)
    return StreamOutput(emb, model.head(model.drop(emb)))


def low_res_input(hr: torch.Tensor, resolution: int, for_teacher_size: bool = False) -> torch.Tensor:
    """What a stream sees of HR images at ``resolution``: the low-resolution image, or it up-sampled back to the HR
    size for teacher-sized networks (the teacher on up-sampled input, the assistant)."""
    low_res = downsample(hr, resolution)
    return upsample(low_res, hr.shape[-1]) if for_teacher_size else low_res


@torch.no_grad()
def stream_outputs(model: SmallCNN, images: torch.Tensor, device: str | torch.device = "auto",
                   batch_size: int = 256) -> StreamOutput:
    """A frozen stream's embeddings and logits for ``images``, computed on ``device`` in eval mode, float32 on the
    CPU (the model is moved back to the CPU afterwards)."""
    dev = resolve_device(device)
    model.to(dev).eval()
    outs = [stream(model, images[i:i + batch_size].to(dev)) for i in range(0, len(images), batch_size)]
    model.cpu()
    return StreamOutput(torch.cat([o.embedding.float().cpu() for o in outs]),
                        torch.cat([o.logits.float().cpu() for o in outs]))


def recipe_optimizer(model: nn.Module, lr: float) -> torch.optim.AdamW:
    """Every stream's optimiser: AdamW with weight decay 1e-4 (``fit`` pairs it with ``cosine_schedule``)."""
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=WEIGHT_DECAY)


def batches(dataset: torch.utils.data.TensorDataset, batch_size: int, seed: int, device: str | torch.device = "auto",
            drop_last: bool = False) -> torch.utils.data.DataLoader:
    """Shuffled mini-batches of a tensor set, whole batches indexed at once (no per-item collation) from tensors
    moved to ``device`` once: on a GPU, small models are otherwise bound by the loader, not the arithmetic."""
    dev = resolve_device(device)
    data = torch.utils.data.TensorDataset(*(t.to(dev) for t in dataset.tensors))
    sampler = torch.utils.data.BatchSampler(
        torch.utils.data.RandomSampler(data, generator=torch.Generator().manual_seed(seed)), batch_size, drop_last)
    return torch.utils.data.DataLoader(data, batch_size=None, sampler=sampler)


# ----------------------------------------------------------------------------------------------- three streams
def _held_out(config: HorkdConfig, images: torch.Tensor, labels: torch.Tensor
              ) -> Callable[[nn.Module], dict[str, float]]:
    """Each epoch's held-out score: top-1 (``test_acc``), or for faces rank-1 identification on the unseen
    identities (``test_rank1``: their labels are not classes the model was trained on)."""
    if config.task == "faces":
        return identification_metric(images, labels)
    return lambda model: {"test_acc": accuracy(model, images, labels)}


def _summary(history: History) -> dict[str, Any]:
    return {"history": history.epochs, **{k: v for k, v in history.epochs[-1].items() if k.startswith("test_")}}


def teacher_model(config: HorkdConfig, device: str = "auto", retrain: bool = False,
                  progress: bool = True) -> SmallCNN:
    """The HR teacher (cross-entropy on HR patches), trained on first use and cached; frozen afterwards.
    The data are loaded only to train (a cached or shipped teacher needs none)."""

    def fit_teacher(model: SmallCNN) -> dict[str, Any]:
        train, test = load_horkd_data(config)
        loader = batches(torch.utils.data.TensorDataset(train.images, train.labels), config.batch_size, 0, device)
        return _summary(fit(model, loader, classification_step,
                            optimizer=recipe_optimizer(model, config.lr), scheduler=cosine_schedule,
                            epochs=config.teacher_epochs, device=device, seed=0, progress=progress, desc="HR teacher",
                            evaluate=_held_out(config, test.images, test.labels)))

    cfg = {"recipe": "horkd_teacher", "schedule": "cosine", **_teacher_keys(config)}
    return cached_model("horkd_teacher", lambda: build_teacher(config), fit_teacher, cfg, retrain=retrain)


def _teacher_keys(config: HorkdConfig) -> dict[str, Any]:
    keys = ("task", "bands", "hr_size", "teacher_width", "depth", "train_per_class", "test_per_class",
            "teacher_epochs", "batch_size", "lr") + (("face_root", "face_data") if config.task == "faces" else ())
    recipe = config.recipe()
    return {k: recipe[k] for k in keys}


def assistant_model(config: HorkdConfig, resolution: int, device: str = "auto", retrain: bool = False,
                    progress: bool = True) -> SmallCNN:
    """The assistant for ``resolution``: teacher architecture and weights, fine-tuned on up-sampled input.

    Loss (our reconstruction): cross-entropy + ``alpha * tau**2 * KL`` to the frozen teacher's logits on the HR
    version of the same patch, so it keeps the teacher's output structure while adapting to low resolution.
    """
    teacher = teacher_model(config, device=device, progress=progress)
    kd = SoftLogitKD(config.temperature)

    def step(model: nn.Module, batch: Any, dev: torch.device):
        x, y, t_logits = (t.to(dev) for t in batch)
        logits = model(x).float()
        ce, metrics = classification_loss(logits, y)
        return ce + config.alpha * kd(logits, t_logits), metrics

    def fit_assistant(model: SmallCNN) -> dict[str, Any]:  # data and teacher outputs only when it trains
        train, test = load_horkd_data(config)
        dataset = torch.utils.data.TensorDataset(low_res_input(train.images, resolution, True), train.labels,
                                                 stream_outputs(teacher, train.images, device).logits)
        model.load_state_dict(teacher.state_dict())
        loader = batches(dataset, config.batch_size, 0, device)
        return _summary(fit(model, loader, step, optimizer=recipe_optimizer(model, config.lr / 3),
                            scheduler=cosine_schedule, epochs=config.assistant_epochs, device=device, seed=0,
                            progress=progress, desc=f"assistant {resolution}px",
                            evaluate=_held_out(config, low_res_input(test.images, resolution, True), test.labels)))

    cfg = {"recipe": "horkd_assistant", "resolution": resolution, "assistant_epochs": config.assistant_epochs,
           "alpha": config.alpha, "temperature": config.temperature, **_teacher_keys(config)}
    return cached_model(f"horkd_assistant{resolution}", lambda: build_teacher(config), fit_assistant, cfg,
                        retrain=retrain)


def distillation_loss(config: HorkdConfig, method: str) -> HybridOrderLoss | None:
    """The distillation term of ``method`` (None for the scratch student), all built from ``HybridOrderLoss``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    c, n = config, config.angle_triplets
    return {
        "scratch": None,
        "hinton": HybridOrderLoss(c.alpha, 0.0, 0.0, c.temperature),
        "rkd": HybridOrderLoss(0.0, c.beta, c.gamma, c.temperature, angle_triplets=n),
        "horkd_no_assistant": HybridOrderLoss(c.alpha, c.beta, c.gamma, c.temperature, angle_triplets=n),
        "horkd": HybridOrderLoss(c.alpha, c.beta, c.gamma, c.temperature, angle_triplets=n),
    }[method]


def student_step(loss_fn: HybridOrderLoss | None,
                 use_assistant: bool) -> Callable[..., tuple[torch.Tensor, dict[str, float]]]:
    """A ``fit`` step for batches ``(low_res, label, t_emb, t_logits, a_emb, a_logits)``: CE + distillation."""

    def step(model: nn.Module, batch: Any, device: torch.device):
        x, y, t_emb, t_logits, a_emb, a_logits = (t.to(device) for t in batch)
        out = stream(model, x)
        s = StreamOutput(out.embedding.float(), out.logits.float())
        ce, acc = classification_loss(s.logits, y)
        metrics = {"ce": float(ce.detach()), **acc}
        if loss_fn is None:
            return ce, metrics
        refs = [StreamOutput(t_emb, t_logits)] + ([StreamOutput(a_emb, a_logits)] if use_assistant else [])
        kd = loss_fn(s, refs)
        metrics["kd"] = float(kd.detach())
        return ce + kd, metrics

    return step


def student_dataset(images: torch.Tensor, labels: torch.Tensor, teacher: SmallCNN, assistant: SmallCNN,
                    resolution: int, device: str | torch.device = "auto") -> torch.utils.data.TensorDataset:
    """The students' training set ``(low_res, label, t_emb, t_logits, a_emb, a_logits)``: the frozen teacher sees
    the HR ``images``, the assistant their up-sampled low-resolution view (both computed once, on ``device``)."""
    t = stream_outputs(teacher, images, device)
    a = stream_outputs(assistant, low_res_input(images, resolution, True), device)
    return torch.utils.data.TensorDataset(low_res_input(images, resolution), labels, t.embedding, t.logits,
                                          a.embedding, a.logits)


def _student_data(config: HorkdConfig, resolution: int, device: str, progress: bool):
    train, test = load_horkd_data(config)
    teacher = teacher_model(config, device=device, progress=progress)
    assistant = assistant_model(config, resolution, device=device, progress=progress)
    data = student_dataset(train.images, train.labels, teacher, assistant, resolution, device)
    return data, low_res_input(test.images, resolution), test.labels


def train_students(config: HorkdConfig, resolution: int, methods: Sequence[str] = METHODS,
                   seeds: Sequence[int] = (0,), device: str = "auto", retrain: bool = False,
                   progress: bool = True) -> dict[tuple[str, int], SmallCNN]:
    """Students of every ``method`` x ``seed`` at ``resolution`` (cached); teacher/assistant outputs computed once.

    The seed sets the student's initialisation and data order; teacher and assistant are shared across seeds.
    Each returned model carries ``workbench_meta['test_acc']`` (top-1 on the held-out right-hand patches; for faces
    ``'test_rank1'``: rank-1 identification on the unseen identities).
    """
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ValueError(f"unknown method(s) {bad}; choose from {METHODS}")
    if resolution > config.hr_size or resolution < 4:
        raise ValueError(f"resolution must lie in [4, {config.hr_size}]; got {resolution}")
    prepared: list[Any] = []

    def data():
        if not prepared:
            prepared.append(_student_data(config, resolution, device, progress))
        return prepared[0]

    out: dict[tuple[str, int], SmallCNN] = {}
    for method in methods:
        for seed in seeds:
            def fit_student(model: SmallCNN, method: str = method, seed: int = seed) -> dict[str, Any]:
                dataset, test_x, test_y = data()
                # a face folder can hold fewer images than one batch: then every epoch is one whole-set batch
                loader = batches(dataset, min(config.batch_size, len(dataset)), seed, device, drop_last=True)
                step = student_step(distillation_loss(config, method), use_assistant=method == "horkd")
                return _summary(fit(model, loader, step, optimizer=recipe_optimizer(model, config.lr),
                                    scheduler=cosine_schedule, epochs=config.student_epochs, device=device, seed=seed,
                                    progress=progress, desc=f"{method} {resolution}px seed {seed}",
                                    evaluate=_held_out(config, test_x, test_y)))

            cfg = {"recipe": "horkd_student", "method": method, "resolution": resolution, "seed": seed,
                   **config.recipe()}
            out[(method, seed)] = cached_model(f"horkd_student_{method}{resolution}_s{seed}",
                                               lambda seed=seed: build_student(config, seed), fit_student, cfg,
                                               retrain=retrain)
    return out


def student_model(config: HorkdConfig, method: str = "horkd", resolution: int = 8, seed: int = 0,
                  device: str = "auto", retrain: bool = False, progress: bool = True) -> SmallCNN:
    """One cached student (see ``train_students``)."""
    return train_students(config, resolution, [method], [seed], device, retrain, progress)[(method, seed)]
