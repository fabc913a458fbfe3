"""One face front end for photos, frames and videos: detection, 68 landmarks, crops aligned on the landmarks.

Two aligners, picked by name wherever faces are read (``load_face``, ``read_video``, ``load_face_folder``):

* ``"haar"`` (the default everywhere, so that the data the shipped models were trained on keeps its bytes):
  OpenCV's shipped frontal-face Haar cascade; the crop is framed from the box (``crop_box_face``: eyes at about a
  third of the height, like the LFW crops). No landmarks.
* ``"dlib"``: dlib's HOG face detector (the one DeepfakeBench and SBI preprocess with) on the frame downscaled to
  ``DETECT_SIDE`` px, retried with one upsampling for small faces and on the Haar box when HOG misses; the 68-point
  landmark predictor (iBUG 300-W markup, ``shape_predictor_68_face_landmarks.dat`` from ``face_recognition_models``)
  on the full-resolution frame; a similarity transform that puts the eye centres and the mouth centre at
  ``TEMPLATE`` (measured: the median positions in Haar-framed crops of 56 real photos, so an aligned crop is framed
  like a Haar crop on average, only better registered). Any crop size works (16-256 px).

dlib is the optional ``faces`` extra (``pip install distill-workbench[faces]``) and is imported only here, inside
the functions that use it. When it is not importable, ``aligner="dlib"`` falls back to Haar with a
``FaceFallbackWarning`` that says what is lost. Over a video (``track_faces``) a frame without a face takes the
nearest frame's box (its landmarks predicted anew in its own frame) and landmarks are smoothed over neighbouring
frames of the same shot.
"""

from __future__ import annotations

import functools
import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from workbench.data.face_crops import _check_photo, detect_face_box

ALIGNERS = ("haar", "dlib")
#: Where an aligned crop puts (left eye centre, right eye centre, mouth centre), as fractions of the crop side.
TEMPLATE = np.array([[0.29, 0.36], [0.71, 0.36], [0.50, 0.75]], np.float32)
#: dlib's HOG detector runs on the frame downscaled so that its longer side is at most this many pixels.
DETECT_SIDE = 640
#: dlib's face rectangle relative to a Haar box (x, y offsets and w, h scale; medians over 56 real photos).
_DLIB_IN_HAAR = (0.08, 0.16, 0.86, 0.86)
LANDMARKS_FILE = "shape_predictor_68_face_landmarks.dat"
INSTALL_HINT = "pip install 'distill-workbench[faces]' (dlib-bin, face_recognition_models)"
FALLBACK_LOSS = ("no 68 landmarks, no aligned crops, no landmark-hull SBI masks, and more missed faces "
                 "(Haar missed 9 of 153 real frames that dlib found)")

Box = tuple[int, int, int, int]


class FaceFallbackWarning(UserWarning):
    """``aligner="dlib"`` was asked for but dlib is not importable: OpenCV's Haar cascade is used instead."""


class NoFaceError(ValueError):
    """No face the detector can find: in a photo, or in any frame of a clip. The message names the file (a clip or
    a photo is reported, never silently dropped). The one class for every face reader (dlib's face identifier in
    :mod:`workbench.models.face_id` raises it too), so one ``except NoFaceError`` catches them all."""


@dataclass(frozen=True)
class FoundFace:
    """One face of a frame: its ``box`` (x, y, w, h) as the detector gave it, its 68 ``landmarks`` (68, 2) as
    (x, y) pixels (None with the Haar aligner) and which ``finder`` found it ("dlib", "dlib-upsampled",
    "haar+dlib-landmarks", "haar", or "nearest-frame" in a video)."""

    box: Box
    landmarks: np.ndarray | None
    finder: str


# ------------------------------------------------------------------------------------------------------ dlib
def dlib_available() -> bool:
    """True when dlib and the 68-point landmark model (the ``faces`` extra) are installed and importable."""
    try:
        import dlib  # noqa: F401
    except ImportError:
        return False
    return _landmarks_file() is not None


def _landmarks_file() -> Path | None:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / LANDMARKS_FILE
    return path if path.is_file() else None


@functools.lru_cache(maxsize=1)
def _dlib_models() -> tuple[Any, Any]:
    """dlib's HOG face detector and 68-point shape predictor (loaded once)."""
    if not dlib_available():
        raise ImportError(f"dlib's face detector and 68-point landmark model are not installed; {INSTALL_HINT}")
    import dlib

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(_landmarks_file()))


def resolve_aligner(aligner: str, where: str = "") -> str:
    """``aligner`` checked ("haar" or "dlib"); "dlib" becomes "haar" with a ``FaceFallbackWarning`` when dlib is
    not importable (``where`` names the file or folder being read)."""
    if aligner not in ALIGNERS:
        raise ValueError(f"aligner must be one of {ALIGNERS}; got {aligner!r}")
    if aligner == "dlib" and not dlib_available():
        at = f" for {where}" if where else ""
        warnings.warn(f"dlib is not installed: faces{at} are found by OpenCV's Haar cascade instead, with "
                      f"{FALLBACK_LOSS}; {INSTALL_HINT}", FaceFallbackWarning, stacklevel=3)
        return "haar"
    return aligner


def _rect(box: Box) -> Any:
    import dlib

    x, y, w, h = box
    return dlib.rectangle(int(x), int(y), int(x + w), int(y + h))


def landmarks_in_box(rgb: np.ndarray, box: Box) -> np.ndarray:
    """dlib's 68 landmarks (68, 2) float32 (x, y) of the face inside ``box`` (x, y, w, h) of an RGB uint8 image."""
    _, predictor = _dlib_models()
    shape = predictor(np.ascontiguousarray(rgb), _rect(box))
    return np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], np.float32)


def _downscaled(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    scale = min(1.0, DETECT_SIDE / max(rgb.shape[:2]))
    small = rgb if scale == 1.0 else cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(small), scale


def _detected_box(rgb: np.ndarray) -> tuple[Box, str] | None:
    """dlib HOG, HOG upsampled once, then the Haar box (as a dlib box), all on the frame downscaled to
    ``DETECT_SIDE``; the box in full-resolution pixels, and which of the three found it."""
    detector, _ = _dlib_models()
    small, scale = _downscaled(rgb)
    box, finder = None, ""
    for upsample, name in ((0, "dlib"), (1, "dlib-upsampled")):
        rects = detector(small, upsample)
        if len(rects):
            r = max(rects, key=lambda q: q.area())
            box, finder = (r.left(), r.top(), r.width(), r.height()), name
            break
    if box is None:
        try:
            box, finder = dlib_box_of_haar(detect_face_box(small)), "haar+dlib-landmarks"
        except ValueError:
            return None
    return (round(box[0] / scale), round(box[1] / scale), round(box[2] / scale), round(box[3] / scale)), finder


def dlib_box_of_haar(box: Box) -> Box:
    """The box dlib's detector would give for a face whose Haar box is ``box`` (so landmarks can be predicted)."""
    x, y, w, h = box
    dx, dy, sw, sh = _DLIB_IN_HAAR
    return round(x + dx * w), round(y + dy * h), round(sw * w), round(sh * h)


def find_face(image: np.ndarray, aligner: str = "dlib") -> FoundFace:
    """The largest face of an RGB photo or frame (ValueError "no face found ..." if none).

    ``aligner="dlib"``: HOG detector, then HOG with one upsampling, then the Haar box; 68 landmarks on the face
    found. ``aligner="haar"``: the Haar box only. See the module docstring for the fallback.
    """
    rgb = _check_photo(image)
    if resolve_aligner(aligner) == "haar":
        return FoundFace(detect_face_box(rgb), None, "haar")
    found = _detected_box(rgb)
    if found is None:
        raise ValueError(f"no face found in the {rgb.shape[1]}x{rgb.shape[0]} image by dlib's HOG detector nor by "
                         "OpenCV's Haar cascade; pass a photo with a frontal face")
    box, finder = found
    return FoundFace(box, landmarks_in_box(rgb, box), finder)


# ------------------------------------------------------------------------------------------------------ crops
def key_points(landmarks: np.ndarray) -> np.ndarray:
    """(left eye centre, right eye centre, mouth centre) (3, 2) of 68 iBUG landmarks (image left / right)."""
    pts = np.asarray(landmarks, np.float32)
    return np.stack([pts[36:42].mean(0), pts[42:48].mean(0), pts[48:68].mean(0)])


def alignment_matrix(landmarks: np.ndarray, size: int) -> np.ndarray:
    """The 2x3 similarity transform (rotation, uniform scale, shift) taking the eyes and mouth of ``landmarks`` to
    ``TEMPLATE`` in a ``size`` x ``size`` crop (least squares over the three points)."""
    mat, _ = cv2.estimateAffinePartial2D(key_points(landmarks), TEMPLATE * size, method=cv2.LMEDS)
    if mat is None:
        raise ValueError("the landmarks are degenerate (eyes and mouth on one point); no alignment exists")
    return mat.astype(np.float64)


def transform_points(points: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """(N, 2) points moved by a 2x3 affine matrix."""
    pts = np.asarray(points, np.float64)
    return (pts @ mat[:, :2].T + mat[:, 2]).astype(np.float32)


def _to_unit(crop: np.ndarray, channels: int) -> np.ndarray:
    img = crop.astype(np.float32) / 255.0
    return (cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if channels == 1 else img).clip(0, 1)


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int, channels: int = 3) -> np.ndarray:
    """The face of ``landmarks`` aligned on ``TEMPLATE``: (size, size, 3) colour or (size, size) grey float32 in
    [0, 1]. Large downscales are pre-shrunk with area averaging, so small crops are not aliased."""
    rgb = _check_photo(image)
    mat = alignment_matrix(landmarks, size)
    shrink = int(1.0 / max(np.sqrt(abs(np.linalg.det(mat[:, :2]))), 1e-6) // 2)
    if shrink >= 2:  # area-average first (INTER_AREA), then warp the smaller image
        rgb = cv2.resize(rgb, (rgb.shape[1] // shrink, rgb.shape[0] // shrink), interpolation=cv2.INTER_AREA)
        mat = mat @ np.diag([shrink, shrink, 1.0])
    crop = cv2.warpAffine(rgb, mat, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return _to_unit(crop, channels)


def crop_box_face(image: np.ndarray, box: Box, size: int, channels: int = 3) -> np.ndarray:
    """The face of a Haar ``box`` framed like an LFW crop (the box shrunk 8 % each side horizontally, moved down
    a little: eyes at about a third of the height), (size, size, 3) or (size, size) float32 in [0, 1]."""
    rgb = _check_photo(image)
    x, y, w, h = box
    x0, x1 = max(x + int(0.08 * w), 0), x + w - int(0.08 * w)
    y0, y1 = max(y + int(0.06 * h), 0), y + h + int(0.02 * h)
    if channels == 1:  # grey first, then resize (the order the embedded grey crops were made in)
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[y0:y1, x0:x1].astype(np.float32) / 255.0
        return cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA).clip(0, 1)
    crop = rgb[y0:y1, x0:x1].astype(np.float32) / 255.0
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA).clip(0, 1)


def crop_face(image: np.ndarray, face: FoundFace, size: int, channels: int = 3) -> np.ndarray:
    """The crop of a found face: aligned on its landmarks when it has them, else framed from its Haar box."""
    if face.landmarks is not None:
        return align_face(image, face.landmarks, size, channels)
    return crop_box_face(image, face.box, size, channels)


def found_face_crop(image: np.ndarray, aligner: str, size: int, channels: int = 3,
                    source: str = "the image") -> tuple[np.ndarray, FoundFace]:
    """The largest face of an RGB photo found by ``aligner`` (``find_face``) and cropped (``crop_face``), channels
    first as a network takes it: (channels, size, size) float32 in [0, 1], and the face found. No face: a
    ``NoFaceError`` that starts with ``source`` (the file's name)."""
    rgb = _check_photo(image)
    try:
        face = find_face(rgb, aligner)
    except ValueError as err:
        raise NoFaceError(f"{source}: {err}") from None
    crop = crop_face(rgb, face, size, channels)
    return np.ascontiguousarray(crop.transpose(2, 0, 1) if channels == 3 else crop[None], dtype=np.float32), face


def crop_landmarks(face: FoundFace, size: int) -> np.ndarray | None:
    """The landmarks of a found face in the coordinates of its aligned ``size`` crop (None without landmarks)."""
    if face.landmarks is None:
        return None
    return transform_points(face.landmarks, alignment_matrix(face.landmarks, size))


def landmarks_of_crop(crop: np.ndarray) -> np.ndarray:
    """68 landmarks (68, 2) of a face crop framed like ``crop_box_face`` / ``align_face`` (any size, grey or
    colour, float in [0, 1] or uint8): the predictor runs on the crop upscaled to at least 160 px inside the box
    where dlib's detector puts a face of that framing. Used for faces that come without landmarks (embedded faces,
    Haar crops) when a landmark-hull mask is asked for."""
    img = np.asarray(crop)
    img = (np.clip(img, 0, 1) * 255).round().astype(np.uint8) if img.dtype != np.uint8 else img
    img = np.repeat(img[..., None], 3, 2) if img.ndim == 2 else img
    side = img.shape[0]
    scale = max(1.0, 160 / side)
    big = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC) if scale > 1 else img
    s = big.shape[0]
    box = (0, round(0.10 * s), s, round(0.90 * s))
    return landmarks_in_box(big, box) / scale


# ------------------------------------------------------------------------------------------------------ videos
def _nearest_filled(rgb: np.ndarray, near: FoundFace, aligner: str) -> FoundFace:
    if aligner == "haar":
        return FoundFace(near.box, None, "nearest-frame")
    return FoundFace(near.box, landmarks_in_box(rgb, near.box), "nearest-frame")


def smooth_landmarks(faces: list[FoundFace], radius: int = 1) -> list[FoundFace]:
    """Landmarks averaged (triangular weights) over the frames within ``radius``, only across frames whose face
    centre moved less than a quarter of the face width (a cut or a jump is never smoothed across)."""
    if radius < 1 or faces[0].landmarks is None:
        return faces
    pts = np.stack([f.landmarks for f in faces]).astype(np.float64)
    centres = pts.mean(1)
    widths = np.ptp(pts[..., 0], axis=1)
    out = []
    for k, face in enumerate(faces):
        total, weight = np.zeros((68, 2)), 0.0
        for j in range(max(0, k - radius), min(len(faces), k + radius + 1)):
            if np.linalg.norm(centres[j] - centres[k]) < 0.25 * widths[k]:
                w = radius + 1 - abs(j - k)
                total, weight = total + w * pts[j], weight + w
        out.append(FoundFace(face.box, (total / weight).astype(np.float32), face.finder))
    return out


def track_faces(frames: list[np.ndarray], aligner: str = "dlib", smooth: int = 1) -> list[FoundFace]:
    """The face of every RGB frame of a video: found per frame, a frame without one takes the nearest frame's
    box (landmarks predicted in its own frame), then landmarks smoothed over ``smooth`` frames either side
    (``smooth_landmarks``). ``NoFaceError`` when no frame has a face."""
    aligner = resolve_aligner(aligner)
    found: list[FoundFace | None] = []
    for rgb in frames:
        try:
            found.append(find_face(rgb, aligner))
        except ValueError:
            found.append(None)
    hits = [k for k, f in enumerate(found) if f is not None]
    if not hits:
        detector = "OpenCV's Haar cascade" if aligner == "haar" else "dlib's HOG detector nor OpenCV's Haar cascade"
        raise NoFaceError(f"no face found by {detector} in any of the {len(frames)} frames")
    faces = [f if f is not None else _nearest_filled(frames[k], found[min(hits, key=lambda j, k=k: abs(j - k))],
                                                     aligner)
             for k, f in enumerate(found)]
    return smooth_landmarks(faces, smooth)
