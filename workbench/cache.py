"""The model cache: a named model is trained on first request and its weights kept under a recipe hash.

Writes are atomic (temp file + rename); a corrupt checkpoint is reported, moved aside and retrained, never silently
used. A recipe is a frozen dataclass (a :class:`workbench.recipes.Recipe`); ``dataclasses.asdict`` of it (less its
optional fields that are None) is what the hash is taken of.

Shipped weights: the package folder ``workbench/weights/`` holds ``<name>-<hash>.pt`` files the project trained with
its own recipes (see :mod:`workbench.weights`); ``cached_model`` loads one when the recipe's hash matches, before it
looks in the user's cache, so the dashboards open with full-setting models without training. ``WORKBENCH_SHIPPED=0``
turns that off (to retrain and re-export them).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.recipes import recipe_fields

CACHE_ENV = "WORKBENCH_CACHE"
SHIPPED_ENV = "WORKBENCH_SHIPPED"
SHIPPED_DIR = Path(__file__).resolve().parent / "weights"
_RECORDERS: list[list[dict[str, Any]]] = []
_SHIPPED_ONLY: list[bool] = []


class NotShippedError(RuntimeError):
    """Inside :func:`shipped_only`, a recipe the package ships no weights for was requested."""


@contextmanager
def shipped_only() -> Iterator[None]:
    """Inside the block ``cached_model`` only loads shipped files: a recipe without one raises
    :class:`NotShippedError` (naming it) instead of training or reading the user's cache. Checks that an install
    opens every dashboard on the weights the project trained."""
    _SHIPPED_ONLY.append(True)
    try:
        yield
    finally:
        _SHIPPED_ONLY.pop()


def shipping_enabled() -> bool:
    """False when ``WORKBENCH_SHIPPED=0`` (shipped weights ignored: everything trains and caches as before)."""
    return os.environ.get(SHIPPED_ENV, "1").strip().lower() not in {"0", "false", "no"}


def shipped_path(name: str, key: str) -> Path | None:
    """The shipped weights file of recipe ``name`` with hash ``key``; None if none or ``WORKBENCH_SHIPPED=0``."""
    if not shipping_enabled():
        return None
    path = SHIPPED_DIR / f"{name}-{key}.pt"
    return path if path.is_file() else None


@contextmanager
def record_models() -> Iterator[list[dict[str, Any]]]:
    """Collect every ``cached_model`` call made inside the block: ``{name, key, path, source, meta}`` each, where
    source is "shipped", "cache" or "trained" (``workbench.weights.export`` uses it to find the files to ship)."""
    calls: list[dict[str, Any]] = []
    _RECORDERS.append(calls)
    try:
        yield calls
    finally:
        _RECORDERS.remove(calls)


def _record(name: str, key: str, path: Path, source: str, meta: Mapping[str, Any]) -> None:
    for calls in _RECORDERS:
        calls.append({"name": name, "key": key, "path": path, "source": source, "meta": dict(meta)})


def cache_dir() -> Path:
    """The model cache folder: ``$WORKBENCH_CACHE`` or ``~/.cache/distill-workbench``."""
    path = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "distill-workbench")
    path.mkdir(parents=True, exist_ok=True)
    return path


def recipe_dict(config: Any) -> dict[str, Any]:
    """A recipe as a plain dict: :func:`workbench.recipes.recipe_fields` of a dataclass instance, ``dict(...)`` of
    a mapping (``config_key`` of a plain dict; ``cached_model`` takes only the dataclass)."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return recipe_fields(config)
    if isinstance(config, Mapping):
        return dict(config)
    raise TypeError(f"a recipe config must be a dataclass instance or a mapping, got {type(config).__name__}")


def config_key(config: Any) -> str:
    """Short stable hash of a recipe's config (a dataclass or a mapping), part of the checkpoint name so a changed
    recipe retrains."""
    config = recipe_dict(config)
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


def save_state(path: Path, blob: Mapping[str, Any]) -> None:
    """Write a dict of tensors and plain values atomically: a temp file in the same folder, then ``os.replace``
    (a crash never leaves a half-written file under ``path``, and two writers never share a temp name)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(dict(blob), fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: Path, model: nn.Module, meta: Mapping[str, Any]) -> None:
    """Write ``{state_dict, meta}`` atomically (:func:`save_state`)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_state(path, {"state_dict": state, "meta": dict(meta)})


class CorruptCheckpointError(RuntimeError):
    """A cached checkpoint could not be read or does not fit the model it is meant for."""


def load_state(path: Path) -> dict[str, Any]:
    """Read what :func:`save_state` wrote (``weights_only``: no code runs); ``CorruptCheckpointError`` naming the
    file if it is unreadable."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle error ...
        raise CorruptCheckpointError(f"checkpoint {path} is corrupt or unreadable: {exc}") from exc


def load_checkpoint(path: Path, model: nn.Module) -> dict[str, Any]:
    """Load weights into ``model``; raise ``CorruptCheckpointError`` (naming the file) if unreadable or mismatched."""
    blob = load_state(path)
    try:
        model.load_state_dict(blob["state_dict"])
    except Exception as exc:  # missing/mismatched keys ...
        raise CorruptCheckpointError(f"checkpoint {path} is corrupt or does not match the model: {exc}") from exc
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CorruptCheckpointError(f"checkpoint {path} holds non-finite values in {name}")
    return dict(blob.get("meta", {}))


def cached_model(
    name: str,
    build: Callable[[], nn.Module],
    train: Callable[[nn.Module], Mapping[str, Any]],
    recipe: Any,
    *,
    retrain: bool = False,
) -> nn.Module:
    """Return the model ``name`` from the cache, training it with ``train(model) -> meta`` on first request.

    The file is ``<cache>/<name>-<hash(config)>.pt``; a shipped ``workbench/weights/<name>-<hash>.pt`` of the same
    recipe is loaded first (never when ``retrain``). A corrupt file is reported with a warning, moved aside
    (``.corrupt`` suffix, never deleted) and retrained. ``recipe`` is the whole frozen recipe dataclass (a
    :class:`workbench.recipes.Recipe`; a hand-built mapping is refused with a TypeError). The returned model is in
    eval mode on the CPU, with the training metadata in ``model.workbench_meta``.
    """
    from workbench.distributed import barrier, is_main_process
    from workbench.runtime import seed_everything

    if not dataclasses.is_dataclass(recipe) or isinstance(recipe, type):
        raise TypeError(f"cached_model({name!r}, ...) needs the frozen recipe dataclass itself (a "
                        f"workbench.recipes.Recipe instance; its fields are the cache key), got "
                        f"{type(recipe).__name__}: a hand-built dict is no longer accepted")
    config = recipe_dict(recipe)
    key = config_key(config)
    path = cache_dir() / f"{name}-{key}.pt"
    seed_everything(int(config.get("seed", 0)))  # the same recipe starts from the same weights on every machine
    model = build()
    shipped = None if retrain else shipped_path(name, key)
    if _SHIPPED_ONLY and shipped is None:
        raise NotShippedError(f"no shipped weights for recipe {name!r} (hash {key}) in {SHIPPED_DIR}: the recipe "
                              "changed since the weights were made (python -m workbench.weights export) or "
                              "WORKBENCH_SHIPPED=0")
    for source, candidate in (("shipped", shipped), ("cache", path)):
        if candidate is None or not candidate.exists() or retrain:
            continue
        try:
            meta = load_checkpoint(candidate, model)
            model.workbench_meta = meta
            _record(name, key, candidate, source, meta)
            return model.eval()
        except CorruptCheckpointError as exc:
            if source == "shipped":  # a broken package file is never moved: fall back to the cache / training
                warnings.warn(f"{exc}; ignoring the shipped file", RuntimeWarning, stacklevel=2)
            else:
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
    _record(name, key, path, "trained", meta)
    return model


