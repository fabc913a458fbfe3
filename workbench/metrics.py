"""Evaluation metrics shared by the methods.

Deletion / insertion follow RISE's ``CausalMetric`` (Petsiuk et al., BMVC 2018): pixels are removed (deletion: replaced
by a substrate) or inserted (insertion: into a blurred copy) in order of decreasing saliency, ``step`` pixels at a
time; the score is the softmax probability of the explained class; the AUC is the trapezoid area normalised to
[0, 1]. Deletion: lower is better; insertion: higher is better (declared in ``SCORE_DIRECTION``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from workbench.runtime import model_device
from workbench.validation import check_images, check_target

SCORE_DIRECTION = {"deletion_auc": "lower", "insertion_auc": "higher", "mass_inside": "higher"}

Substrate = Literal["zeros", "blur"] | torch.Tensor


def gaussian_blur(images: torch.Tensor, sigma: float = 2.0) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding (RISE's insertion substrate uses ``klen=11, sigma=5`` at 224 px)."""
    radius = max(1, int(round(3 * sigma)))
    coords = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    pad_mode = "reflect" if min(images.shape[-2:]) > radius else "replicate"
    x = F.pad(images, (radius, radius, 0, 0), mode=pad_mode)
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    x = F.pad(x, (0, 0, radius, radius), mode=pad_mode)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def _substrate(images: torch.Tensor, substrate: Substrate, blur_sigma: float) -> torch.Tensor:
    if isinstance(substrate, torch.Tensor):
        return substrate.to(images).expand_as(images)
    if substrate == "zeros":
        return torch.zeros_like(images)
    if substrate == "blur":
        return gaussian_blur(images, blur_sigma)
    raise ValueError(f"substrate must be 'zeros', 'blur' or a tensor; got {substrate!r}")


@torch.no_grad()
def causal_curve(
    model: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    saliency: torch.Tensor,
    mode: Literal["deletion", "insertion"],
    target: int | list[int] | torch.Tensor | None = None,
    substrate: Substrate | None = None,
    step: int = 1,
    blur_sigma: float = 2.0,
    batch_size: int = 4096,
) -> torch.Tensor:
    """Scores (B, n_steps + 1) of ``target`` (default: predicted class) as pixels are deleted or inserted.

    ``saliency`` is (B, H, W) or shaped like ``images`` (channels are summed, signed); pixels are ranked by decreasing
    saliency (ties broken by index). Deletion starts at the image and replaces pixels with ``substrate`` (default
    zeros); insertion starts at ``substrate`` (default blur) and puts pixels back. All steps are evaluated batched.
    """
    x = check_images(images, "images")
    sal = saliency.to(x.device).float()
    if sal.dim() == 4:
        sal = sal.sum(1)
    if sal.dim() == 2:
        sal = sal.unsqueeze(0)
    if sal.shape != (x.shape[0], *x.shape[-2:]):
        raise ValueError(f"saliency must be (B, H, W) or (B, C, H, W) matching images {tuple(x.shape)}; "
                         f"got {tuple(saliency.shape)}")
    if not torch.isfinite(sal).all():
        raise ValueError("saliency contains NaN/Inf values")
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion'; got {mode!r}")
    b, c, h, w = x.shape
    hw = h * w
    n_steps = (hw + step - 1) // step
    if substrate is None:
        substrate = "zeros" if mode == "deletion" else "blur"
    sub = _substrate(x, substrate, blur_sigma)
    start, finish = (x, sub) if mode == "deletion" else (sub, x)
    order = torch.argsort(sal.reshape(b, hw), dim=1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(hw, device=x.device).expand(b, hw))
    tgt = check_target(target, b)
    if tgt is None:
        tgt = model(x).argmax(-1)
    tgt = tgt.to(x.device)
    counts = torch.clamp(torch.arange(n_steps + 1, device=x.device) * step, max=hw)  # pixels switched at each step
    scores = torch.empty(b, n_steps + 1, device=x.device)
    per_image = n_steps + 1
    chunk = max(1, batch_size // per_image)
    for i in range(0, b, chunk):
        j = min(b, i + chunk)
        switched = (rank[i:j, None, :] < counts[None, :, None]).reshape(j - i, per_image, 1, h, w).to(x.dtype)
        frames = start[i:j, None] * (1 - switched) + finish[i:j, None] * switched
        flat = frames.reshape(-1, c, h, w)
        probs = torch.cat([model(flat[k:k + batch_size]).float().softmax(-1)
                           for k in range(0, flat.shape[0], batch_size)])
        probs = probs.reshape(j - i, per_image, -1)
        scores[i:j] = probs.gather(-1, tgt[i:j, None, None].expand(j - i, per_image, 1)).squeeze(-1)
    return scores


def curve_auc(scores: torch.Tensor) -> torch.Tensor:
    """Trapezoid area under (B, n+1) curves on an x axis normalised to [0, 1] (RISE's ``auc``)."""
    n = scores.shape[-1] - 1
    return (scores.sum(-1) - scores[..., 0] / 2 - scores[..., -1] / 2) / n


def deletion_auc(model, images, saliency, target=None, substrate: Substrate = "zeros", step: int = 1) -> torch.Tensor:
    """Per-image deletion AUC (lower is better)."""
    return curve_auc(causal_curve(model, images, saliency, "deletion", target, substrate, step))


def insertion_auc(model, images, saliency, target=None, substrate: Substrate = "blur", step: int = 1) -> torch.Tensor:
    """Per-image insertion AUC (higher is better)."""
    return curve_auc(causal_curve(model, images, saliency, "insertion", target, substrate, step))


def causal_curves(model: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, target: int,
                  maps: Mapping[str, torch.Tensor | np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Deletion (to zeros) and insertion (from blur) curves of ``target``'s probability for each map of one image.

    ``image`` is (C, H, W) or (1, C, H, W); each map is (C, H, W) (channels summed, signed) or (H, W). The image goes
    to the model's device; the curves come back as NumPy arrays of ``H * W + 1`` scores (one pixel per step).
    """
    x = (image[None] if image.dim() == 3 else image).to(model_device(model))
    out = {}
    for name, m in maps.items():
        sal = torch.as_tensor(m.detach().cpu() if isinstance(m, torch.Tensor) else np.asarray(m)).float()
        sal = (sal.sum(0) if sal.dim() == 3 else sal)[None]
        deletion = causal_curve(model, x, sal, "deletion", target=[target])[0].cpu().numpy()
        insertion = causal_curve(model, x, sal, "insertion", target=[target])[0].cpu().numpy()
        out[name] = (deletion, insertion)
    return out


def mass_inside(saliency: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Share of absolute attribution mass inside ``mask`` (H, W) or (B, H, W), per image; an all-zero map scores 0."""
    sal = saliency.abs()
    if sal.dim() == 4:
        sal = sal.sum(1)
    m = mask.to(sal).expand_as(sal)
    total = sal.sum((-2, -1))
    inside = (sal * m).sum((-2, -1))
    return torch.where(total > 0, inside / total.clamp_min(1e-12), torch.zeros_like(total))
