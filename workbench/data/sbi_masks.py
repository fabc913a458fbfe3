"""The pieces of one self-blended image: blend masks (the landmark-free face-region mask, ours and the default, and
SBI's landmark convex-hull masks) and the source-target generator (``source_target``, ``blend_pair``).

Paper: Shiohara & Yamasaki, *Detecting Deepfakes with Self-Blended Images*, CVPR 2022 (SBI). Their generator
(``src/utils/sbi.py`` and ``funcs.py`` of the authors' code) takes the convex hull of the face's landmarks, one of
four hull kinds drawn at random (``random_get_hull``: the whole-face hull, an "extended" hull whose eyebrows are
lifted, a random subset of face components, DeepFaceLab's full mask), deforms it (elastic), erodes it and softens its
edge with two Gaussian blurs at a random anisotropic scale (``get_blend_mask``), scales it by a blend ratio from
{0.25, 0.5, 0.75, 1, 1, 1}, and moves the source with the mask by a small random affine (``randaffine``: translation
up to 3 % horizontally, 1.5 % vertically, scale 0.95-1/0.95).

Ours: ``box_mask`` (``mask="box"``), the landmark-free stand-in the shipped weights were trained with: the face
ellipse of an aligned crop, outline deformed by low-order harmonics, eroded / dilated, softened. ``hull_mask``
(``mask="hull"``) follows SBI on 68 iBUG landmarks (SBI's 81-point model adds forehead points that no offline
package ships); the affine is centred on the landmarks' centroid rather than the image centre, kernels scale with the
crop side (SBI's are for 380 px crops, blurred at 192-256 px).
"""

from __future__ import annotations

import cv2
import numpy as np

from workbench.data.synthesis import FACE_ELLIPSE

MASKS = ("box", "hull")
HULL_KINDS = ("face", "extended", "components", "dfl")
BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
#: DeepFaceLab's face parts (iBUG 68 indices) that SBI's "components" and "dfl" hulls are made of.
_PARTS = (
    (*range(0, 9), 17), (*range(8, 17), 26), (17, 18, 19, 8), (24, 25, 26, 8), (*range(19, 25), 8),
    (*range(17, 22), 27, *range(31, 36), 8), (*range(22, 27), 27, *range(31, 36), 8), (*range(27, 36),),
)


def box_mask(size: int, rng: np.random.Generator) -> np.ndarray:
    """A deformed convex face-region blend mask (size, size) float32 in [0, 1], no landmarks needed (the face
    ellipse of an aligned crop, see the module docstring)."""
    cy, cx, ry, rx = FACE_ELLIPSE
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    radius = np.ones_like(angles) * rng.uniform(0.75, 0.95)
    for k in (2, 3, 4):
        radius += rng.uniform(0, 0.08) * np.cos(k * angles + rng.uniform(0, 2 * np.pi))
    pts = np.stack([(cx + rx * radius * np.cos(angles)) * size, (cy + ry * radius * np.sin(angles)) * size], 1)
    hull = cv2.convexHull(pts.astype(np.float32)).astype(np.int32)
    hard = cv2.fillConvexPoly(np.zeros((size, size), np.float32), hull, 1.0)
    scale = size / 64
    grown = cv2.GaussianBlur(hard, (0, 0), rng.uniform(1.0, 3.0) * scale)
    hard = (grown > rng.uniform(0.3, 0.7)).astype(np.float32)
    soft = cv2.GaussianBlur(hard, (0, 0), rng.uniform(1.0, 4.0) * scale)
    return (soft / max(float(soft.max()), 1e-6) * rng.choice(BLEND_RATIOS)).astype(np.float32)


def _check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    pts = np.asarray(landmarks, np.float32)
    if pts.shape != (68, 2) or not np.isfinite(pts).all():
        raise ValueError(f"expected 68 finite (x, y) landmarks of shape (68, 2); got shape {pts.shape}")
    return pts


def _fill_hulls(parts: list[np.ndarray], size: int) -> np.ndarray:
    out = np.zeros((size, size), np.float32)
    for pts in parts:
        hull = cv2.convexHull(np.round(pts).astype(np.int32))
        out = np.maximum(out, cv2.fillConvexPoly(np.zeros((size, size), np.float32), hull, 1.0))
    return out


def hull_region(landmarks: np.ndarray, size: int, kind: str, rng: np.random.Generator | None = None) -> np.ndarray:
    """The hard (0 / 1) hull of one of SBI's four kinds (``HULL_KINDS``) of 68 landmarks in a ``size`` crop:
    "face" all 68 points, "extended" with the eyebrows lifted away from the nose tip by 30 %, "components" a random
    subset (``rng``) of DeepFaceLab's eight face parts, "dfl" all eight parts."""
    pts = _check_landmarks(landmarks)
    if kind == "face":
        return _fill_hulls([pts], size)
    if kind == "extended":
        lifted = pts.copy()
        lifted[17:27] = pts[17:27] + 0.3 * (pts[17:27] - pts[30])
        return _fill_hulls([lifted], size)
    if kind == "components":
        rng = rng if rng is not None else np.random.default_rng()
        chosen = rng.choice(len(_PARTS), size=int(rng.integers(3, len(_PARTS) + 1)), replace=False)
        return _fill_hulls([pts[list(_PARTS[i])] for i in sorted(chosen)], size)
    if kind == "dfl":
        return _fill_hulls([pts[list(p)] for p in _PARTS], size)
    raise ValueError(f"hull kind must be one of {HULL_KINDS}; got {kind!r}")


def _elastic(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An elastic deformation of the mask (albumentations' ElasticTransform(alpha=50, sigma=7) as SBI uses it, at
    SBI's 256 px scale)."""
    size = mask.shape[0]
    sigma, alpha = 7 * size / 256, 50 * size / 256
    dx, dy = (cv2.GaussianBlur(rng.uniform(-1, 1, mask.shape).astype(np.float32), (0, 0), sigma) * alpha
              for _ in range(2))
    grid_x, grid_y = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32))
    return cv2.remap(mask, grid_x + dx, grid_y + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def _odd(k: float) -> int:
    return max(1, int(k) // 2 * 2 + 1)


def soften(region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """SBI's ``get_blend_mask`` at any size: at a random anisotropic scale (75-100 % of each side) blur and keep
    only the fully inside part (an erosion), blur again for a soft edge, normalise, back to the size."""
    size = region.shape[0]
    k = size / 256
    small = (max(4, int(size * rng.uniform(0.75, 1.0))), max(4, int(size * rng.uniform(0.75, 1.0))))
    m = cv2.resize(region, small, interpolation=cv2.INTER_LINEAR)
    m = cv2.GaussianBlur(m, (_odd(rng.integers(5, 26) * k),) * 2, 0)
    m = (m >= max(float(m.max()), 1e-6) * 0.999).astype(np.float32)
    m = cv2.GaussianBlur(m, (_odd(rng.integers(5, 26) * k),) * 2, float(rng.integers(5, 46)) * k)
    m = m / max(float(m.max()), 1e-6)
    return cv2.resize(m, (size, size), interpolation=cv2.INTER_LINEAR).clip(0, 1).astype(np.float32)


def hull_mask(landmarks: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """SBI's blend mask (size, size) float32 in [0, 1]: a random kind of landmark hull, elastically deformed,
    eroded and softened (``soften``), times a blend ratio."""
    region = hull_region(landmarks, size, HULL_KINDS[int(rng.integers(len(HULL_KINDS)))], rng)
    region = (_elastic(region, rng) > 0.5).astype(np.float32)
    if not region.any():  # a deformation can only shrink a face hull this far on tiny crops
        region = hull_region(landmarks, size, "face")
    return (soften(region, rng) * rng.choice(BLEND_RATIOS)).astype(np.float32)


def landmark_affine(source: np.ndarray, mask: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray]:
    """SBI's ``randaffine`` on the source and its mask together: scale 0.95-1/0.95 about the landmarks' centroid,
    translation up to 3 % of the side horizontally, 1.5 % vertically."""
    size = source.shape[0]
    centre = _check_landmarks(landmarks).mean(0)
    mat = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), 0.0, rng.uniform(0.95, 1 / 0.95))
    mat[:, 2] += (rng.uniform(-0.03, 0.03) * size, rng.uniform(-0.015, 0.015) * size)
    moved = cv2.warpAffine(source, mat, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return moved, cv2.warpAffine(mask, mat, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


# ------------------------------------------------------------------------------------------- source / target
def colour_jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-8, 8)) % 360
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.8, 1.2), 0, 1)
    out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) + rng.uniform(-0.08, 0.08, 3).astype(np.float32)
    return rng.uniform(0.85, 1.15) * (out - 0.5) + 0.5 + rng.uniform(-0.06, 0.06)


def _frequency(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = img.shape[0]
    small = max(8, int(size * rng.uniform(0.35, 0.7)))
    return cv2.resize(cv2.resize(img, (small, small), interpolation=cv2.INTER_AREA), (size, size),
                      interpolation=cv2.INTER_LINEAR)


def _sharpen_or_blur(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    sigma = rng.uniform(0.6, 1.5) * img.shape[0] / 64
    blurred = cv2.GaussianBlur(img, (0, 0), sigma)
    return blurred if rng.random() < 0.5 else img + rng.uniform(0.5, 1.5) * (img - blurred)


def _scale_shift(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = img.shape[0]
    mat = cv2.getRotationMatrix2D((size / 2, size / 2), 0.0, rng.uniform(0.95, 1.05))
    mat[:, 2] += rng.uniform(-0.03, 0.03, 2) * size
    return cv2.warpAffine(img, mat, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def source_target(face: np.ndarray, rng: np.random.Generator, shift: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """SBI's source-target generator: colour / frequency / sharpen-blur on one of the two, scale on the source
    (about the image centre; ``shift=False`` leaves it to ``sbi_masks.landmark_affine``)."""
    source, target = face.copy(), face.copy()
    changed = colour_jitter(face, rng)
    if rng.random() < 0.5:
        changed = _frequency(changed, rng)
    if rng.random() < 0.7:
        changed = _sharpen_or_blur(changed, rng)
    if rng.random() < 0.5:
        source = changed
    else:
        target = changed
    return np.clip(_scale_shift(source, rng) if shift else source, 0, 1), np.clip(target, 0, 1)


def blend_pair(face: np.ndarray, rng: np.random.Generator, mask: str = "box", landmarks: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The blend mask (H, W) and the source / target of one self-blend: ``mask="box"`` the landmark-free mask and
    a centred scale / shift of the source; ``mask="hull"`` SBI's landmark-hull mask, the source moved with it by
    SBI's affine about the ``landmarks`` (68, 2) in crop pixels."""
    size = face.shape[0]
    if mask == "box":
        blend = box_mask(size, rng)
        return (blend, *source_target(face, rng))
    if mask != "hull":
        raise ValueError(f"mask must be one of {MASKS}; got {mask!r}")
    if landmarks is None:
        raise ValueError("mask='hull' needs the face's 68 landmarks (68, 2); got None")
    blend = hull_mask(landmarks, size, rng)
    source, target = source_target(face, rng, shift=False)
    source, blend = landmark_affine(source, blend, landmarks, rng)
    return blend, np.clip(source, 0, 1), target
