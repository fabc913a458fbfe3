"""Forgery synthesis: facial-region masks of an aligned crop and self-blended / swapped manipulations with a known mask.

Made the way self-blended images are made (Shiohara & Yamasaki, CVPR 2022; our reconstruction at this resolution,
without landmarks: the crops are aligned, so facial regions sit at fixed places): a soft-edged, randomly deformed
mask of one facial region, and the face blended inside it with a transformed copy of itself (``self_blend``,
``color``, ``warp``) or with another identity's face tone-matched to it (``swap``). ``make_forgery(face, params,
donor)`` makes one manipulated face + mask from given ``ForgeryParams`` (sampled by ``sample_forgery_params``), so
that a video generator can reuse it with parameters that drift smoothly over frames. See :mod:`workbench.data.faces`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Facial regions of an aligned face crop as ellipses ``(centre_y, centre_x, radius_y, radius_x)`` in [0, 1] units.
FACE_REGIONS: dict[str, tuple[float, float, float, float]] = {
    "eyes": (0.37, 0.50, 0.10, 0.34),
    "left_eye": (0.37, 0.31, 0.09, 0.14),
    "right_eye": (0.37, 0.69, 0.09, 0.14),
    "nose": (0.56, 0.50, 0.14, 0.11),
    "mouth": (0.77, 0.50, 0.08, 0.19),
    "inner_face": (0.55, 0.50, 0.33, 0.33),
}
#: The whole face (every manipulation mask is clipped to it).
FACE_ELLIPSE: tuple[float, float, float, float] = (0.52, 0.50, 0.46, 0.44)
#: Manipulation kinds of the embedded set (a detector can be trained on some and tested on the others).
MANIPULATION_KINDS: tuple[str, ...] = ("self_blend", "swap", "color", "warp")


def _check_face(face: np.ndarray, name: str = "face", size: int | None = None) -> np.ndarray:
    """A grey face as (H, W) float32 in [0, 1]; clear errors for colour, NaN, wrong size or range."""
    arr = np.asarray(face)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a grey (H, W) image in [0, 1]; got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains {int((~np.isfinite(arr)).sum())} NaN/Inf value(s); expected finite values")
    if arr.min() < -1e-4 or arr.max() > 1 + 1e-4:
        raise ValueError(f"{name} must lie in [0, 1]; got values in [{arr.min():.3g}, {arr.max():.3g}]")
    if size is not None and arr.shape != (size, size):
        raise ValueError(f"{name} must be {size}x{size} pixels; got {arr.shape[0]}x{arr.shape[1]}")
    return arr



# ---------------------------------------------------------------------------------------------------------- masks
def ellipse_mask(size: int, ellipse: tuple[float, float, float, float], wobble: np.ndarray | None = None) -> np.ndarray:
    """A binary (size, size) float32 ellipse (normalised units); ``wobble`` = harmonic amplitudes deforming its edge."""
    cy, cx, ry, rx = ellipse
    yy, xx = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size
    dy, dx = (yy - cy) / ry, (xx - cx) / rx
    radius = np.ones_like(dy)
    if wobble is not None:
        angle = np.arctan2(dy, dx)
        for k, (a, phase) in enumerate(wobble.reshape(-1, 2), start=2):
            radius = radius + a * np.cos(k * angle + phase)
    return (dy**2 + dx**2 <= radius**2).astype(np.float32)


def face_mask(size: int = 32) -> np.ndarray:
    """Binary mask of the face area of an aligned crop: every manipulation mask lies inside it."""
    return ellipse_mask(size, FACE_ELLIPSE)


def region_mask(region: str, size: int = 32) -> np.ndarray:
    """Binary mask of one facial region (``FACE_REGIONS``) of an aligned crop, clipped to the face."""
    if region not in FACE_REGIONS:
        raise ValueError(f"unknown facial region {region!r}; choose one of {sorted(FACE_REGIONS)}")
    return ellipse_mask(size, FACE_REGIONS[region]) * face_mask(size)


# ------------------------------------------------------------------------------------------------------ forgeries
@dataclass(frozen=True)
class ForgeryParams:
    """Everything ``make_forgery`` needs; a video generator can vary these smoothly from frame to frame.

    Geometry in normalised units; ``wobble`` holds (amplitude, phase) pairs of the mask edge's harmonics 2, 3, ...;
    tone = ``contrast * (x - mean) + mean + brightness`` then ``** gamma``; ``warp_scale/shift/angle`` is an affine
    warp about the region centre; ``sharpen`` > 0 sharpens, ``blur_sigma`` > 0 blurs (pixels); ``blend`` scales the
    mask (SBI's random blend ratio).
    """

    kind: str
    region: str
    centre_shift: tuple[float, float] = (0.0, 0.0)
    radius_scale: tuple[float, float] = (1.0, 1.0)
    wobble: tuple[float, ...] = ()
    edge_sigma: float = 1.0
    blend: float = 1.0
    brightness: float = 0.0
    contrast: float = 1.0
    gamma: float = 1.0
    warp_scale: float = 1.0
    warp_shift: tuple[float, float] = (0.0, 0.0)
    warp_angle: float = 0.0
    blur_sigma: float = 0.0
    sharpen: float = 0.0


_KIND_REGIONS: dict[str, tuple[str, ...]] = {
    "self_blend": ("eyes", "left_eye", "right_eye", "nose", "mouth", "inner_face"),
    "swap": ("inner_face", "eyes", "mouth"),
    "color": ("eyes", "nose", "mouth", "inner_face", "left_eye", "right_eye"),
    "warp": ("eyes", "left_eye", "right_eye", "nose", "mouth"),
}


def sample_forgery_params(kind: str, rng: np.random.Generator, region: str | None = None) -> ForgeryParams:
    """Random parameters of one manipulation ``kind`` (see the module docstring), deterministic given ``rng``."""
    if kind not in MANIPULATION_KINDS:
        raise ValueError(f"unknown manipulation kind {kind!r}; choose one of {MANIPULATION_KINDS}")
    region = region or str(rng.choice(_KIND_REGIONS[kind]))
    if region not in FACE_REGIONS:
        raise ValueError(f"unknown facial region {region!r}; choose one of {sorted(FACE_REGIONS)}")

    def tone() -> dict[str, float]:
        sign = rng.choice([-1.0, 1.0])
        return {"brightness": float(sign * rng.uniform(0.1, 0.22)), "contrast": float(rng.uniform(0.6, 1.5)),
                "gamma": float(rng.uniform(0.7, 1.4))}

    def warp() -> dict[str, object]:
        return {"warp_scale": float(rng.uniform(1.12, 1.3) if rng.random() < 0.7 else rng.uniform(0.8, 0.9)),
                "warp_shift": (float(rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.05, 0.05))),
                "warp_angle": float(rng.uniform(-10, 10))}

    def filt() -> dict[str, float]:
        return {"blur_sigma": float(rng.uniform(1.0, 1.6))} if rng.random() < 0.5 else \
            {"sharpen": float(rng.uniform(1.5, 2.5))}

    extra: dict[str, object] = {}
    if kind == "self_blend":
        extra = {**tone(), **warp(), **filt()}
    elif kind == "color":
        extra = {**tone(), **filt()}
    elif kind == "warp":
        extra = warp()
    elif kind == "swap":
        extra = filt()
    return ForgeryParams(
        kind=kind, region=region,
        centre_shift=(float(rng.uniform(-0.03, 0.03)), float(rng.uniform(-0.03, 0.03))),
        radius_scale=(float(rng.uniform(0.85, 1.2)), float(rng.uniform(0.85, 1.2))),
        wobble=tuple(float(v) for v in np.stack([rng.uniform(0, 0.12, 3), rng.uniform(0, 2 * np.pi, 3)], 1).ravel()),
        edge_sigma=float(rng.uniform(0.4, 1.0)),
        blend=float(rng.uniform(0.85, 1.0)),
        **extra,
    )


def blend_mask(params: ForgeryParams, size: int) -> np.ndarray:
    """The soft (size, size) blend mask of ``params``: deformed region ellipse, clipped to the face, blurred edge."""
    cy, cx, ry, rx = FACE_REGIONS[params.region]
    ellipse = (cy + params.centre_shift[0], cx + params.centre_shift[1],
               ry * params.radius_scale[0], rx * params.radius_scale[1])
    hard = ellipse_mask(size, ellipse, np.asarray(params.wobble, np.float32) if params.wobble else None)
    hard *= face_mask(size)
    sigma = params.edge_sigma * size / 32
    soft = cv2.GaussianBlur(hard, (0, 0), sigma) if sigma > 0 else hard
    return (soft * face_mask(size) * params.blend).astype(np.float32)


def _transform_source(src: np.ndarray, params: ForgeryParams) -> np.ndarray:
    size = src.shape[0]
    out = src.astype(np.float32)
    if params.warp_scale != 1.0 or params.warp_angle != 0.0 or params.warp_shift != (0.0, 0.0):
        cy, cx = FACE_REGIONS[params.region][:2]
        mat = cv2.getRotationMatrix2D((cx * size, cy * size), params.warp_angle, params.warp_scale)
        mat[:, 2] += (params.warp_shift[1] * size, params.warp_shift[0] * size)
        out = cv2.warpAffine(out, mat, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if params.brightness != 0.0 or params.contrast != 1.0 or params.gamma != 1.0:
        mean = float(out.mean())
        out = np.clip(params.contrast * (out - mean) + mean + params.brightness, 0, 1) ** params.gamma
    if params.blur_sigma > 0:
        out = cv2.GaussianBlur(out, (0, 0), params.blur_sigma * size / 32)
    if params.sharpen > 0:
        out = out + params.sharpen * (out - cv2.GaussianBlur(out, (0, 0), size / 32))
    return np.clip(out, 0, 1).astype(np.float32)


def make_forgery(face: np.ndarray, params: ForgeryParams, donor: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """One manipulated face and its soft mask from a real grey ``face`` (H, W) in [0, 1].

    ``swap`` needs ``donor`` (another identity's aligned face of the same size); its tone is matched to ``face``
    inside the mask, as face-swap pipelines do, so the blend is not given away by a brightness jump.
    """
    target = _check_face(face)
    size = target.shape[0]
    if target.shape != (size, size):
        raise ValueError(f"face must be square; got {target.shape[0]}x{target.shape[1]}")
    mask = blend_mask(params, size)
    if params.kind == "swap":
        if donor is None:
            raise ValueError("kind 'swap' needs a donor face (another identity's aligned face)")
        source = _check_face(donor, "donor", size)
        inside = mask > 0.5
        if inside.any():
            s_mu, s_sd = source[inside].mean(), source[inside].std() + 1e-4
            t_mu, t_sd = target[inside].mean(), target[inside].std() + 1e-4
            source = np.clip((source - s_mu) * (t_sd / s_sd) + t_mu, 0, 1)
    else:
        source = target
    source = _transform_source(source, params)
    fake = mask * source + (1 - mask) * target
    return fake.astype(np.float32), mask

