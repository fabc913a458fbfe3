"""One training loop and one model cache for every method of the workbench.

``fit`` handles the device (``"auto"`` picks CUDA when present), mixed precision on CUDA, seeding, a progress bar
(``tqdm.auto``: a widget in notebooks, text in a terminal) and per-epoch metrics. ``cached_model`` trains a named
model on first request and caches its weights; writes are atomic (temp file + rename) and a corrupt checkpoint is
reported and retrained, never silently used.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workbench import distributed
from workbench.cache import (  # noqa: F401  (re-exported: the cache was part of this module)
    CACHE_ENV,
    CorruptCheckpointError,
    cache_dir,
    cached_model,
    config_key,
    load_checkpoint,
    save_checkpoint,
)
from workbench.runtime import (  # noqa: F401  (re-exported: the tutorials import them from here)
    SMOKE_ENV,
    model_device,
    one_thread,
    predict,
    resolve_device,
    seed_everything,
    single_threaded,
    smoke_mode,
    synchronize,
)

try:  # tqdm renders as a widget in notebooks; the bare GPU box may not have it, and progress is optional
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover - exercised on minimal GPU machines
    tqdm = None

StepFn = Callable[[nn.Module, Any, torch.device], "tuple[torch.Tensor, Mapping[str, float]]"]


@dataclass
class History:
    """Per-epoch metrics of a ``fit`` run (``epochs[i]`` is a dict of mean metrics of epoch ``i``)."""

    epochs: list[dict[str, float]] = field(default_factory=list)


SchedulerFactory = Callable[[torch.optim.Optimizer, int], "torch.optim.lr_scheduler.LRScheduler"]


def cosine_schedule(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Cosine decay of every group's learning rate from its initial value to 0 over ``total_steps`` optimiser steps
    (a ``fit(scheduler=...)`` factory; stepped once per optimiser step)."""
    total = max(1, int(total_steps))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step / total, 1.0))))


def fit(
    model: nn.Module,
    loader: Iterable,
    step: StepFn,
    *,
    epochs: int = 1,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: SchedulerFactory | None = None,
    device: str | torch.device = "auto",
    amp: bool | None = None,
    max_steps: int | None = None,
    seed: int | None = 0,
    progress: bool = True,
    desc: str = "train",
    evaluate: Callable[[nn.Module], Mapping[str, float]] | None = None,
) -> History:
    """Train ``model`` with ``step(model, batch, device) -> (loss, metrics)`` for ``epochs`` passes over ``loader``.

    Mixed precision (bfloat16 autocast) is used on CUDA unless ``amp=False``; ``max_steps`` bounds the total number
    of optimiser steps (the GPU check and smoke settings use it); ``evaluate(model)`` adds metrics after each epoch.
    ``optimizer`` replaces the default AdamW(lr, weight_decay); ``scheduler(optimizer, total_steps)`` builds a
    learning-rate scheduler stepped after every optimiser step (e.g. :func:`cosine_schedule`), where ``total_steps``
    is ``epochs * len(loader)`` bounded by ``max_steps``.
    Under ``torchrun`` (``WORLD_SIZE`` > 1) the same call trains data-parallel: see :mod:`workbench.distributed`.
    A loader whose data set has ``set_epoch(epoch)`` (``FreshDraws``) is told each epoch before it is iterated.
    A non-finite loss stops training with an error instead of producing a NaN model.
    """
    ctx = distributed.context()
    dev = resolve_device(device)
    if ctx.active and dev.type == "cuda":
        dev = torch.device("cuda", ctx.local_rank)
    if seed is not None:
        seed_everything(seed)
    model.to(dev)
    if ctx.active:
        loader = distributed.shard_loader(loader, ctx, seed or 0)  # type: ignore[arg-type]
        distributed.broadcast_parameters(model)
    use_amp = (dev.type == "cuda") if amp is None else (amp and dev.type == "cuda")
    opt = optimizer or torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay
    )
    sched = scheduler(opt, _total_steps(loader, epochs, max_steps)) if scheduler is not None else None
    history = History()
    loop = _Loop(model, step, opt, sched, dev, use_amp, max_steps, desc, ctx)
    bar = _NoBar() if tqdm is None else tqdm(total=epochs, desc=desc, disable=not (progress and ctx.is_main),
                                             leave=False)
    for epoch in range(epochs):
        for part in (getattr(loader, "sampler", None), getattr(loader, "dataset", None)):
            if hasattr(part, "set_epoch"):  # a DistributedSampler's order; a data set drawn afresh every epoch
                part.set_epoch(epoch)  # type: ignore[union-attr]
        record = loop.epoch(loader)
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                record.update({k: float(v) for k, v in evaluate(model).items()})
        history.epochs.append(record)
        bar.set_postfix({k: f"{v:.3g}" for k, v in record.items()})
        bar.update(1)
        if loop.done:
            break
    bar.close()
    model.eval()
    return history


@dataclass
class _Loop:
    """The optimiser steps of one epoch of :func:`fit` (gradients averaged over ranks under torchrun)."""

    model: nn.Module
    step: StepFn
    opt: torch.optim.Optimizer
    sched: Any
    dev: torch.device
    use_amp: bool
    max_steps: int | None
    desc: str
    ctx: distributed.DistContext
    steps: int = 0

    @property
    def done(self) -> bool:
        return self.max_steps is not None and self.steps >= self.max_steps

    def epoch(self, loader: Iterable) -> dict[str, float]:
        self.model.train()
        sums: dict[str, float] = {}
        count = 0
        for batch in loader:
            with torch.autocast(device_type=self.dev.type, dtype=torch.bfloat16, enabled=self.use_amp):
                loss, metrics = self.step(self.model, batch, self.dev)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{self.desc}: loss became {loss.item()} at step {self.steps}; "
                                         "lower lr or check data")
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            if self.ctx.active:
                distributed.average_gradients(self.model, self.ctx.world_size)
            self.opt.step()
            if self.sched is not None:
                self.sched.step()
            self.steps += 1
            count += 1
            for k, v in {"loss": float(loss.detach()), **metrics}.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            if self.done:
                break
        record = {k: v / max(count, 1) for k, v in sums.items()}
        return distributed.mean_over_ranks(record, self.dev) if self.ctx.active else record


def _total_steps(loader: Iterable, epochs: int, max_steps: int | None) -> int:
    try:
        total = epochs * len(loader)  # type: ignore[arg-type]
    except TypeError:  # an iterable without a length: only max_steps can bound it
        total = max_steps or 1
    return max(1, min(total, max_steps or total))


def training_throughput(model: nn.Module, loader: Iterable, step: StepFn, *, max_steps: int, lr: float,
                        device: str | torch.device = "auto") -> dict[str, float]:
    """Train ``max_steps`` steps with ``fit`` and report what the GPU check prints.

    Returns the mean loss of the first and of the last tenth of the steps and the items (batch rows) per second.
    """
    dev = resolve_device(device)
    losses: list[float] = []
    items = 0

    def counting_step(m: nn.Module, batch: Any, d: torch.device):
        nonlocal items
        loss, metrics = step(m, batch, d)
        items += int(batch[0].shape[0])
        losses.append(float(loss.detach()))
        return loss, metrics

    synchronize(dev)
    start = time.perf_counter()
    fit(model, loader, counting_step, epochs=10**6, lr=lr, device=dev, max_steps=max_steps, progress=False)
    synchronize(dev)
    seconds = time.perf_counter() - start
    k = max(1, len(losses) // 10)
    return {"loss_first": sum(losses[:k]) / k, "loss_last": sum(losses[-k:]) / k,
            "items_per_s": items / max(seconds, 1e-9)}


def budgeted_throughput(cells: Iterable[tuple[str, Callable[[], tuple[nn.Module, Iterable, StepFn, float]]]], *,
                        max_steps: int, budget_s: float, device: str | torch.device = "auto") -> list[dict[str, Any]]:
    """The GPU sections' training-cell table: for each ``(check, make)``, ``make() -> (model, loader, step, lr)``
    trained for ``max_steps`` by :func:`training_throughput`, one row ``{check, device, steps, loss_first,
    loss_last, items_per_s, loss_fell}``; no cell is started once ``budget_s`` seconds are spent."""
    start, rows = time.perf_counter(), []
    for check, make in cells:
        if time.perf_counter() - start > budget_s:
            break
        model, loader, step, lr = make()
        result = training_throughput(model, loader, step, max_steps=max_steps, lr=lr, device=device)
        rows.append({"check": check, "device": str(device), "steps": max_steps, **result,
                     "loss_fell": result["loss_last"] < result["loss_first"]})
    return rows


# ------------------------------------------------------------------------------------------------- training kit
def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy (computed in float32, also under autocast) and the batch's top-1 accuracy."""
    return F.cross_entropy(logits.float(), labels), {"acc": float((logits.argmax(1) == labels).float().mean())}


def classification_step(model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
    """The ``fit`` step of every classifier here: ``batch[0]`` inputs, ``batch[1]`` integer labels."""
    return classification_loss(model(batch[0].to(device)), batch[1].to(device))


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256,
             transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> float:
    """Top-1 accuracy of ``model`` (eval mode, on its device) on a tensor set."""
    if len(images) == 0:
        return 0.0
    correct = int((predict(model, images, batch_size, transform).argmax(1) == labels.cpu()).sum())
    return correct / len(images)  # exact in double precision (a float32 mean moves table cells on rounding edges)


def predict_proba(model: nn.Module, inputs: torch.Tensor, batch_size: int = 256, positive: int = 1) -> torch.Tensor:
    """Softmax probability of class ``positive`` (P(fake) for the forgery detectors) per input."""
    return torch.softmax(predict(model, inputs, batch_size), 1)[:, positive]


def binary_auc(labels: torch.Tensor | np.ndarray, scores: torch.Tensor | np.ndarray) -> float:
    """ROC AUC of ``scores`` for 0/1 ``labels``; NaN (not an error) when only one class is present."""
    from sklearn.metrics import roc_auc_score

    labels, scores = np.asarray(labels), np.asarray(scores)
    return float(roc_auc_score(labels, scores)) if len(np.unique(labels)) == 2 else float("nan")


def binary_scores(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int = 256
                  ) -> dict[str, float]:
    """ROC AUC and accuracy (threshold 0.5) of a two-class detector's P(class 1) on a labelled tensor set."""
    proba = predict_proba(model, inputs, batch_size).numpy()
    y = np.asarray(labels)
    return {"auc": binary_auc(y, proba), "acc": float(((proba > 0.5) == y).mean()) if len(y) else 0.0}


class _NoBar:
    def set_postfix(self, *_args, **_kwargs) -> None: ...
    def update(self, *_args) -> None: ...
    def close(self) -> None: ...
