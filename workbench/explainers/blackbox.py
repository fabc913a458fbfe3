"""A model one can only query: :class:`BlackBox` wraps any callable ``images -> scores`` for the explainers.

Re-label distillation's reason to exist (Hua et al., ICME 2021) is the black box: a classifier that answers queries
and nothing else (a service, a C++ library, a model in another framework). :class:`BlackBox` makes that contract
explicit: it takes a function on torch tensors or numpy arrays ``(B, C, H, W)`` float in [0, 1] returning scores
``(B, K)`` (torch, numpy or anything ``numpy.asarray`` reads), calls it under ``torch.no_grad`` ``batch_size`` images
at a time, checks what comes back (shape ``(B, K)``, finite; the error names the callable, the expected shape and
what came back), counts the queries, and marks itself gradient-free. Gradient explainers (``integrated_gradients``,
``saliency``, ``gradcam``) refuse a gradient-free model up front with a message naming :data:`BLACK_BOX_EXPLAINERS`;
a plain Python function that is not an ``nn.Module`` counts as a black box too (:func:`is_black_box`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

#: the explainers that only query the model (no gradients): the ones that can explain a black box
BLACK_BOX_EXPLAINERS: tuple[str, ...] = ("relabel", "lime", "captum_lime", "kernel_shap", "occlusion", "random")


def describe(fn: object) -> str:
    """A short name for a callable in error messages (its qualified name, or its repr)."""
    name = getattr(fn, "__qualname__", None) or getattr(type(fn), "__qualname__", None)
    return str(name) if name else repr(fn)


def is_black_box(model: object) -> bool:
    """True for a model gradients cannot reach: one marked ``gradient_free`` (a :class:`BlackBox`) or any callable
    that is not an ``nn.Module`` (a plain function may call numpy, a C++ library or a server)."""
    return bool(getattr(model, "gradient_free", False)) or not isinstance(model, nn.Module)


def refuse_black_box(explainer: str, model: object) -> None:
    """Raise a TypeError when gradient explainer ``explainer`` is asked to explain a black box (see
    :func:`is_black_box`); the message names the explainers that work on one."""
    if is_black_box(model):
        what = "a gradient-free BlackBox" if getattr(model, "gradient_free", False) else "a callable that is not an " \
            "nn.Module"
        raise TypeError(
            f"the {explainer!r} explainer needs gradients of the model, but {describe(model)} is {what}: gradients "
            f"cannot reach it. Explainers that only query the model work on a black box: "
            f"{', '.join(BLACK_BOX_EXPLAINERS)} (make_explainer(name, model, ...)); or pass the nn.Module itself")


class BlackBox:
    """A queried-only classifier: ``BlackBox(fn, n_classes)(images) -> scores (B, K)`` as a float torch tensor.

    Args:
        fn: the model, ``(B, C, H, W) float in [0, 1] -> scores (B, K)``; it gets torch tensors
            (``accepts="torch"``, on the inputs' device) or float32 numpy arrays (``accepts="numpy"``) and may return
            either (or a list of lists).
        n_classes: K, the number of scores per image it must return.
        input_shape: ``(C, H, W)`` the model takes (None: any); other inputs are a ValueError saying what it takes.
        batch_size: images per call of ``fn`` (a batch of 1000 perturbations goes in chunks).
        accepts: ``"torch"`` or ``"numpy"``, what ``fn`` is called with.
        name: how errors name the model (default: ``fn``'s qualified name).

    ``n_queries`` counts the images sent to ``fn`` (reset it to 0 to count one explanation's queries). Scores come
    back on the inputs' device. The wrapper holds no parameters, so explainers run where the inputs are.
    """

    #: explainers check this: a black box is queried, never differentiated
    gradient_free = True

    def __init__(self, fn: Callable[[Any], Any], n_classes: int, input_shape: Sequence[int] | None = None,
                 batch_size: int = 64, accepts: Literal["torch", "numpy"] = "torch", name: str | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable (B, C, H, W) -> scores (B, K); got {type(fn).__name__}")
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 1:
            raise ValueError(f"n_classes must be a positive integer (scores per image); got {n_classes!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer (images per call); got {batch_size!r}")
        if accepts not in ("torch", "numpy"):
            raise ValueError(f"accepts must be 'torch' or 'numpy'; got {accepts!r}")
        if input_shape is not None and len(tuple(input_shape)) != 3:
            raise ValueError(f"input_shape must be (C, H, W) or None; got {input_shape!r}")
        self.fn, self.n_classes, self.batch_size, self.accepts = fn, n_classes, batch_size, accepts
        self.input_shape = None if input_shape is None else tuple(int(v) for v in input_shape)
        self.name = name or describe(fn)
        self.n_queries = 0

    def __repr__(self) -> str:
        return f"BlackBox({self.name}, n_classes={self.n_classes}, input_shape={self.input_shape})"

    def __call__(self, inputs: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Scores (B, K) of a (B, C, H, W) batch (torch or numpy), float32 on the inputs' device."""
        x = torch.as_tensor(inputs)
        if x.dim() != 4 or (self.input_shape is not None and tuple(x.shape[1:]) != self.input_shape):
            expected = "(B, C, H, W)" if self.input_shape is None else f"(B, {', '.join(map(str, self.input_shape))})"
            raise ValueError(f"{self.name} takes images {expected}; got shape {tuple(x.shape)}")
        x = x.detach().float()
        with torch.no_grad():
            scores = [self._query(x[i:i + self.batch_size]) for i in range(0, x.shape[0], self.batch_size)]
        return torch.cat(scores) if scores else torch.empty(0, self.n_classes, device=x.device)

    def _query(self, x: torch.Tensor) -> torch.Tensor:
        """One call of ``fn`` on a chunk, its answer checked: (len(x), K), finite."""
        arg = np.ascontiguousarray(x.cpu().numpy()) if self.accepts == "numpy" else x
        out = self.fn(arg)
        self.n_queries += x.shape[0]
        expected = f"scores of shape ({x.shape[0]}, {self.n_classes}) (one row of {self.n_classes} per image)"
        try:
            scores = out.detach() if isinstance(out, torch.Tensor) else torch.from_numpy(np.asarray(out, np.float32))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{self.name} must return {expected}; got {type(out).__name__} ({exc})") from exc
        if tuple(scores.shape) != (x.shape[0], self.n_classes):
            raise ValueError(f"{self.name} must return {expected} for a batch of {x.shape[0]}; got "
                             f"{type(out).__name__} of shape {tuple(scores.shape)}")
        scores = scores.float().to(x.device)
        finite = torch.isfinite(scores).all(-1)
        if not finite.all():
            bad = (~finite).nonzero().flatten().tolist()
            raise ValueError(f"{self.name} returned NaN/Inf scores for {len(bad)} of {x.shape[0]} image(s) (rows "
                             f"{bad[:10]}{' ...' if len(bad) > 10 else ''}); expected finite {expected}")
        return scores
