"""Self-blended face forgeries at real resolution, in colour, from any folder of real face photos or video frames.

Paper: Shiohara & Yamasaki, *Detecting Deepfakes with Self-Blended Images*, CVPR 2022 (SBI). A detector trained on
real faces only, each blended with a transformed copy of itself, transfers to real deepfakes: the blend boundary and
the source/target mismatch (colour, frequency, scale) are what every face-swap pipeline leaves behind.

Ours, not the paper's:

* **Face crop** (:mod:`workbench.data.face_front`). ``aligner="haar"`` (the default, the shipped weights' data):
  OpenCV's shipped Haar cascade finds the largest frontal face of each photo; the crop is framed like the LFW crops
  (eyes at ~1/3 of the height), in colour, ``size`` x ``size`` (64-128 px). ``aligner="dlib"``: dlib's detector
  and 68 landmarks, the crop aligned on the eyes and mouth (``FaceFolder.landmarks`` then holds the landmarks).
* **Blend mask** (:mod:`workbench.data.sbi_masks`). ``mask="box"`` (the default, the shipped weights' data): the
  convex face region of an aligned crop, outline deformed, eroded or dilated at random, softened, times a blend
  ratio from SBI's {0.25, 0.5, 0.75, 1, 1, 1}. ``mask="hull"``: SBI's own, the convex hull of the landmarks (four
  hull kinds, random face-part subsets), elastically deformed, eroded and blurred, the source moved with the mask by
  SBI's small affine about the landmarks; faces without landmarks (embedded faces, Haar crops) get dlib's
  landmarks predicted on the crop. The mask is the per-pixel ground truth.
* **Source-target transforms** (SBI's STG): on the source *or* the target, colour (RGB shift, hue / saturation /
  brightness / contrast jitter), frequency (down- and up-sampling), sharpen or blur; on the source only, scale
  (0.95-1.05) and translation (up to 3 %). Fake = mask * source + (1 - mask) * target.
* **Training augmentation** (``augment``), the same for real and fake: JPEG quality 30-95, down/up resizing, Gaussian
  blur, Gaussian noise, horizontal flip -- so that compression does not erase the cue the detector learns.
* **Unseen kind** (``poisson_swap``): another face's region cloned onto the target with ``cv2.seamlessClone``
  (Poisson blending), a manipulation made differently from anything in training.
* **Splits** are file-disjoint, or identity-disjoint when the folder has one sub-folder per person or video (every
  file of a sub-folder is one group). The embedded default (``face_source=None``) is the LFW subset's grey faces,
  given a random skin tint so that they are colour photos, plus the astronaut: 101 faces, pseudo-identity splits.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from workbench.data.corruptions import jpeg_image as jpeg_colour  # noqa: F401 (colour images: its old name)
from workbench.data.face_crops import ASTRONAUT_FACE_BOX, real_faces
from workbench.data.face_front import (
    INSTALL_HINT,
    crop_box_face,
    crop_face,
    crop_landmarks,
    dlib_available,
    find_face,
    landmarks_of_crop,
    resolve_aligner,
)
from workbench.data.forgery_sets import SPLITS, ForgerySet
from workbench.data.frame_folders import FRAME_SUFFIXES, read_rgb
from workbench.data.sbi_masks import MASKS, blend_pair, box_mask, colour_jitter, source_target  # noqa: F401

SBI_KIND = "self_blend"
UNSEEN_KIND = "poisson_swap"
#: Fewest faces a folder needs for a train / val / test split (each split gets at least one group).
MIN_FACES = 6
sbi_mask = box_mask  #: the landmark-free blend mask (``mask="box"``), under the name it had here


@dataclass(frozen=True)
class FaceFolder:
    """Real colour face crops: ``faces`` (N, size, size, 3) float32 in [0, 1], one ``group`` (identity / video /
    file) per face, the ``sources`` (file names) they were read from."""

    faces: np.ndarray
    groups: np.ndarray
    sources: tuple[str, ...]
    skipped: tuple[str, ...] = ()  #: files without a face the detector could find (``skip_no_face=True``)
    landmarks: np.ndarray | None = None  #: (N, 68, 2) (x, y) in crop pixels (``aligner="dlib"``), else None


# ------------------------------------------------------------------------------------------------------ real faces
def crop_colour_face(rgb: np.ndarray, size: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """The face of ``box`` framed like an LFW crop, colour, ``size`` x ``size`` float32 in [0, 1]."""
    return crop_box_face(rgb, box, size, 3)


def _face_of_file(path: Path, size: int, aligner: str) -> tuple[np.ndarray, np.ndarray | None]:
    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if bgr is not None and (bgr.ndim == 2 or bgr.shape[-1] == 1):
        raise ValueError(f"{path} is a grey photo; the colour (3-channel) detector needs colour photos")
    rgb = read_rgb(path)
    spread = rgb.astype(np.int16)
    if np.abs(spread[..., 0] - spread[..., 1]).max() <= 2 and np.abs(spread[..., 2] - spread[..., 1]).max() <= 2:
        raise ValueError(f"{path} is a grey photo stored as RGB; the colour (3-channel) detector needs colour photos")
    try:
        face = find_face(rgb, aligner)
    except ValueError as err:
        raise ValueError(f"no face found in {path}: {err}") from None
    return crop_face(rgb, face, size, 3), crop_landmarks(face, size)


def _check_size(size: int) -> None:
    if not 32 <= size <= 256:
        raise ValueError(f"size must lie in [32, 256] pixels (64-128 is the real-resolution setting); got {size}")


@functools.lru_cache(maxsize=4)
def _read_folder(folder: str, size: int, skip_no_face: bool, aligner: str = "haar") -> FaceFolder:
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"face folder {root} does not exist or is not a folder; expected <folder>/<photo>.png|jpg "
                         "or <folder>/<person or video>/<frame>.png|jpg")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in FRAME_SUFFIXES)
    if len(files) < MIN_FACES:
        raise ValueError(f"face folder {root} has {len(files)} photo(s); a train/val/test split needs at least "
                         f"{MIN_FACES} face photos ({', '.join(sorted(FRAME_SUFFIXES))})")
    faces, kept, skipped, landmarks = [], [], [], []
    for path in files:
        try:
            face, points = _face_of_file(path, size, aligner)
            faces.append(face)
            landmarks.append(points)
            kept.append(path)
        except ValueError as err:
            if not (skip_no_face and str(err).startswith("no face")):
                raise
            skipped.append(str(path.relative_to(root)))
    files = kept
    if len(files) < MIN_FACES:
        raise ValueError(f"face folder {root} has {len(files)} photo(s) with a face; a train/val/test split needs "
                         f"at least {MIN_FACES}")
    nested = any(p.parent != root for p in files)
    keys = [str(p.parent.relative_to(root)) if nested else p.name for p in files]
    groups = np.unique(keys, return_inverse=True)[1].astype(np.int64)
    if len(np.unique(groups)) < 3:
        raise ValueError(f"face folder {root} has {len(np.unique(groups))} person/video sub-folder(s); an "
                         "identity-disjoint train/val/test split needs at least 3")
    points = np.stack(landmarks).astype(np.float32) if aligner == "dlib" else None
    return FaceFolder(np.stack(faces).astype(np.float32), groups, tuple(str(p.relative_to(root)) for p in files),
                      tuple(skipped), points)


def load_face_folder(folder: str | Path, size: int = 64, skip_no_face: bool = False,
                     aligner: str = "haar") -> FaceFolder:
    """Every photo of ``folder`` (recursively) as a colour face crop (``aligner`` "haar": Haar-framed, the
    default; "dlib": aligned on dlib's landmarks, kept in ``landmarks``); a clear error naming the file for a
    photo without a face (unless ``skip_no_face``: then it is listed in ``skipped``) or a grey photo, and naming
    the folder when it has too few faces for a split."""
    _check_size(size)
    aligner = resolve_aligner(aligner, str(folder))
    return _read_folder(str(Path(folder).resolve()), size, skip_no_face, aligner)


#: The embedded colour faces' skin tint: per face a factor of R, G, B drawn uniformly from these ranges (R kept).
EMBEDDED_TINT_RANGES: tuple[tuple[float, float], ...] = ((1.0, 1.0), (0.78, 0.9), (0.62, 0.8))
#: Its mean, (1, 0.84, 0.71): the colour of the average embedded (and so shipped SBI weights' training) face.
EMBEDDED_MEAN_TINT: tuple[float, ...] = tuple((lo + hi) / 2 for lo, hi in EMBEDDED_TINT_RANGES)


@functools.lru_cache(maxsize=4)
def embedded_colour_faces(size: int = 64) -> FaceFolder:
    """The embedded colour faces: LFW subset faces with a random (seeded) skin tint, plus the astronaut."""
    _check_size(size)
    grey, ids, sources = real_faces(size)
    rng = np.random.default_rng(0)
    tints = np.stack([np.ones(len(grey)), *(rng.uniform(lo, hi, len(grey)) for lo, hi in EMBEDDED_TINT_RANGES[1:])], 1)
    faces = np.clip(grey[..., None] * tints[:, None, None, :].astype(np.float32), 0, 1)
    faces[-1] = crop_colour_face(_astronaut(), size, ASTRONAUT_FACE_BOX)
    return FaceFolder(faces.astype(np.float32), ids, sources)


def _astronaut() -> np.ndarray:
    from workbench.data.patch_bank import skimage_image

    return skimage_image("astronaut")


def group_split(groups: np.ndarray, split: str, seed: int = 0) -> np.ndarray:
    """Indices of the faces whose group falls in ``split`` (60/20/20 of the groups, seeded; each split non-empty)."""
    unique = np.random.default_rng(seed).permutation(np.unique(groups))
    n_val = max(1, int(round(0.2 * len(unique))))
    n_train = len(unique) - 2 * n_val
    parts = {"train": unique[:n_train], "val": unique[n_train:n_train + n_val], "test": unique[n_train + n_val:]}
    return np.flatnonzero(np.isin(groups, parts[split]))


# ------------------------------------------------------------------------------------------------------ forgeries
def self_blend(face: np.ndarray, rng: np.random.Generator, mask: str = "box", landmarks: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """One self-blended image of a colour face (H, W, 3) in [0, 1]: ``(fake, mask (H, W))`` (``blend_pair``)."""
    face = face.astype(np.float32)
    blend, source, target = blend_pair(face, rng, mask, landmarks)
    return (blend[..., None] * source + (1 - blend[..., None]) * target).astype(np.float32), blend


def poisson_swap(target: np.ndarray, donor: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The unseen kind: ``donor``'s face region Poisson-blended onto ``target`` (``cv2.seamlessClone``)."""
    size = target.shape[0]
    soft = sbi_mask(size, rng)
    hard = (soft > 0.5 * soft.max()).astype(np.uint8) * 255
    hard[:2], hard[-2:], hard[:, :2], hard[:, -2:] = 0, 0, 0, 0
    ys, xs = np.nonzero(hard)
    centre = (int((xs.min() + xs.max() + 1) // 2), int((ys.min() + ys.max() + 1) // 2))
    to_u8 = lambda img: (np.clip(img, 0, 1) * 255).round().astype(np.uint8)  # noqa: E731
    out = cv2.seamlessClone(to_u8(donor), to_u8(target), hard.copy(), centre, cv2.NORMAL_CLONE)  # it edits the mask
    return out.astype(np.float32) / 255.0, cv2.GaussianBlur(hard.astype(np.float32) / 255, (0, 0), 1.0)


def augment(img: np.ndarray, rng: np.random.Generator, blur_p: float = 0.35, colour_p: float = 0.0) -> np.ndarray:
    """Training augmentation (real and fake alike): colour jitter of the whole image (with probability
    ``colour_p``; SBI's training code jitters RGB / hue / saturation / brightness / contrast globally, we reuse the
    source-target colour jitter), JPEG 30-95, down/up resizing, blur (with probability ``blur_p``, sigma 0.3-1.2 px
    at 64 px), noise (the loader flips)."""
    size = img.shape[0]
    out = img
    if colour_p and rng.random() < colour_p:
        out = np.clip(colour_jitter(out, rng), 0, 1).astype(np.float32)
    if rng.random() < 0.3:
        small = int(size * rng.uniform(0.5, 0.9))
        out = cv2.resize(cv2.resize(out, (small, small), interpolation=cv2.INTER_AREA), (size, size))
    if rng.random() < blur_p:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 1.2) * size / 64)
    if rng.random() < 0.5:
        out = jpeg_colour(out, int(rng.integers(30, 96)))
    if rng.random() < 0.3:
        out = out + rng.normal(0, rng.uniform(0.01, 0.06), out.shape)
    return np.ascontiguousarray(np.clip(out, 0, 1), dtype=np.float32)


# ------------------------------------------------------------------------------------------------------ the set
def _check_probabilities(**probabilities: float) -> None:
    for name, p in probabilities.items():
        if not 0 <= p <= 1:
            raise ValueError(f"{name} is a probability in [0, 1]; got {p}")


def _faces_for(face_source: str | Path | None, size: int, aligner: str = "haar", mask: str = "box"
               ) -> tuple[FaceFolder, np.ndarray | None]:
    """The faces, and their landmarks in crop pixels when ``mask="hull"`` needs them (dlib's, predicted on the crop
    for faces read without landmarks)."""
    if mask not in MASKS:
        raise ValueError(f"mask must be one of {MASKS}; got {mask!r}")
    where = "the embedded faces" if face_source is None else str(face_source)
    if mask == "hull" and not dlib_available():
        raise ImportError(f"mask='hull' needs dlib's 68 landmarks of {where}; {INSTALL_HINT}, or use mask='box'")
    if face_source is None:
        data = embedded_colour_faces(size)
    else:
        data = load_face_folder(face_source, size, True, aligner)
    if mask == "box" or data.landmarks is not None:
        return data, data.landmarks
    return data, _predicted_landmarks(None if face_source is None else str(Path(face_source).resolve()), size, aligner)


@functools.lru_cache(maxsize=4)
def _predicted_landmarks(face_source: str | None, size: int, aligner: str) -> np.ndarray:
    data = embedded_colour_faces(size) if face_source is None else load_face_folder(face_source, size, True, aligner)
    return np.stack([landmarks_of_crop(face) for face in data.faces])


def load_sbi_faces(split: str = "train", size: int = 64, n_per_face: int = 4, face_source: str | Path | None = None,
                   seed: int = 0, augmented: bool | None = None, kind: str = SBI_KIND, blur_p: float = 0.35,
                   colour_p: float = 0.0, draw: int = 0, mask: str = "box", aligner: str = "haar") -> ForgerySet:
    """Real faces and their self-blended (or, ``kind="poisson_swap"``, Poisson-swapped) forgeries as a colour
    ``ForgerySet`` (images (N, 3, size, size), per-pixel masks). Per face ``n_per_face`` real + as many fakes.

    ``face_source``: a folder of face photos / frames (photos where no face is found are skipped, see
    ``load_face_folder``), or None for the embedded faces. ``split`` is by group
    (file, or sub-folder = person / video), seeded; swap donors come from the same split. ``augmented`` (default:
    only for "train") applies ``augment`` (blur / colour jitter with probability ``blur_p`` / ``colour_p``) to
    every image. Deterministic given the arguments; ``draw`` > 0 gives other blends and augmentations of the same
    split (a fresh draw per training epoch, ``FreshDraws``). ``mask`` "box" (the default) or "hull" (SBI's
    landmark hull) and ``aligner`` "haar" (the default) or "dlib" are explained in the module docstring.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}; got {split!r}")
    if kind not in (SBI_KIND, UNSEEN_KIND):
        raise ValueError(f"kind must be {SBI_KIND!r} or {UNSEEN_KIND!r}; got {kind!r}")
    if n_per_face < 1:
        raise ValueError(f"n_per_face must be at least 1; got {n_per_face}")
    _check_probabilities(blur_p=blur_p, colour_p=colour_p)
    data, points = _faces_for(face_source, size, aligner, mask)
    members = group_split(data.groups, split, seed)
    augmented = split == "train" if augmented is None else augmented
    rng = np.random.default_rng([seed, size, n_per_face, SPLITS.index(split), len(kind)] + ([draw] if draw else []))
    images, labels, masks, groups = [], [], [], []
    if kind == UNSEEN_KIND and len(np.unique(data.groups[members])) < 2:
        raise ValueError(f"split {split!r} of {face_source or 'the embedded faces'} has one person/video; "
                         f"{UNSEEN_KIND!r} needs a donor face of another one")
    for i in members:
        donors = members[data.groups[members] != data.groups[i]]
        for _ in range(n_per_face):
            if kind == SBI_KIND:
                fake, blend = self_blend(data.faces[i], rng, mask, None if points is None else points[i])
            else:
                fake, blend = poisson_swap(data.faces[i], data.faces[int(rng.choice(donors))], rng)
            for img, label, m in ((data.faces[i], 0, np.zeros_like(blend)), (fake, 1, blend)):
                if augmented and rng.random() < 0.5:
                    img, m = img[:, ::-1], m[:, ::-1]
                images.append(augment(img, rng, blur_p, colour_p) if augmented else img)
                labels.append(label)
                masks.append(np.ascontiguousarray(m))
                groups.append(int(data.groups[i]))
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return ForgerySet(x, torch.as_tensor(labels), torch.from_numpy(np.stack(masks))[:, None],
                      tuple("real" if y == 0 else kind for y in labels), torch.as_tensor(groups))


# ------------------------------------------------------------------------------------------------------ clips
def _clip_motion(img: np.ndarray, frames: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``frames`` affine 2x3 warps: a smooth drift (half a sine period over the clip) of up to 2 % of the size,
    scale 0.97-1.03, rotation <= 3 degrees."""
    size = img.shape[0]
    t = np.linspace(0, 1, frames)
    phase = rng.uniform(0, 2 * np.pi, 4)
    mats = []
    for k in range(frames):
        mat = cv2.getRotationMatrix2D((size / 2, size / 2), 3 * np.sin(np.pi * t[k] + phase[2]),
                                      1 + 0.03 * np.sin(np.pi * t[k] + phase[3]))
        mat[:, 2] += 0.02 * size * np.sin(np.pi * t[k] + phase[:2])
        mats.append(mat)
    return mats


def _sbi_clip(face: np.ndarray, frames: int, fake: bool, augmented: bool, rng: np.random.Generator,
              blur_p: float = 0.0, noise_p: float = 0.0, mask_kind: str = "box", landmarks: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """One clip (T, H, W, 3) and its masks (T, H, W): the face in smooth motion; a fake one self-blended with one
    source / target pair whose blend strength flickers from frame to frame (per-frame face-swap pipelines do).
    ``augmented``: JPEG (one quality per clip, probability 0.5), blur (one sigma 0.3-1.2 px at 64 px per clip,
    probability ``blur_p``) and noise (one std 0.01-0.06 per clip, probability ``noise_p``)."""
    size = face.shape[0]
    mask, source, target = (blend_pair(face, rng, mask_kind, landmarks) if fake
                            else (np.zeros((size, size), np.float32), face, face))
    quality = int(rng.integers(30, 96)) if augmented and rng.random() < 0.5 else 0
    # drawn only when asked for, so that clips made without them keep their random stream (and bytes)
    sigma = rng.uniform(0.3, 1.2) * size / 64 if augmented and blur_p and rng.random() < blur_p else 0.0
    noise = rng.uniform(0.01, 0.06) if augmented and noise_p and rng.random() < noise_p else 0.0
    images, masks = [], []
    for mat in _clip_motion(face, frames, rng):
        m = mask * (rng.uniform(0.6, 1.0) if fake else 0.0)
        img = m[..., None] * source + (1 - m[..., None]) * target
        img, m = (cv2.warpAffine(a.astype(np.float32), mat, (size, size), borderMode=cv2.BORDER_REFLECT)
                  for a in (img, m))
        img = cv2.GaussianBlur(img, (0, 0), sigma) if sigma else img
        img = jpeg_colour(img, quality) if quality else np.clip(img, 0, 1)
        images.append(np.clip(img + rng.normal(0, noise, img.shape), 0, 1) if noise else img)
        masks.append(m)
    return np.stack(images).astype(np.float32), np.stack(masks).astype(np.float32)


def load_sbi_clips(split: str = "train", size: int = 64, frames: int = 8, n_per_face: int = 2,
                   face_source: str | Path | None = None, seed: int = 0, augmented: bool | None = None,
                   blur_p: float = 0.0, noise_p: float = 0.0, draw: int = 0, mask: str = "box", aligner: str = "haar"):
    """Real clips (a face in smooth motion) and self-blended clips (flickering blend) as a colour ``ClipSet``
    (clips (N, T, 3, size, size), per-frame masks); splits, faces, ``augmented`` and ``draw`` as in
    ``load_sbi_faces``; an augmented clip's JPEG quality, blur and noise level are one per clip, as in a
    compressed video (see ``_sbi_clip``); ``mask`` and ``aligner`` as in ``load_sbi_faces``."""
    from workbench.data.forgery_sets import ClipSet

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}; got {split!r}")
    if frames < 1 or n_per_face < 1:
        raise ValueError(f"frames and n_per_face must be at least 1; got {frames}, {n_per_face}")
    _check_probabilities(blur_p=blur_p, noise_p=noise_p)
    data, points = _faces_for(face_source, size, aligner, mask)
    members = group_split(data.groups, split, seed)
    augmented = split == "train" if augmented is None else augmented
    rng = np.random.default_rng([seed, size, frames, n_per_face, SPLITS.index(split)] + ([draw] if draw else []))
    clips, masks, labels, groups = [], [], [], []
    for i in members:
        for _ in range(n_per_face):
            for label in (0, 1):
                clip, blend = _sbi_clip(data.faces[i], frames, bool(label), augmented, rng, blur_p, noise_p, mask,
                                        None if points is None else points[i])
                clips.append(clip)
                masks.append(blend)
                labels.append(label)
                groups.append(int(data.groups[i]))
    x = torch.from_numpy(np.stack(clips)).permute(0, 1, 4, 2, 3).contiguous()
    return ClipSet(x, torch.as_tensor(labels), torch.from_numpy(np.stack(masks)),
                   tuple("real" if y == 0 else SBI_KIND for y in labels), torch.as_tensor(groups))
