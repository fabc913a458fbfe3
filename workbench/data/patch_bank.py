"""Harder low-resolution data: the *patch bank* (every photograph and texture scikit-image and scikit-learn ship,
cut into bands) and identity-disjoint low-resolution faces from a user's ``datasets/`` folder.

* ``load_patch_bank``: one class per (source image, horizontal band). The sources are every image scikit-image
  ships in its wheel (no ``pooch`` download: astronaut, brick, camera, cell, chelsea, clock, coffee, coins, colour
  wheel, grass, gravel, Hubble deep field, immunohistochemistry, logo, moon, page, Shepp-Logan phantom, retina,
  rocket, text) plus scikit-learn's two sample photographs (china, flower): 22 sources, 44 classes with the default
  two bands. Neighbouring bands of one photograph share texture and colour, so many classes differ only in detail
  that low resolution removes: room for a high-resolution teacher to teach. As in ``load_patches`` (the 10-class
  colour patch set, whose sources are all here), training patches come from the **left** part of each band and
  test patches from the **right** part, ``gap`` pixels later: no test patch shares a pixel with a training patch.
* ``load_face_identities``: a folder with one sub-folder per identity (``root/<identity>/<image>``), split by
  identity (no person in both splits), the setting of low-resolution face recognition; errors name the folder and
  what was missing.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import torch

from workbench.data.digits import ImageSet
from workbench.data.patches import (
    IMAGE_SUFFIXES,
    PatchBox,
    downsample,
    grid_boxes,
    read_square_image,
    split_columns,
    upsample,
)

#: scikit-image ``data`` functions whose image ships inside the package (no download)
SKIMAGE_SOURCES: tuple[str, ...] = (
    "astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee", "coins", "colorwheel", "grass", "gravel",
    "hubble_deep_field", "immunohistochemistry", "logo", "moon", "page", "shepp_logan_phantom", "retina", "rocket",
    "text",
)
#: scikit-learn's sample photographs (``sklearn.datasets.load_sample_image``)
SKLEARN_SOURCES: tuple[str, ...] = ("china", "flower")
BANK_SOURCES: tuple[str, ...] = SKIMAGE_SOURCES + SKLEARN_SOURCES
BAND_NAMES = {1: ("",), 2: ("top", "bottom"), 3: ("top", "middle", "bottom")}


@functools.cache
def bank_source(name: str) -> np.ndarray:
    """Source image ``name`` as float32 (H, W, 3) in [0, 1] (gray replicated, alpha dropped); cached, read-only."""
    if name in SKLEARN_SOURCES:
        img = _sklearn_sample_image(name)
    elif name in SKIMAGE_SOURCES:
        img = skimage_image(name)
    else:
        raise ValueError(f"unknown patch-bank source {name!r}; choose from {BANK_SOURCES}")
    img = img.astype(np.float32) / (255.0 if img.dtype == np.uint8 else max(float(img.max()), 1e-6))
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = np.ascontiguousarray(img[..., :3])
    img.setflags(write=False)
    return img


#: the file of a scikit-image ``data`` function where it is not ``<name>.png``
_SKIMAGE_FILES = {"shepp_logan_phantom": "phantom.png",
                  "clock": "clock_motion.png", "colorwheel": "color.png", "immunohistochemistry": "ihc.png",
                  "hubble_deep_field": "hubble_deep_field.jpg", "retina": "retina.jpg", "rocket": "rocket.jpg"}


def skimage_image(name: str) -> np.ndarray:
    """``skimage.data.<name>()`` read straight from the file scikit-image ships, with OpenCV (the same pixels, a
    test checks every source), without importing ``skimage.io``: that import took ~0.5 s of a dashboard's first
    render (issue 29). The phantom is converted to grey as ``skimage.color.rgb2gray`` does (float64 in [0, 1]).
    Falls back to ``skimage.data`` where the file is not at its usual place."""
    import cv2
    from skimage import data as skdata

    path = Path(skdata.__file__).parent / _SKIMAGE_FILES.get(name, f"{name}.png")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if path.is_file() else None
    if img is None:
        return getattr(skdata, name)()
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA if img.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    if name == "shepp_logan_phantom":  # skimage.data loads it with as_gray=True
        img = (img[..., :3].astype(np.float64) / 255.0) @ np.array([0.2125, 0.7154, 0.0721])
    return img


def _sklearn_sample_image(name: str) -> np.ndarray:
    """scikit-learn's sample photograph ``name`` read straight from its wheel, as ``load_sample_image`` reads it
    (PIL, the same pixels), without importing scikit-learn: that import alone takes 1-2.5 s of a dashboard's first
    render (issue 29). Falls back to ``load_sample_image`` where the file is not at its usual place."""
    spec = importlib.util.find_spec("sklearn")
    path = Path(spec.origin).parent / "datasets" / "images" / f"{name}.jpg" if spec and spec.origin else None
    if path is None or not path.is_file():
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    from PIL import Image  # scikit-image's own image reader: installed with it

    with Image.open(path) as image:
        return np.asarray(image)


def bank_classes(bands: int = 2) -> tuple[str, ...]:
    """Class names of the bank with ``bands`` bands per source ("brick/top", ...; just "brick" for one band)."""
    if bands not in BAND_NAMES:
        raise ValueError(f"bands must be one of {sorted(BAND_NAMES)}; got {bands}")
    return tuple(f"{s}/{b}" if b else s for s in BANK_SOURCES for b in BAND_NAMES[bands])


def bank_layout(split: str = "train", patch: int = 64, stride: int = 16, bands: int = 2, train_fraction: float = 0.6,
                gap: int = 8, max_per_class: int | None = None, seed: int = 0) -> list[PatchBox]:
    """The patch boxes of ``split`` for every class of the bank, in class order (``PatchBox.name`` is the class).

    Band ``k`` of a source of height H covers rows ``[k H / bands, (k + 1) H / bands)``; train boxes lie in columns
    ``[0, floor(train_fraction * W))``, test boxes in ``[floor(train_fraction * W) + gap, W)``.
    """
    if split not in {"train", "test"}:
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    if not 0.1 <= train_fraction <= 0.9:
        raise ValueError(f"train_fraction must lie in [0.1, 0.9]; got {train_fraction}")
    classes = iter(bank_classes(bands))
    rng = np.random.default_rng(seed)
    boxes: list[PatchBox] = []
    for source in BANK_SOURCES:
        h, w = bank_source(source).shape[:2]
        cols = split_columns(w, split, train_fraction, gap)
        for k in range(bands):
            rows = (k * h // bands, (k + 1) * h // bands)
            boxes.extend(grid_boxes(next(classes), rows, cols, patch, stride, split, max_per_class, rng))
    return boxes


def load_patch_bank(size: int = 32, split: str = "train", *, patch: int = 64, stride: int = 16, bands: int = 2,
                    max_per_class: int | None = None, seed: int = 0, augment: bool = False) -> ImageSet:
    """The bank at ``size`` x ``size`` (3 channels, [0, 1]) for ``split``; patches of ``patch`` source pixels resized
    with the anti-aliased ``downsample``; ``augment=True`` appends the horizontal flip of every patch."""
    classes = bank_classes(bands)
    boxes = bank_layout(split, patch, stride, bands, max_per_class=max_per_class, seed=seed)
    source_of = {c: c.split("/")[0] for c in classes}
    crops = np.stack([bank_source(source_of[b.name])[b.top:b.top + b.side, b.left:b.left + b.side] for b in boxes])
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).contiguous()
    x = downsample(x, size) if size < patch else upsample(x, size)
    index = {c: i for i, c in enumerate(classes)}
    y = torch.tensor([index[b.name] for b in boxes], dtype=torch.long)
    if augment:
        x, y = torch.cat([x, x.flip(-1)]), torch.cat([y, y])
    return ImageSet(x.contiguous(), y, classes)


# -------------------------------------------------------------------------------------------- face identities
FACE_LAYOUT = "root/<identity>/<image>.png|jpg|... (the datasets/ layout: one sub-folder per person)"


def load_face_identities(root: str | Path, size: int = 32, test_fraction: float = 0.3, min_identities: int = 4,
                         min_images: int = 2, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """(train, test) face sets from ``root/<identity>/<image>`` with **disjoint identities**, resized to ``size``
    (the split and its errors: :func:`split_face_identities`); each split's labels index its own ``classes``."""
    files, train_names, test_names = split_face_identities(root, test_fraction, min_identities, min_images, seed)
    return _face_set(files, train_names, size), _face_set(files, test_names, size)


def split_face_identities(root: str | Path, test_fraction: float = 0.3, min_identities: int = 4, min_images: int = 2,
                          seed: int = 0) -> tuple[dict[str, list[Path]], list[str], list[str]]:
    """The image files of each identity of ``root/<identity>/<image>`` and an identity-disjoint (train, test) split
    of their names: a seeded random ``test_fraction`` of the identities (at least 2) is the test split.

    Identities with fewer than ``min_images`` images are an error naming their folders (a person seen once cannot
    be re-identified); so is a folder with fewer than ``min_identities`` identities.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"face folder {root} does not exist; expected layout {FACE_LAYOUT}")
    people = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(people) < min_identities:
        raise ValueError(f"face folder {root} has {len(people)} identity sub-folder(s); at least {min_identities} "
                         f"are needed for an identity-disjoint split; expected layout {FACE_LAYOUT}")
    files = {p.name: sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES) for p in people}
    few = [f"{root / name} ({len(f)})" for name, f in files.items() if len(f) < min_images]
    if few:
        raise ValueError(f"in face folder {root}, identities with fewer than {min_images} images: {', '.join(few)}; "
                         f"expected layout {FACE_LAYOUT}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1); got {test_fraction}")
    names = list(files)
    order = np.random.default_rng(seed).permutation(len(names))
    n_test = min(len(names) - 2, max(2, round(test_fraction * len(names))))
    test_names = sorted(names[i] for i in order[:n_test])
    return files, [n for n in names if n not in test_names], test_names


def face_folder_digest(root: str | Path) -> str:
    """A short hash of the image files under ``root/<identity>/`` (relative names and sizes): part of the cache key
    of models trained on the folder, so new, removed or replaced images retrain them. "" for a missing folder (the
    loader reports it)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        return ""
    files = sorted(f for f in root.glob("*/*")
                   if f.suffix.lower() in IMAGE_SUFFIXES and not f.parent.name.startswith("."))
    listing = "\n".join(f"{f.relative_to(root).as_posix()}\t{f.stat().st_size}" for f in files)
    return hashlib.sha256(listing.encode()).hexdigest()[:12]


def _face_set(files: dict[str, list[Path]], names: list[str], size: int) -> ImageSet:
    images = [read_square_image(path, size, "face image") for name in names for path in files[name]]
    labels = [label for label, name in enumerate(names) for _ in files[name]]
    return ImageSet(torch.stack(images), torch.tensor(labels, dtype=torch.long), tuple(names))
