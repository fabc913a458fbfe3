"""The explainer contract every attribution method of the workbench follows, modelled on Captum's ``Attribution``.

``explainer.attribute(inputs, target=None, **kwargs)`` returns a tensor shaped like ``inputs`` (batch first, on the
inputs' device). The base class owns what every explainer would otherwise repeat: input validation (a float
``(B, C, H, W)`` batch or one ``(C, H, W)`` image, which comes back squeezed; NaN/Inf and empty batches are refused),
target resolution (None: the class the model predicts; an int, a sequence or a tensor; out-of-range targets are
refused), the device (work runs on the model's device) and a per-image status (``last_status``). A concrete explainer
implements one private method, ``_attribute(x, target, **kwargs)``, which gets a validated batch on the model's device
and a resolved ``(B,)`` long target, and returns the maps (or the maps and one status per image).
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, ClassVar

import torch
from torch import nn

from workbench.explainers.blackbox import refuse_black_box
from workbench.runtime import model_device
from workbench.validation import check_images, check_logits, check_target

ForwardFunc = Callable[[torch.Tensor], torch.Tensor]
TargetType = int | Sequence[int] | torch.Tensor | None

OK = "ok"
#: statuses that mean the explainer could not build a meaningful map for that image (its map is all zeros)
DEGENERATE_STATUSES: frozenset[str] = frozenset({"no_flip", "all_flip"})


def require(module: str, explainer: str) -> ModuleType:
    """Import an optional dependency of ``explainer``, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        raise ImportError(f"the {explainer!r} explainer needs the optional package {package!r}; install the baselines "
                          "extra: pip install distill-workbench[baselines]") from exc


class Explainer:
    """Base of every explainer: ``attribute(inputs, target=None, **kwargs) -> maps shaped like inputs``.

    Args:
        forward_func: the model, ``(B, C, H, W) -> logits (B, K)``: an ``nn.Module``, or a black box (a
            :class:`~workbench.explainers.BlackBox` or any other callable) for the explainers that only query it.

    An explainer that differentiates the model sets ``needs_gradients``: it refuses a black box at construction
    (:func:`~workbench.explainers.blackbox.refuse_black_box`), naming the explainers that work on one.

    After each call, ``last_status`` holds one string per image: ``"ok"`` or why the map is not a plain success
    (RLD: ``"out_of_band"``, ``"no_flip"``, ``"all_flip"``; the last two are in :data:`DEGENERATE_STATUSES`).
    """

    name: ClassVar[str] = "explainer"
    needs_gradients: ClassVar[bool] = False

    def __init__(self, forward_func: ForwardFunc) -> None:
        if not callable(forward_func):
            raise TypeError(f"forward_func must be callable (B, C, H, W) -> logits (B, K); got {type(forward_func)}")
        if self.needs_gradients:
            refuse_black_box(self.name, forward_func)
        self.forward_func = forward_func
        self.last_status: list[str] = []

    # ------------------------------------------------------------------------------------------------ public API
    def attribute(self, inputs: torch.Tensor, target: TargetType = None, **kwargs: Any) -> torch.Tensor:
        """Attributions shaped like ``inputs`` ((B, C, H, W), or (C, H, W) for one image) on the inputs' device.

        ``target``: the class to explain per image (None: the class ``forward_func`` predicts); ``kwargs`` go to the
        explainer (e.g. RLD's ``n_samples``).
        """
        squeeze = isinstance(inputs, torch.Tensor) and inputs.dim() == 3
        x, tgt = self._prepare(inputs, target)
        result = self._attribute(x, tgt, **kwargs)
        maps, status = result if isinstance(result, tuple) else (result, [OK] * x.shape[0])
        maps = maps.detach().float()
        if maps.shape != x.shape:
            maps = maps.expand_as(x).contiguous()
        self.last_status = list(status)
        maps = maps.to(inputs.device)
        return maps[0] if squeeze else maps

    @property
    def device(self) -> torch.device | None:
        """Where the work runs: the model's device (None for a plain callable: then the inputs' device)."""
        return self._module_device(self.forward_func)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    # ------------------------------------------------------------------------------------------------ for subclasses
    def _validate(self, inputs: torch.Tensor) -> torch.Tensor:
        """A float (B, C, H, W) batch, or a clear error; subclasses add constraints (channels, size, value range)."""
        return check_images(inputs, "inputs")

    def _prepare(self, inputs: torch.Tensor, target: TargetType) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate ``inputs``, move them to the model's device, resolve ``target`` to a (B,) long tensor there."""
        x = self._validate(inputs)
        x = x.to(self.device or x.device)
        with torch.no_grad():
            logits = self.forward_func(x)
        logits = check_logits(logits, x.shape[0], "forward_func")
        tgt = check_target(target, x.shape[0], logits.shape[1])
        tgt = logits.argmax(-1) if tgt is None else tgt
        return x, tgt.to(x.device)

    def _attribute(self, x: torch.Tensor, target: torch.Tensor,
                   **kwargs: Any) -> torch.Tensor | tuple[torch.Tensor, list[str]]:
        """The maps for a validated batch ``x`` (on the model's device) and a (B,) long ``target``."""
        raise NotImplementedError

    @staticmethod
    def _module_device(obj: object) -> torch.device | None:
        if isinstance(obj, nn.Module) and next(itertools.chain(obj.parameters(), obj.buffers()), None) is not None:
            return model_device(obj)
        return None
