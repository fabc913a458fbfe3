"""Image corruptions the detectors' benchmarks test robustness under: JPEG, Gaussian blur, Gaussian noise.

One implementation for images and clips, grey or colour: every function takes a float tensor in [0, 1] whose last
three dimensions are ``(C, H, W)`` with ``C`` 1 or 3 (images ``(N, C, H, W)``, clips ``(N, T, C, H, W)``) and returns
a new tensor of the same shape. ``corrupt(x, "jpeg40")`` reads the benchmarks' condition names (``CONDITIONS``).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch

#: the benchmarks' condition names: JPEG quality 40, blur sigma 0.8 px (at 64 px), noise std 0.05
CONDITIONS = ("clean", "jpeg40", "blur0.8", "noise0.05")


def jpeg_image(img: np.ndarray, quality: int) -> np.ndarray:
    """An (H, W) grey or (H, W, 3) RGB float image in [0, 1], JPEG-compressed at ``quality`` and decoded."""
    pixels = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
    colour = pixels.ndim == 3
    if colour:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"JPEG encoding failed for an image of shape {img.shape}")
    if not colour:
        return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def _check(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim < 3 or images.shape[-3] not in (1, 3):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"expected a float tensor (..., C, H, W) with C 1 or 3, got {shape}")


def per_image(images: torch.Tensor, fn: Callable[[np.ndarray], np.ndarray]) -> torch.Tensor:
    """``fn`` on every image of ``images`` (..., C, H, W): an (H, W) array for grey, (H, W, 3) for colour."""
    _check(images)
    flat = images.detach().cpu().float().reshape(-1, *images.shape[-3:])
    grey = flat.shape[1] == 1
    hwc = flat[:, 0].numpy() if grey else flat.permute(0, 2, 3, 1).numpy()
    out = torch.from_numpy(np.stack([np.asarray(fn(img), np.float32) for img in hwc]))
    out = out[:, None] if grey else out.permute(0, 3, 1, 2)
    return out.reshape(images.shape).contiguous()


def jpeg(images: torch.Tensor, quality: int = 40) -> torch.Tensor:
    """Every image JPEG-compressed at ``quality`` (OpenCV's encoder) and decoded."""
    return per_image(images, lambda img: jpeg_image(img, quality))


def blur(images: torch.Tensor, sigma: float = 0.8, reference_size: int | None = None) -> torch.Tensor:
    """Gaussian blur of ``sigma`` px; with ``reference_size``, ``sigma`` is meant at that width and scales with the
    images' (0.8 px at 64 px is 1.6 px at 128 px)."""
    if reference_size is not None:
        sigma = sigma * images.shape[-1] / reference_size
    return per_image(images, lambda img: cv2.GaussianBlur(img, (0, 0), sigma))


def noise(images: torch.Tensor, sigma: float = 0.05, seed: int = 0) -> torch.Tensor:
    """Gaussian noise of std ``sigma`` (a fixed ``seed``), clipped to [0, 1]."""
    _check(images)
    gen = torch.Generator().manual_seed(seed)
    return (images + sigma * torch.randn(images.shape, generator=gen)).clamp(0, 1)


def corrupt(images: torch.Tensor, condition: str, reference_size: int | None = None) -> torch.Tensor:
    """``images`` under one of :data:`CONDITIONS` (blur's sigma at ``reference_size``, see :func:`blur`)."""
    if condition == "clean":
        return images
    if condition == "jpeg40":
        return jpeg(images, 40)
    if condition == "blur0.8":
        return blur(images, 0.8, reference_size)
    if condition == "noise0.05":
        return noise(images, 0.05)
    raise ValueError(f"unknown condition {condition!r}; expected one of {CONDITIONS}")
