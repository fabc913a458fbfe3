"""A user's own model and data for the dashboards, the tutorials and scripts: load them and check they fit.

The loaders of batch runs (:mod:`workbench.batch.models`, :mod:`workbench.batch.sources`) already read a TorchScript
file or an importable ``module:Class`` plus a state dict, and image files; this module adds the checks a dashboard
needs before it swaps the user's model or image in: the number of classes the view expects, and the image's channels
(a colour image given to a grey model is refused, not silently averaged). Every error names the file and what was
expected, so a view can show it as it is. ``load_image(..., resize=True)`` resizes an image of any size to the
model's; ``load_face`` finds and crops the face of a photo the way the face detectors' training faces were cropped.
Videos (:func:`workbench.data.clips.read_video`, faces found by OpenCV or dlib) and
OTB folders (:func:`workbench.tracking.load_otb`) have their own loaders with the same kind of errors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from workbench.access import current_policy, is_module_class
from workbench.batch.models import EMBEDDED_MODELS, ModelSpec
from workbench.batch.sources import IMAGE_SUFFIXES, Item, load_item

CHANNEL_NAMES = {1: "grey", 3: "colour (RGB)"}


def load_classifier(model: str | Path, input_shape: tuple[int, int, int], n_classes: int | None = None,
                    weights: str | Path | None = None) -> torch.nn.Module:
    """A user's classifier (eval mode, CPU): a TorchScript file, or ``"package.module:Class"`` built with no
    arguments and loaded from the state-dict file ``weights``.

    Checked on a zero batch shaped ``(1, *input_shape)``: it must run and return ``(1, n_classes)`` logits (any
    number of classes when ``n_classes`` is None). ValueError / FileNotFoundError naming the file otherwise. On a
    served page (:mod:`workbench.access`) files must lie under the allowed roots and a class in an allowed package,
    PermissionError otherwise, raised before anything is imported, built or read.
    """
    name = str(model).strip()
    if not name:
        raise ValueError("no model given: type a TorchScript file path or package.module:Class")
    weights = str(weights).strip() if weights not in (None, "") else None
    policy = current_policy()
    if name not in EMBEDDED_MODELS:  # checked before anything is imported, built or read
        if policy.served and is_module_class(name):
            policy.check_module(name)
        elif policy.served:
            name = str(policy.check_path(name, "model"))
        if is_module_class(name) and weights is None and not Path(name).is_file():
            raise ValueError(f"model {name!r}: a class needs its weights (a state-dict file after the class)")
        if weights is not None:
            weights = str(_existing(policy.check_path(weights, "weights"), "weights", (".pt", ".pth")))
    spec = ModelSpec(name, input_shape=tuple(int(v) for v in input_shape), weights=weights)
    classifier, _ = spec.load()
    if n_classes is not None:
        with torch.no_grad():
            classes = int(classifier(torch.zeros(1, *spec.resolved_shape())).shape[1])
        if classes != n_classes:
            raise ValueError(f"model {name!r} gives {classes} classes; this view's images have {n_classes} "
                             f"classes (a classifier of {_shape_text(input_shape)} images into {n_classes} classes "
                             "is expected)")
    return classifier


def load_image(path: str | Path, shape: tuple[int, int, int], resize: bool = False) -> torch.Tensor:
    """The (C, H, W) float image in [0, 1] at ``path`` for a model of input ``shape`` (C, H, W).

    Refused with a ValueError naming the file: an unreadable or non-image file, a colour image for a grey model
    (averaging it would explain an image the user did not give: convert it first), a size other than the model's
    (unless ``resize``: then it is resized, antialiased bilinear, to the model's H x W).
    A grey image for a colour model is repeated to three channels (nothing is lost). On a served page a path
    outside the allowed roots is refused (PermissionError) before it is read (:mod:`workbench.access`).
    """
    path = _existing(current_policy().check_path(path, "image"), "image")
    raw = _read(path, -1)  # cv2.IMREAD_UNCHANGED
    channels = _channels(raw)
    want, height, width = (int(v) for v in shape)
    if channels != want and not (channels == 1 and want == 3):
        raise ValueError(f"{path.name}: a {CHANNEL_NAMES.get(channels, f'{channels}-channel')} image, but the model "
                         f"takes {CHANNEL_NAMES.get(want, f'{want}-channel')} images of {_shape_text(shape)}; "
                         "convert it first")
    if not resize:
        return load_item(Item(str(path)), (want, height, width))
    image = load_item(Item(str(path)), (want, *raw.shape[:2]))
    resized = F.interpolate(image[None], size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return resized[0].clamp(0, 1).contiguous()


def load_face(path: str | Path, channels: int, size: int, aligner: str = "haar") -> torch.Tensor:
    """The largest face of the photo at ``path`` as a face detector's input: (``channels``, ``size``, ``size``)
    float in [0, 1].

    ``aligner="haar"`` (the default): found by OpenCV's Haar cascade and framed like the training faces of the
    shipped models (:func:`workbench.data.face_front.crop_box_face`, the framing of the embedded LFW crops and of
    :func:`~workbench.data.face_sbi.load_face_folder`). ``aligner="dlib"``: found by dlib and aligned on its 68
    landmarks (:mod:`workbench.data.face_front`; Haar with a warning when dlib is not installed).
    ValueError naming the file: unreadable, not an image, no face found.
    """
    import cv2

    from workbench.data.face_front import found_face_crop, resolve_aligner

    if channels not in CHANNEL_NAMES:
        raise ValueError(f"channels must be 1 (grey) or 3 (colour); got {channels}")
    path = _existing(path, "photo")
    aligner = resolve_aligner(aligner, path.name)
    rgb = cv2.cvtColor(_read(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return torch.from_numpy(found_face_crop(rgb, aligner, size, channels, path.name)[0])


def _existing(path: str | Path, what: str, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> Path:
    path = Path(str(path).strip()).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist (expected a {'/'.join(suffixes)} file)")
    return path


def _read(path: Path, flags: int) -> np.ndarray:
    import cv2

    raw = cv2.imread(str(path), flags)
    if raw is None:
        raise ValueError(f"{path.name}: unreadable image (not a decodable {'/'.join(IMAGE_SUFFIXES)} file)")
    return raw


def _channels(raw: np.ndarray) -> int:
    if raw.ndim == 2:
        return 1
    colour = raw[..., :3]
    grey_stored_as_colour = bool((colour == colour[..., :1]).all())
    return 1 if grey_stored_as_colour else 3


def _shape_text(shape: tuple[int, int, int]) -> str:
    channels, height, width = (int(v) for v in shape)
    return f"{width}x{height} pixels, {channels} channel{'s' if channels != 1 else ''}"
