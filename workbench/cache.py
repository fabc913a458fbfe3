"""The model cache: a named model is trained on first request and its weights kept under a recipe hash.

Writes are atomic (temp file + rename); a corrupt checkpoint is reported, moved aside and retrained, never silently
used. A recipe is a frozen dataclass (or a mapping); ``dataclasses.asdict`` of it is what the hash is taken of.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

CACHE_ENV = "WORKBENCH_CACHE"


def cache_dir() -> Path:
    """The model cache folder: ``$WORKBENCH_CACHE`` or ``~/.cache/distill-workbench``."""
    path = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "distill-workbench")
    path.mkdir(parents=True, exist_ok=True)
    return path


def recipe_dict(config: Any) -> dict[str, Any]:
    """A recipe as a plain dict: ``dataclasses.asdict`` of a dataclass instance, ``dict(...)`` of a mapping."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    if isinstance(config, Mapping):
        return dict(config)
    raise TypeError(f"a recipe config must be a dataclass instance or a mapping, got {type(config).__name__}")


def config_key(config: Any) -> str:
    """Short stable hash of a recipe's config (a dataclass or a mapping), part of the checkpoint name so a changed
    recipe retrains."""
    config = recipe_dict(config)
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
    config: Any,
    *,
    retrain: bool = False,
) -> nn.Module:
    """Return the model ``name`` from the cache, training it with ``train(model) -> meta`` on first request.

    The file is ``<cache>/<name>-<hash(config)>.pt``. A corrupt file is reported with a warning, moved aside
    (``.corrupt`` suffix, never deleted) and retrained. ``config`` is the recipe: a frozen dataclass or a mapping.
    The returned model is in eval mode on the CPU, with the training metadata in ``model.workbench_meta``.
    """
    from workbench.distributed import barrier, is_main_process
    from workbench.train import seed_everything

    config = recipe_dict(config)
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
    if is_main_process():  # under torchrun every rank trained the same model: rank 0 writes it, the others wait
        save_checkpoint(path, model, meta)
    barrier()
    model.workbench_meta = meta
    return model


