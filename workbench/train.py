"""One training loop and one model cache for every method of the workbench.

``fit`` handles the device (``"auto"`` picks CUDA when present), mixed precision on CUDA, seeding, a progress bar
(``tqdm.auto``: a widget in notebooks, text in a terminal) and per-epoch metrics. ``cached_model`` trains a named
model on first request and caches its weights; writes are atomic (temp file + rename) and a corrupt checkpoint is
reported and retrained, never silently used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

try:  # tqdm renders as a widget in notebooks; the bare GPU box may not have it, and progress is optional
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover - exercised on minimal GPU machines
    tqdm = None

CACHE_ENV = "WORKBENCH_CACHE"

StepFn = Callable[[nn.Module, Any, torch.device], "tuple[torch.Tensor, Mapping[str, float]]"]


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/None -> CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} was requested but CUDA is not available; use device='auto' or 'cpu'")
    return dev


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU generator seeded the same for data order."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@dataclass
class History:
    """Per-epoch metrics of a ``fit`` run (``epochs[i]`` is a dict of mean metrics of epoch ``i``)."""

    epochs: list[dict[str, float]] = field(default_factory=list)

    def series(self, key: str) -> list[float]:
        return [e[key] for e in self.epochs if key in e]


def fit(
    model: nn.Module,
    loader: Iterable,
    step: StepFn,
    *,
    epochs: int = 1,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    optimizer: torch.optim.Optimizer | None = None,
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
    A non-finite loss stops training with an error instead of producing a NaN model.
    """
    dev = resolve_device(device)
    if seed is not None:
        seed_everything(seed)
    model.to(dev)
    use_amp = (dev.type == "cuda") if amp is None else (amp and dev.type == "cuda")
    opt = optimizer or torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay
    )
    history = History()
    steps = 0
    bar = tqdm(total=epochs, desc=desc, disable=not progress, leave=False) if tqdm is not None else _NoBar()
    for _epoch in range(epochs):
        model.train()
        sums: dict[str, float] = {}
        count = 0
        for batch in loader:
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=use_amp):
                loss, metrics = step(model, batch, dev)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{desc}: loss became {loss.item()} at step {steps}; lower lr or check data")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
            count += 1
            sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            if max_steps is not None and steps >= max_steps:
                break
        record = {k: v / max(count, 1) for k, v in sums.items()}
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                record.update({k: float(v) for k, v in evaluate(model).items()})
        history.epochs.append(record)
        bar.set_postfix({k: f"{v:.3g}" for k, v in record.items()})
        bar.update(1)
        if max_steps is not None and steps >= max_steps:
            break
    bar.close()
    model.eval()
    return history


@contextlib.contextmanager
def one_thread(enabled: bool = True) -> Iterator[None]:
    """Run torch on one CPU thread inside the block (restored after).

    Small tensors gain nothing from a thread pool, and on a busy 2-core machine torch's pool turns millisecond work
    into waits at its barriers (measured 6-30x slower with 2 threads than with 1). ``enabled=False`` is a no-op.
    """
    previous = torch.get_num_threads()
    if enabled:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


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

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    start = time.perf_counter()
    fit(model, loader, counting_step, epochs=10**6, lr=lr, device=dev, max_steps=max_steps, progress=False)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - start
    k = max(1, len(losses) // 10)
    return {"loss_first": sum(losses[:k]) / k, "loss_last": sum(losses[-k:]) / k,
            "items_per_s": items / max(seconds, 1e-9)}


class _NoBar:
    def set_postfix(self, *_args, **_kwargs) -> None: ...
    def update(self, *_args) -> None: ...
    def close(self) -> None: ...


# ----------------------------------------------------------------------------------------------------------- cache
def cache_dir() -> Path:
    """The model cache folder: ``$WORKBENCH_CACHE`` or ``~/.cache/distill-workbench``."""
    path = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "distill-workbench")
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_key(config: Mapping[str, Any]) -> str:
    """Short stable hash of a recipe's config, part of the checkpoint name so a changed recipe retrains."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


def save_checkpoint(path: Path, model: nn.Module, meta: Mapping[str, Any]) -> None:
    """Write ``{state_dict, meta}`` atomically: a temp file in the same folder, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save({"state_dict": state, "meta": dict(meta)}, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class CorruptCheckpointError(RuntimeError):
    """A cached checkpoint could not be read or does not fit the model it is meant for."""


def load_checkpoint(path: Path, model: nn.Module) -> dict[str, Any]:
    """Load weights into ``model``; raise ``CorruptCheckpointError`` (naming the file) if unreadable or mismatched."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(blob["state_dict"])
    except Exception as exc:  # truncated zip, pickle error, missing/mismatched keys ...
        raise CorruptCheckpointError(f"checkpoint {path} is corrupt or does not match the model: {exc}") from exc
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CorruptCheckpointError(f"checkpoint {path} holds non-finite values in {name}")
    return dict(blob.get("meta", {}))


def cached_model(
    name: str,
    build: Callable[[], nn.Module],
    train: Callable[[nn.Module], Mapping[str, Any]],
    config: Mapping[str, Any],
    *,
    retrain: bool = False,
) -> nn.Module:
    """Return the model ``name`` from the cache, training it with ``train(model) -> meta`` on first request.

    The file is ``<cache>/<name>-<hash(config)>.pt``. A corrupt file is reported with a warning, moved aside
    (``.corrupt`` suffix, never deleted) and retrained. The returned model is in eval mode on the CPU, with the
    training metadata in ``model.workbench_meta``.
    """
    path = cache_dir() / f"{name}-{config_key(config)}.pt"
    seed_everything(int(config.get("seed", 0)))  # the same recipe starts from the same weights on every machine
    model = build()
    if path.exists() and not retrain:
        try:
            meta = load_checkpoint(path, model)
            model.workbench_meta = meta
            return model.eval()
        except CorruptCheckpointError as exc:
            warnings.warn(f"{exc}; moving it aside and retraining", RuntimeWarning, stacklevel=2)
            path.replace(path.with_suffix(path.suffix + ".corrupt"))
            seed_everything(int(config.get("seed", 0)))
            model = build()
    meta = dict(train(model))
    meta.update({"name": name, "config": dict(config)})
    model.cpu().eval()
    save_checkpoint(path, model, meta)
    model.workbench_meta = meta
    return model


SMOKE_ENV = "WORKBENCH_SMOKE"


def smoke_mode(smoke: bool | None = None) -> bool:
    """Resolve a notebook's ``SMOKE`` knob: an explicit bool wins; None -> ``$WORKBENCH_SMOKE`` ("1"/"0") if set,
    else smoke on a CPU-only machine and the full setting when CUDA is present."""
    if smoke is not None:
        return bool(smoke)
    env = os.environ.get(SMOKE_ENV)
    if env is not None and env.strip() != "":
        return env.strip().lower() not in {"0", "false", "no"}
    return not torch.cuda.is_available()
