"""The runtime floor of the workbench: device, threads, ``synchronize``, seeding, the smoke switch and ``predict``.

Every other module stands on this one, and it stands on nothing of the workbench (stdlib, numpy and torch only;
OpenCV and threadpoolctl inside :func:`single_threaded`), so importing it can never close an import circle.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn


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


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch, BLAS (when threadpoolctl is installed) and OpenCV on one thread inside the block (restored after).

    The trackers and views work on small arrays: on a busy or small machine, thread pools only add waiting at their
    barriers (a tiny CNN forward measured 30x slower with 2 torch threads than with 1 on a loaded 2-core machine),
    and they blur FPS comparisons. Dashboards, the tracking runner and the benchmarks use this one context.
    """
    import cv2

    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # BLAS stays as it is
            limits: contextlib.AbstractContextManager = contextlib.nullcontext()
        else:
            limits = threadpool_limits(1)
        with limits, one_thread():
            yield
    finally:
        cv2.setNumThreads(cv_threads)


def model_device(model: nn.Module | Callable[..., Any]) -> torch.device:
    """The device of a module's first parameter (or buffer); CPU for a parameter-free module or a plain callable."""
    if isinstance(model, nn.Module):
        for tensor in itertools.chain(model.parameters(), model.buffers()):
            return tensor.device
    return torch.device("cpu")


@torch.no_grad()
def predict(model: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, batch_size: int = 256,
            transform: Callable[[torch.Tensor], torch.Tensor] | None = None, *, softmax: bool = False,
            where: str = "model") -> torch.Tensor:
    """``model(transform(inputs))`` in batches of ``batch_size``, without gradients, as float32 (``softmax``:
    probabilities over the last dimension, as Quantus's ``softmax=True``).

    ``where="model"`` (tensor sets): an ``nn.Module`` is put in eval mode, each batch moves to the model's device
    and the outputs come back on the CPU. ``where="inputs"`` (the metrics, whose model and inputs already share a
    device): the model is called on the inputs where they are, in the mode it is in, and the outputs stay there.
    """
    if where not in ("model", "inputs"):
        raise ValueError(f"where must be 'model' or 'inputs', got {where!r}")
    on_model = where == "model"
    dev = model_device(model) if on_model else inputs.device
    if on_model and isinstance(model, nn.Module):
        model.eval()
    out = []
    for i in range(0, len(inputs), max(1, batch_size)):
        x = inputs[i:i + batch_size].to(dev)
        y = model(transform(x) if transform is not None else x).float()
        out.append(y.cpu() if on_model else y)
    if not out:
        return torch.empty(0)
    result = torch.cat(out)
    return result.softmax(-1) if softmax else result


def synchronize(device: str | torch.device | None = None) -> None:
    """Wait for queued CUDA work on ``device`` (no-op on a CPU): call before reading a timer."""
    dev = torch.device(device) if device is not None else None
    if (dev is None or dev.type == "cuda") and torch.cuda.is_available():
        torch.cuda.synchronize(dev)


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
