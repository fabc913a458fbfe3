"""Real faces that installed packages ship: scikit-image's LFW subset and astronaut, OpenCV's Haar face detector.

See :mod:`workbench.data.faces` for what the embedded set holds and how pseudo-identities are formed.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
from skimage import data as skdata

from workbench.data.patch_bank import skimage_image

IDENTITY_MERGE_CORRELATION = 0.8
#: The astronaut's face box (x, y, w, h) as OpenCV 4.x's frontal-face Haar cascade finds it (``detect_face_box``),
#: recorded so that the embedded set does not depend on the OpenCV build (some builds lack the cascade module).
ASTRONAUT_FACE_BOX = (177, 66, 95, 95)
LFW_FACES = 100


def _check_photo(image: np.ndarray) -> np.ndarray:
    """An RGB photo as (H, W, 3) uint8; clear errors for grey, NaN, wrong layout."""
    arr = np.asarray(image)
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] == 1):
        raise ValueError(f"expected an RGB photo of shape (H, W, 3); got a grey image of shape {arr.shape}")
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"expected an RGB photo of shape (H, W, 3); got shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = arr.astype(np.float64)
        if not np.isfinite(arr).all():
            raise ValueError(f"photo contains {int((~np.isfinite(arr)).sum())} NaN/Inf value(s)")
        scale = 255.0 if arr.max() <= 1.0 else 1.0
        arr = np.clip(arr * scale, 0, 255).astype(np.uint8)
    return arr



@functools.lru_cache(maxsize=1)
def _cascade() -> cv2.CascadeClassifier:
    if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
        raise RuntimeError(f"this OpenCV build ({cv2.__version__}) has no Haar cascade detector; install "
                           "opencv-contrib-python-headless<5, or pass the face box yourself (box=(x, y, w, h))")
    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"OpenCV's Haar cascade could not be read from {path}")
    return cascade


def detect_face_box(image: np.ndarray) -> tuple[int, int, int, int]:
    """The largest frontal face in an RGB photo as ``(x, y, w, h)`` (OpenCV's shipped Haar cascade)."""
    rgb = _check_photo(image)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    boxes = _cascade().detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
    if len(boxes) == 0:
        raise ValueError(f"no face found in the {rgb.shape[1]}x{rgb.shape[0]} image by OpenCV's frontal-face "
                         "Haar cascade; pass a photo with a frontal face")
    x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
    return int(x), int(y), int(w), int(h)


def face_from_photo(image: np.ndarray, size: int = 32, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Crop the (largest, Haar-detected unless ``box`` is given) face of an RGB photo, grey, ``size`` x ``size``.

    The Haar box is shrunk a little horizontally and moved down so that the crop is framed like the LFW crops
    (eyes at about 1/3 of the height).
    """
    rgb = _check_photo(image)
    x, y, w, h = box if box is not None else detect_face_box(rgb)
    x0, x1 = x + int(0.08 * w), x + w - int(0.08 * w)
    y0, y1 = y + int(0.06 * h), y + h + int(0.02 * h)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[max(y0, 0):y1, max(x0, 0):x1]
    return cv2.resize(grey.astype(np.float32) / 255.0, (size, size), interpolation=cv2.INTER_AREA).clip(0, 1)


@functools.lru_cache(maxsize=4)
def _real_faces_cached(size: int) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    lfw = skdata.lfw_subset()[:LFW_FACES].astype(np.float32)
    faces = [cv2.resize(f, (size, size), interpolation=cv2.INTER_LINEAR).clip(0, 1) for f in lfw]
    faces.append(face_from_photo(skimage_image("astronaut"), size, box=ASTRONAUT_FACE_BOX))
    sources = tuple(f"lfw_subset[{i}]" for i in range(LFW_FACES)) + ("astronaut",)
    stack = np.stack(faces).astype(np.float32)
    return stack, _pseudo_identities(stack[:LFW_FACES], extra=1), sources


def _pseudo_identities(faces: np.ndarray, extra: int) -> np.ndarray:
    """Connected components of the 'correlation > IDENTITY_MERGE_CORRELATION' graph; ``extra`` singletons appended."""
    flat = faces.reshape(len(faces), -1).astype(np.float64)
    flat = (flat - flat.mean(1, keepdims=True)) / (flat.std(1, keepdims=True) + 1e-8)
    corr = flat @ flat.T / flat.shape[1]
    parent = list(range(len(faces)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(corr > IDENTITY_MERGE_CORRELATION, 1)), strict=True):
        parent[root(int(i))] = root(int(j))
    roots = [root(i) for i in range(len(faces))]
    relabel = {r: k for k, r in enumerate(dict.fromkeys(roots))}
    ids = [relabel[r] for r in roots]
    ids += [len(relabel) + k for k in range(extra)]
    return np.asarray(ids, dtype=np.int64)


def real_faces(size: int = 32) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The embedded real faces: ``(faces (N, size, size) float32 in [0, 1], pseudo-identities (N,), sources)``."""
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels; got {size}")
    faces, ids, sources = _real_faces_cached(size)
    return faces.copy(), ids.copy(), sources



def split_identities(identities: np.ndarray, seed: int = 0, fractions: tuple[float, float] = (0.6, 0.2)
                     ) -> dict[str, np.ndarray]:
    """Assign each identity to "train", "val" or "test" (fractions of identities; the rest is test), seeded."""
    unique = np.unique(identities)
    order = np.random.default_rng(seed).permutation(unique)
    n_train = int(round(fractions[0] * len(unique)))
    n_val = int(round(fractions[1] * len(unique)))
    return {"train": np.sort(order[:n_train]), "val": np.sort(order[n_train:n_train + n_val]),
            "test": np.sort(order[n_train + n_val:])}

