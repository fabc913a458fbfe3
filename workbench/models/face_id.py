"""A real black box for the explainers: dlib's face-recognition network as a k-way identity classifier.

dlib's ResNet (King, "dlib-ml", JMLR 2009; the network of dlib's ``dnn_face_recognition_ex``, 99.38% on LFW) maps an
aligned 150x150 face chip to a 128-d descriptor; it ships with the ``face_recognition_models`` package and runs in
C++, so no gradient reaches it: it is the case re-label distillation is for. :class:`FaceIdentifier` enrols a few
people (the mean descriptor of each one's photos) and scores a batch of aligned face crops ``(B, 3, H, W)`` in
[0, 1] by their negative distance to each person's mean, divided by ``temperature`` (default 0.1: dlib calls two
descriptors closer than 0.6 the same person, and a distance gap of 0.3 between two people becomes a logit gap of 3);
it is a :class:`~workbench.explainers.BlackBox`, so gradient explainers refuse it.

Crops: :func:`align_face` runs dlib's HOG face detector on a photo (the largest face when there are several), the
68-point shape predictor and ``dlib.get_face_chip`` at ``size`` pixels with padding 0.25, dlib's own framing for the
network (a 64 px crop is the 150 px chip at lower resolution); the network gets every crop resized to 150x150.
A photo with no face is a :class:`NoFaceError` naming the file; :func:`load_identity_folder` (``idNN/imgN.jpg``,
one folder per person) skips such photos with a :class:`FaceWarning` naming each one, and refuses a person left with
none.

dlib is optional (``pip install distill-workbench[faces]``: ``dlib-bin`` and ``face_recognition_models``) and is
imported inside the functions that use it. The model files are found without importing ``face_recognition_models``
(its ``__init__`` needs ``pkg_resources``, which recent setuptools no longer ship).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from workbench.data.face_front import NoFaceError
from workbench.explainers.blackbox import BlackBox

#: the chip side dlib's face-recognition network takes
CHIP_SIZE = 150
#: dlib's framing of a face chip for the network (``compute_face_descriptor`` uses the same)
CHIP_PADDING = 0.25
DESCRIPTOR_DIM = 128
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
MODEL_FILES = {"recognition": "dlib_face_recognition_resnet_model_v1.dat",
               "landmarks": "shape_predictor_68_face_landmarks.dat"}
EXTRA = "pip install distill-workbench[faces]  (dlib-bin and face_recognition_models)"


class FaceWarning(UserWarning):
    """A photo was skipped while enrolling a folder (no face found in it)."""


def _import_dlib() -> ModuleType:
    try:
        return importlib.import_module("dlib")
    except ImportError as exc:
        raise ImportError(f"the face identifier needs dlib; install the faces extra: {EXTRA}") from exc


def model_file(kind: str) -> Path:
    """Path of one of ``face_recognition_models``' files (``"recognition"`` or ``"landmarks"``)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the face identifier needs dlib's model files from face_recognition_models; install the "
                          f"faces extra: {EXTRA}")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / MODEL_FILES[kind]
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (expected in the face_recognition_models package); reinstall "
                                f"it: {EXTRA}")
    return path


@functools.lru_cache(maxsize=1)
def dlib_models() -> tuple[Any, Any, Any]:
    """dlib's HOG face detector, 68-point shape predictor and face-recognition network (loaded once, ~2 s)."""
    dlib = _import_dlib()
    return (dlib.get_frontal_face_detector(), dlib.shape_predictor(str(model_file("landmarks"))),
            dlib.face_recognition_model_v1(str(model_file("recognition"))))


def align_face(image: np.ndarray, size: int = 64, source: str = "the image", upsample: int = 1) -> np.ndarray:
    """The largest face of an RGB photo (H, W, 3) uint8, aligned by dlib's 68 landmarks: a (size, size, 3) uint8
    chip framed as dlib frames the network's input. No face found: a :class:`NoFaceError` naming ``source``."""
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"{source} must be an RGB image (H, W, 3); got shape {img.shape}")
    if img.dtype != np.uint8:
        raise ValueError(f"{source} must be uint8 (0-255), as read from a photo; got {img.dtype}")
    dlib = _import_dlib()
    detector, landmarks, _ = dlib_models()
    img = np.ascontiguousarray(img)
    faces = detector(img, upsample)
    if len(faces) == 0:
        raise NoFaceError(f"no face found in {source} (dlib's frontal face detector, upsample={upsample}); expected "
                          "a photo with a visible, roughly frontal face")
    shape = landmarks(img, max(faces, key=lambda r: r.area()))
    return np.asarray(dlib.get_face_chip(img, shape, size=size, padding=CHIP_PADDING))


def read_photo(path: str | Path) -> np.ndarray:
    """An RGB uint8 photo from ``path``; an unreadable file is a ValueError naming it."""
    from skimage import io as skio

    try:
        img = np.asarray(skio.imread(path))
    except Exception as exc:  # truncated/corrupt file, unknown format ...
        raise ValueError(f"cannot read photo {path}: {exc}") from exc
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


def face_crop(path: str | Path, size: int = 64) -> torch.Tensor:
    """The aligned face of the photo at ``path`` as (3, size, size) float in [0, 1] (:func:`align_face`)."""
    return chip_tensor(align_face(read_photo(path), size, source=str(path)))


def chip_tensor(chip: np.ndarray) -> torch.Tensor:
    """A (H, W, 3) uint8 chip as a (3, H, W) float tensor in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(chip)).permute(2, 0, 1).float() / 255.0


@dataclass
class FaceSet:
    """Aligned face crops of a folder grouped by person: ``crops`` (N, 3, S, S) in [0, 1], ``people`` (N,) the
    person's index into ``names``, ``files`` the photo of each crop, ``skipped`` the photos without a face."""

    crops: torch.Tensor
    people: torch.Tensor
    names: list[str]
    files: list[Path]
    skipped: list[Path]


def load_identity_folder(folder: str | Path, size: int = 64) -> FaceSet:
    """Every photo of ``folder/<person>/<photo>`` as an aligned face crop (``size`` px); photos with no face are
    skipped with a :class:`FaceWarning` naming them. A missing folder, one without person folders, or a person with
    no usable photo is an error naming what was expected."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"face folder {root} does not exist (expected <folder>/<person>/<photo>.jpg)")
    people = sorted(p for p in root.iterdir() if p.is_dir())
    if not people:
        raise ValueError(f"face folder {root} holds no person folders (expected <folder>/<person>/<photo>.jpg)")
    crops, index, files, skipped = [], [], [], []
    for k, person in enumerate(people):
        photos = sorted(p for p in person.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        found = 0
        for photo in photos:
            try:
                crops.append(face_crop(photo, size))
            except NoFaceError as exc:
                warnings.warn(f"skipped: {exc}", FaceWarning, stacklevel=2)
                skipped.append(photo)
                continue
            index.append(k)
            files.append(photo)
            found += 1
        if not found:
            raise ValueError(f"person folder {person} has no photo with a face found in it ({len(photos)} photo(s)); "
                             "expected at least one")
    return FaceSet(torch.stack(crops), torch.tensor(index), [p.name for p in people], files, skipped)


class FaceIdentifier(BlackBox):
    """dlib's face-recognition network plus enrolled people: aligned crops (B, 3, H, W) in [0, 1] -> logits (B, K).

    ``logits[b, k] = -||descriptor(x_b) - centroid_k|| / temperature``, the descriptor being dlib's 128-d vector of
    the crop resized to 150x150. Build it with :meth:`enrol` (crops and person labels) or :meth:`from_folder`.

    Args:
        centroids: (K, 128) mean descriptor of each enrolled person.
        names: the K people's names.
        temperature: distance scale of the logits (see the module docstring).
        batch_size: crops per call of the network.
    """

    def __init__(self, centroids: torch.Tensor, names: Sequence[str], temperature: float = 0.1,
                 batch_size: int = 32) -> None:
        c = torch.as_tensor(centroids).float()
        if c.dim() != 2 or c.shape[1] != DESCRIPTOR_DIM or c.shape[0] < 2 or c.shape[0] != len(names):
            raise ValueError(f"centroids must be (K, {DESCRIPTOR_DIM}) with K = len(names) >= 2; got "
                             f"{tuple(c.shape)} for {len(names)} name(s)")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive; got {temperature!r}")
        super().__init__(self._scores, len(names), batch_size=batch_size, name="FaceIdentifier (dlib)")
        self.centroids, self.names, self.temperature = c, list(names), float(temperature)

    @classmethod
    def enrol(cls, crops: torch.Tensor, people: Sequence[int] | torch.Tensor, names: Sequence[str] | None = None,
              **kwargs: Any) -> FaceIdentifier:
        """Enrol aligned crops (N, 3, H, W) in [0, 1] of the people ``people`` (N person indices 0..K-1)."""
        labels = torch.as_tensor(people).long().flatten()
        if labels.numel() != len(crops):
            raise ValueError(f"people must give one person index per crop ({len(crops)}); got {labels.numel()}")
        k = int(labels.max()) + 1 if labels.numel() else 0
        names = [f"person {i}" for i in range(k)] if names is None else list(names)
        missing = sorted(set(range(len(names))) - set(labels.tolist()))
        if missing or k > len(names):
            raise ValueError(f"every enrolled person needs at least one crop and an index < {len(names)}; people "
                             f"without a crop: {[names[i] for i in missing]}")
        desc = face_descriptors(crops)
        centroids = torch.stack([desc[labels == i].mean(0) for i in range(len(names))])
        return cls(centroids, names, **kwargs)

    @classmethod
    def from_folder(cls, folder: str | Path, size: int = 64, **kwargs: Any) -> FaceIdentifier:
        """Enrol every person of ``folder/<person>/<photo>`` (:func:`load_identity_folder`, crops of ``size`` px)."""
        faces = load_identity_folder(folder, size)
        return cls.enrol(faces.crops, faces.people, faces.names, **kwargs)

    def _scores(self, x: torch.Tensor) -> torch.Tensor:
        return -torch.cdist(face_descriptors(x), self.centroids) / self.temperature


def face_descriptors(crops: torch.Tensor) -> torch.Tensor:
    """dlib's 128-d descriptors (N, 128) of aligned crops (N, 3, H, W) in [0, 1] (resized to 150x150, clamped)."""
    x = torch.as_tensor(crops).detach().float().cpu()
    if x.dim() != 4 or x.shape[1] != 3 or x.shape[0] == 0:
        raise ValueError(f"face crops must be a non-empty RGB batch (N, 3, H, W) in [0, 1]; got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("face crops contain NaN/Inf values; expected finite values in [0, 1]")
    _, _, network = dlib_models()
    if tuple(x.shape[-2:]) != (CHIP_SIZE, CHIP_SIZE):
        x = F.interpolate(x, size=(CHIP_SIZE, CHIP_SIZE), mode="bilinear", align_corners=False,
                          antialias=x.shape[-1] > CHIP_SIZE)
    chips = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    desc = network.compute_face_descriptor([np.ascontiguousarray(c) for c in chips])
    return torch.tensor(np.asarray([np.asarray(d) for d in desc]), dtype=torch.float32)
