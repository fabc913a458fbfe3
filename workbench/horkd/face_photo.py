"""A user's face photo read by every HORKD stream: the face found and aligned, the low-resolution views the students
see, and each stream's top-k answers, with a sentence saying what the models were trained on.

Paper: HORKD (Ge et al., AAAI 2020) recognises low-resolution faces with a student taught by an HR teacher through
an assistant. Ours: the face of a photo is found and cropped by the project's face front end
(:mod:`workbench.data.face_front`: dlib's detector and 68 landmarks, Haar as the fallback) at the models' HR size,
or, for models trained on dlib's own aligned chips (``HorkdConfig.faces(..., aligned=True)``), by the same
``workbench.models.face_id.align_face`` their training faces were made with; the students' views come from
``low_res_input``, the function their training views came from. The models answer with what they were trained on
(people of a face folder, or the patch bank's classes), so ``trained_on`` says which: a face read by models that
never saw a face is said to be so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from workbench.horkd.config import HorkdConfig
from workbench.horkd.evaluation import HorkdModels, stream_probabilities
from workbench.horkd.recipe import low_res_input

#: how many training people ``trained_on`` names before it says how many more there are
NAMED_PEOPLE = 6
PHOTO_SHAPES = "(H, W, 3) RGB or (H, W) grey, uint8 or float in [0, 1]"


@dataclass(frozen=True)
class StreamAnswer:
    """One stream's answer: ``stream`` ("teacher", "assistant" or a student method of ``METHODS``), the
    ``resolution`` it was fed, and its ``top`` k (class or identity name, probability), most probable first."""

    stream: str
    resolution: int
    top: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class FacePhotoReading:
    """What :func:`read_face_photo` found: the ``face`` crop (C, hr, hr) in [0, 1] the teacher is fed, the ``views``
    (C, r, r) each student sees at every trained resolution r, which ``finder`` found the face ("dlib" or "haar"),
    ``trained_on`` (one sentence: what the models know), and every stream's ``answers``."""

    source: str
    face: torch.Tensor
    views: dict[int, torch.Tensor]
    finder: str
    trained_on: str
    answers: tuple[StreamAnswer, ...]

    def answer(self, stream: str, resolution: int) -> StreamAnswer:
        """The answer of ``stream`` fed ``resolution`` (KeyError naming what there is when it is not one)."""
        for a in self.answers:
            if (a.stream, a.resolution) == (stream, resolution):
                return a
        raise KeyError(f"no stream {stream!r} at {resolution}; there are "
                       f"{sorted({(a.stream, a.resolution) for a in self.answers})}")


def read_face_photo(models: HorkdModels, photo: str | Path | np.ndarray, k: int = 3,
                    aligner: str = "dlib") -> FacePhotoReading:
    """Every stream's top-``k`` answers for the face of ``photo`` (a path, or an RGB/grey array ``PHOTO_SHAPES``).

    The face is found by ``aligner`` ("dlib", falling back to "haar" with a warning when dlib is not installed;
    see :mod:`workbench.data.face_front`) and cropped to the models' HR size; the teacher reads the crop, each
    assistant its r x r view up-sampled back, each student the r x r view (``stream_probabilities``).
    Errors: a missing file (FileNotFoundError naming it), an unreadable one or an array of another shape
    (ValueError saying what was expected), no face found (``NoFaceError`` naming the file).
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}")
    rgb, source = _photo(photo)
    config = models.config
    face, finder = _face_crop(config, rgb, aligner, source, int(models.test.images.shape[1]))
    classes = config.classes
    answers = []
    for stream, resolution, p in stream_probabilities(models, face):
        if len(p) != len(classes):
            raise ValueError(f"the {stream} stream gives {len(p)} classes; the models' setting has {len(classes)}")
        probs, index = p.topk(min(k, len(classes)))
        answers.append(StreamAnswer(stream, resolution, tuple((classes[int(i)], float(q))
                                                              for q, i in zip(probs, index, strict=True))))
    views = {r: low_res_input(face[None], r)[0] for r in config.resolutions}
    return FacePhotoReading(source, face, views, finder, trained_on(config), tuple(answers))


def trained_on(config: HorkdConfig) -> str:
    """One sentence saying what models of ``config`` were trained on, and so what their answers to a face mean."""
    n, hr = len(config.classes), config.hr_size
    if config.task == "faces":
        names = list(config.classes)
        named = ", ".join(names[:NAMED_PEOPLE]) + (f" and {n - NAMED_PEOPLE} more" if n > NAMED_PEOPLE else "")
        framing = "faces aligned by dlib's landmarks" if config.face_front == "dlib" else "whole photos"
        teacher = "dlib's face-recognition network" if config.teacher == "dlib" else "the project's CNN"
        return (f"Trained on {framing} of {n} people ({named}) from {config.face_root} at {hr}x{hr}, taught by "
                f"{teacher}: each answer is the one of these people the face looks most like, whoever it is.")
    what = (f"{n}-class patch bank, not faces (patches of the photographs and textures scikit-image and "
            f"scikit-learn ship" if config.task == "bank" else f"{n}-class colour patch set, not faces (generated "
            "colour patches")
    return (f"Trained on the {what}, {hr}x{hr}): each answer is the patch class the face looks most like, not who "
            "it is.")


def _photo(photo: str | Path | np.ndarray) -> tuple[np.ndarray, str]:
    """The photo as RGB (H, W, 3) uint8 and the name errors give it."""
    if isinstance(photo, np.ndarray):
        return _rgb_array(photo), f"the photo array of shape {photo.shape}"
    import cv2

    path = Path(str(photo)).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"face photo {path} does not exist (expected an image file: .jpg, .png ...)")
    raw = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if raw is None:
        raise ValueError(f"{path}: unreadable image (not a decodable .jpg/.png/.bmp/.webp file)")
    return np.ascontiguousarray(cv2.cvtColor(raw, cv2.COLOR_BGR2RGB)), str(path)


def _rgb_array(photo: np.ndarray) -> np.ndarray:
    if photo.ndim == 3 and photo.shape[-1] == 1:
        photo = photo[..., 0]
    if not (photo.ndim == 2 or (photo.ndim == 3 and photo.shape[-1] == 3)) or min(photo.shape[:2]) < 1:
        raise ValueError(f"expected a photo array of shape {PHOTO_SHAPES}; got shape {photo.shape}")
    if photo.dtype != np.uint8:
        values = photo.astype(np.float64)
        if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
            raise ValueError(f"a float photo array must be finite and in [0, 1] (expected {PHOTO_SHAPES}); got "
                             f"values in [{np.nanmin(values)}, {np.nanmax(values)}]")
        photo = (values * 255).round().astype(np.uint8)
    return np.ascontiguousarray(np.repeat(photo[..., None], 3, 2) if photo.ndim == 2 else photo)


def _face_crop(config: HorkdConfig, rgb: np.ndarray, aligner: str, source: str,
               channels: int) -> tuple[torch.Tensor, str]:
    """The face as the models' training faces were made: (channels, hr, hr) in [0, 1], and who found it."""
    from workbench.data.face_front import found_face_crop, resolve_aligner

    hr = config.hr_size
    if config.face_front == "dlib":  # dlib's own chips (``data.load_aligned_identities``): the same framing
        from workbench.models.face_id import CHIP_SIZE, align_face, chip_tensor

        if aligner != "dlib":
            raise ValueError(f"these models were trained on dlib-aligned face chips; aligner={aligner!r} would frame "
                             "the face otherwise (use aligner='dlib')")
        chip = chip_tensor(align_face(rgb, CHIP_SIZE, source=source))  # NoFaceError naming source when none
        if hr != CHIP_SIZE:
            chip = F.interpolate(chip[None], size=(hr, hr), mode="bilinear", antialias=True,
                                 align_corners=False)[0].clamp(0, 1)
        return chip, "dlib"
    crop, found = found_face_crop(rgb, resolve_aligner(aligner, source), hr, channels, source)
    return torch.from_numpy(crop), "dlib" if found.finder.startswith("dlib") else "haar"  # haar+dlib-landmarks: Haar
