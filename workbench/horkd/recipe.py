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
from typing import Any

import torch
from torch import nn

from workbench.data.patches import downsample, upsample
from workbench.horkd.config import (  # HorkdConfig is imported from here too
    HorkdAssistantRecipe,
    HorkdConfig,
    HorkdStudentRecipe,
    HorkdTeacherRecipe,
)
from workbench.horkd.data import load_horkd_data
from workbench.horkd.dlib_teacher import dlib_teacher
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
    The data are loaded only to train (a cached or shipped teacher needs none). ``config.teacher == "dlib"``:
    dlib's frozen network with a fitted head instead (``workbench.horkd.dlib_teacher``; nothing to train)."""
    if config.teacher == "dlib":
        return dlib_teacher(config)

    def fit_teacher(model: SmallCNN) -> dict[str, Any]:
        train, test = load_horkd_data(config)
        loader = batches(torch.utils.data.TensorDataset(train.images, train.labels), config.batch_size, 0, device)
        return _summary(fit(model, loader, classification_step,
                            optimizer=recipe_optimizer(model, config.lr), scheduler=cosine_schedule,
                            epochs=config.teacher_epochs, device=device, seed=0, progress=progress, desc="HR teacher",
                            evaluate=_held_out(config, test.images, test.labels)))

    return cached_model("horkd_teacher", lambda: build_teacher(config), fit_teacher, HorkdTeacherRecipe.of(config),
                        retrain=retrain)


def assistant_model(config: HorkdConfig, resolution: int, device: str = "auto", retrain: bool = False,
                    progress: bool = True) -> SmallCNN:
    """The assistant for ``resolution``: teacher architecture and weights, fine-tuned on up-sampled input.

    Loss (our reconstruction): cross-entropy + ``alpha * tau**2 * KL`` to the frozen teacher's logits on the HR
    version of the same patch, so it keeps the teacher's output structure while adapting to low resolution.
    With ``config.teacher == "dlib"`` the assistant is the frozen dlib teacher itself, fed the up-sampled view
    (see ``workbench.horkd.dlib_teacher``).
    """
    if config.teacher == "dlib":
        return dlib_teacher(config)
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

    return cached_model(f"horkd_assistant{resolution}", lambda: build_teacher(config), fit_assistant,
                        HorkdAssistantRecipe.of(config, resolution=resolution), retrain=retrain)


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

            recipe = HorkdStudentRecipe.of(config, method=method, resolution=resolution, seed=seed)
            out[(method, seed)] = cached_model(f"horkd_student_{method}{resolution}_s{seed}",
                                               lambda seed=seed: build_student(config, seed), fit_student, recipe,
                                               retrain=retrain)
    return out


def student_model(config: HorkdConfig, method: str = "horkd", resolution: int = 8, seed: int = 0,
                  device: str = "auto", retrain: bool = False, progress: bool = True) -> SmallCNN:
    """One cached student (see ``train_students``)."""
    return train_students(config, resolution, [method], [seed], device, retrain, progress)[(method, seed)]
