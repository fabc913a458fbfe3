"""Checks at the public boundary: a bad input gets an error that says what was expected."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def check_images(
    inputs: torch.Tensor,
    name: str = "inputs",
    channels: int | None = None,
    size: Sequence[int] | None = None,
    value_range: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Return ``inputs`` as a float batch ``(B, C, H, W)``; a single ``(C, H, W)`` image gets a batch axis.

    Raises ``TypeError``/``ValueError`` naming what was expected for: a non-tensor, a wrong number of axes, an
    empty batch, a channel count or spatial size other than ``channels``/``size``, NaN/Inf, values outside
    ``value_range``.
    """
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, C, H, W); got {type(inputs).__name__}")
    if inputs.dim() == 3:
        inputs = inputs.unsqueeze(0)
    if inputs.dim() != 4:
        raise ValueError(
            f"{name} must have shape (B, C, H, W) or (C, H, W); got {tuple(inputs.shape)} ({inputs.dim()} axes)"
        )
    if inputs.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(inputs.shape)}); expected at least one image")
    if not inputs.is_floating_point():
        inputs = inputs.float()
    if channels is not None and inputs.shape[1] != channels:
        raise ValueError(
            f"{name} must have {channels} channel(s) (shape (B, {channels}, H, W)); got {inputs.shape[1]} "
            f"in shape {tuple(inputs.shape)}"
        )
    if size is not None and tuple(inputs.shape[-2:]) != tuple(size):
        raise ValueError(
            f"{name} must be {size[0]}x{size[1]} pixels (H x W); got {inputs.shape[-2]}x{inputs.shape[-1]}"
        )
    if not torch.isfinite(inputs).all():
        bad = int((~torch.isfinite(inputs)).sum())
        raise ValueError(f"{name} contains {bad} NaN/Inf value(s); expected finite values")
    if value_range is not None:
        lo, hi = value_range
        vmin, vmax = float(inputs.min()), float(inputs.max())
        if vmin < lo - 1e-4 or vmax > hi + 1e-4:
            raise ValueError(f"{name} must lie in [{lo}, {hi}]; got values in [{vmin:.3g}, {vmax:.3g}]")
    return inputs


def check_target(target: int | Sequence[int] | torch.Tensor | None, batch: int, num_classes: int | None = None,
                 name: str = "target") -> torch.Tensor | None:
    """Normalise a Captum-style ``target`` (None, int, sequence or tensor) to a ``(B,)`` long tensor or None."""
    if target is None:
        return None
    t = torch.as_tensor(target).long().flatten()
    if t.numel() == 1:
        t = t.expand(batch).clone()
    if t.numel() != batch:
        raise ValueError(f"{name} must be an int or have one entry per image ({batch}); got {t.numel()} entries")
    if num_classes is not None and ((t < 0).any() or (t >= num_classes).any()):
        raise ValueError(f"{name} must lie in [0, {num_classes - 1}]; got {t.tolist()}")
    return t


def check_logits(logits: torch.Tensor, batch: int, name: str = "forward_func") -> torch.Tensor:
    """Return a model's output as float ``(B, K)`` logits, or a clear error: wrong shape, NaN/Inf values.

    NaN/Inf logits would otherwise turn into an arbitrary argmax and a silent, meaningless explanation.
    """
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"{name} must return a tensor of logits (B, K); got {type(logits).__name__}")
    if logits.dim() != 2 or logits.shape[0] != batch:
        raise ValueError(f"{name} must return logits (B, K) for a batch of {batch}; got shape {tuple(logits.shape)}")
    logits = logits.float()
    finite = torch.isfinite(logits).all(-1)
    if not finite.all():
        bad = (~finite).nonzero().flatten().tolist()
        shown = bad[:10] + (["..."] if len(bad) > 10 else [])
        raise ValueError(f"{name} returned NaN/Inf logits for {len(bad)} of {batch} input(s) (rows {shown}); "
                         "expected finite values: check the model and its inputs")
    return logits
