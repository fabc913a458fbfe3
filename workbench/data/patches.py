"""Real-image data for low-resolution recognition, with no downloads, plus loaders for real benchmark folders.

* ``load_patches``: a 10-class patch classification set cut from the photographs and textures scikit-image ships
  (brick, grass, gravel, coffee, coins, chelsea, camera, rocket, moon, astronaut). Each class is one source image;
  gray images are replicated to 3 channels. Training patches come from the **left** part of each photograph
  (columns ``[0, train_fraction * W)``), test patches from the **right** part (starting ``gap`` pixels later), so no
  test patch shares a pixel with a training patch (``patch_layout`` returns the boxes; the tests check it).
* ``downsample`` / ``upsample`` / ``low_resolution_view``: the camera model used to make low-resolution (LR) input:
  the optics' blur (Gaussian, ``sigma = (f - 1) / 2`` for a down-sampling factor ``f``, the anti-aliasing rule of
  ``skimage.transform.resize``) followed by the sensor's pixel integration (area average), and bilinear
  up-sampling back to the high-resolution (HR) size for the teacher-sized networks.
* ``load_lfw_faces``: a face / non-face task from ``skimage.data.lfw_subset()`` (200 gray 25x25 crops: the first
  100 are LFW faces, the last 100 are background crops of the same LFW photographs).
* ``load_cifar`` / ``load_image_folder``: a user's local CIFAR-10/100 copy (torchvision's format,
  ``download=False``) and an ImageFolder tree (``root/<class>/<image>``), with an error naming the folder and the
  expected layout when it is missing or malformed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from skimage import data as skdata

from workbench.data.digits import ImageSet
from workbench.metrics import gaussian_blur

#: class name -> scikit-image ``data`` function that returns its source photograph / texture.
PATCH_SOURCES: dict[str, str] = {
    "brick": "brick", "grass": "grass", "gravel": "gravel", "coffee": "coffee", "coins": "coins",
    "chelsea": "chelsea", "camera": "camera", "rocket": "rocket", "moon": "moon", "astronaut": "astronaut",
}
PATCH_CLASSES: tuple[str, ...] = tuple(PATCH_SOURCES)
FACE_CLASSES: tuple[str, ...] = ("non-face", "face")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".webp")


@dataclass(frozen=True)
class PatchBox:
    """Where a patch was cut: class name, top-left corner and side, in source-image pixels."""

    name: str
    top: int
    left: int
    side: int

    def overlaps(self, other: PatchBox) -> bool:
        """True when both boxes come from the same source image and share at least one pixel."""
        return (self.name == other.name and self.top < other.top + other.side and other.top < self.top + self.side
                and self.left < other.left + other.side and other.left < self.left + self.side)


def _source_image(name: str) -> np.ndarray:
    """The source image of class ``name`` as float32 (H, W, 3) in [0, 1] (gray replicated to 3 channels)."""
    img = getattr(skdata, PATCH_SOURCES[name])()
    img = img.astype(np.float32) / 255.0
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return img[..., :3]


def patch_layout(split: str = "train", patch: int = 64, stride: int = 16, train_fraction: float = 0.6,
                 gap: int = 8, max_per_class: int | None = None, seed: int = 0) -> list[PatchBox]:
    """The patch boxes of ``split`` ('train' or 'test') for every class, in class order.

    Train boxes lie inside columns ``[0, floor(train_fraction * W))``, test boxes inside
    ``[floor(train_fraction * W) + gap, W)``; ``max_per_class`` keeps a seeded random subset of each class's grid.
    """
    if split not in {"train", "test"}:
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    if not 0.1 <= train_fraction <= 0.9:
        raise ValueError(f"train_fraction must lie in [0.1, 0.9]; got {train_fraction}")
    if patch < 8 or stride < 1:
        raise ValueError(f"patch must be >= 8 and stride >= 1; got patch={patch}, stride={stride}")
    rng = np.random.default_rng(seed)
    boxes: list[PatchBox] = []
    for name in PATCH_CLASSES:
        h, w = _source_image(name).shape[:2]
        boxes.extend(grid_boxes(name, (0, h), split_columns(w, split, train_fraction, gap), patch, stride, split,
                                max_per_class, rng))
    return boxes


def split_columns(width: int, split: str, train_fraction: float, gap: int) -> tuple[int, int]:
    """The columns ``[c0, c1)`` of a ``width``-pixel image a split may use: train ``[0, floor(f * W))``, test
    ``[floor(f * W) + gap, W)``."""
    cut = int(train_fraction * width)
    return (0, cut) if split == "train" else (cut + gap, width)


def grid_boxes(name: str, rows: tuple[int, int], cols: tuple[int, int], patch: int, stride: int, split: str,
               max_per_class: int | None, rng: np.random.Generator) -> list[PatchBox]:
    """Every ``patch``-pixel box on a ``stride`` grid inside rows ``[r0, r1)`` x columns ``[c0, c1)`` of source
    ``name`` (a seeded random subset of ``max_per_class`` when there are more); an error when none fits."""
    grid = [PatchBox(name, top, left, patch) for top in range(rows[0], rows[1] - patch + 1, stride)
            for left in range(cols[0], cols[1] - patch + 1, stride)]
    if not grid:
        raise ValueError(f"class {name!r} ({rows[1] - rows[0]}x{cols[1] - cols[0]} pixels) has no {patch}-pixel "
                         f"{split} patch; lower patch or stride")
    if max_per_class is not None and len(grid) > max_per_class:
        grid = [grid[i] for i in np.sort(rng.choice(len(grid), size=max_per_class, replace=False))]
    return grid


def load_patches(size: int = 64, split: str = "train", *, patch: int = 64, stride: int = 16,
                 train_fraction: float = 0.6, gap: int = 8, max_per_class: int | None = None, seed: int = 0,
                 augment: bool = False) -> ImageSet:
    """The patch set at ``size`` x ``size`` (3 channels, [0, 1]) for ``split`` in {'train', 'test'}.

    Patches of ``patch`` source pixels are resized to ``size`` with the anti-aliased ``downsample`` (or bilinear
    up-sampling when ``size > patch``). ``augment=True`` adds the horizontally flipped copy of every patch (light,
    label-preserving augmentation that keeps the set a fixed tensor, so frozen teachers can be run on it once).
    """
    boxes = patch_layout(split, patch, stride, train_fraction, gap, max_per_class, seed)
    sources = {name: _source_image(name) for name in PATCH_CLASSES}
    crops = np.stack([sources[b.name][b.top:b.top + b.side, b.left:b.left + b.side] for b in boxes])
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).contiguous()
    if size < patch:
        x = downsample(x, size)
    elif size > patch:
        x = upsample(x, size)
    y = torch.tensor([PATCH_CLASSES.index(b.name) for b in boxes], dtype=torch.long)
    if augment:
        x, y = torch.cat([x, x.flip(-1)]), torch.cat([y, y])
    return ImageSet(x.contiguous(), y, PATCH_CLASSES)


# ------------------------------------------------------------------------------------------- resolution model
def antialias_sigma(in_size: int, out_size: int) -> float:
    """Gaussian sigma applied before down-sampling by ``f = in/out``: ``(f - 1) / 2`` (skimage's resize rule)."""
    return max(0.0, (in_size / out_size - 1.0) / 2.0)


def downsample(images: torch.Tensor, size: int, sigma: float | None = None) -> torch.Tensor:
    """Camera-like LR image: Gaussian blur (``sigma`` default ``antialias_sigma``) then area resize to ``size``.

    ``images`` is (B, C, H, W) in [0, 1] with square H = W >= ``size``; the output is (B, C, size, size).
    """
    if images.dim() != 4 or images.shape[-1] != images.shape[-2]:
        raise ValueError(f"images must be a square batch (B, C, H, H); got shape {tuple(images.shape)}")
    hr = int(images.shape[-1])
    if not 1 <= size <= hr:
        raise ValueError(f"size must lie in [1, {hr}] (the input side); got {size}")
    if size == hr:
        return images
    sigma = antialias_sigma(hr, size) if sigma is None else sigma
    x = gaussian_blur(images, sigma) if sigma > 0 else images
    return F.interpolate(x, size=(size, size), mode="area").clamp(0, 1)


def upsample(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear up-sampling of a (B, C, h, h) batch to ``size`` x ``size`` (what a teacher-sized net is fed)."""
    if images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)


def low_resolution_view(images: torch.Tensor, lr_size: int, hr_size: int | None = None) -> torch.Tensor:
    """Down-sample HR ``images`` to ``lr_size`` and up-sample back to ``hr_size`` (default: the input size)."""
    return upsample(downsample(images, lr_size), hr_size or int(images.shape[-1]))


# ------------------------------------------------------------------------------------------------- faces
def load_lfw_faces(size: int = 32, split: str = "train", channels: int = 3, test_fraction: float = 0.3) -> ImageSet:
    """Face (label 1) vs non-face (label 0) from ``skimage.data.lfw_subset()``, resized from 25x25 to ``size``.

    The 200 crops are 100 LFW faces followed by 100 background crops of the same photographs; the split is a
    fixed stratified one (every ``1/test_fraction``-th image of each half goes to test).
    """
    if split not in {"train", "test", "all"}:
        raise ValueError(f"split must be 'train', 'test' or 'all'; got {split!r}")
    raw = skdata.lfw_subset().astype(np.float32)
    raw = raw / 255.0 if raw.max() > 1.0 else raw
    x = torch.from_numpy(raw).unsqueeze(1)
    x = upsample(x, size) if size > 25 else downsample(x, size)
    x = x.repeat(1, channels, 1, 1)
    y = torch.cat([torch.ones(100, dtype=torch.long), torch.zeros(100, dtype=torch.long)])
    period = max(2, int(round(1 / test_fraction)))
    is_test = (torch.arange(200) % 100) % period == 0
    pick = {"train": ~is_test, "test": is_test, "all": torch.ones(200, dtype=torch.bool)}[split]
    return ImageSet(x[pick].contiguous(), y[pick].contiguous(), FACE_CLASSES)


# --------------------------------------------------------------------------------------------- real folders
CIFAR_LAYOUT = {
    "cifar10": "<root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta} (the python version of "
               "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, extracted)",
    "cifar100": "<root>/cifar-100-python/{train, test, meta} (the python version of "
                "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz, extracted)",
}


def load_cifar(root: str | Path, split: str = "train", which: str = "cifar10", size: int | None = None,
               limit: int | None = None) -> ImageSet:
    """A local CIFAR-10/100 copy via torchvision (``download=False``) as an ``ImageSet`` (3 channels, [0, 1]).

    ``size`` resizes the 32x32 images (anti-aliased down / bilinear up); ``limit`` keeps the first ``limit`` images.
    """
    if which not in CIFAR_LAYOUT:
        raise ValueError(f"which must be 'cifar10' or 'cifar100'; got {which!r}")
    if split not in {"train", "test"}:
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"CIFAR folder {root} does not exist; expected layout: {CIFAR_LAYOUT[which]}")
    from torchvision import datasets

    cls = datasets.CIFAR10 if which == "cifar10" else datasets.CIFAR100
    try:
        ds = cls(str(root), train=split == "train", download=False)
    except RuntimeError as exc:
        raise FileNotFoundError(f"no readable {which} copy in {root} ({exc}); expected layout: "
                                f"{CIFAR_LAYOUT[which]}") from exc
    arr = np.asarray(ds.data[:limit] if limit else ds.data)
    x = torch.from_numpy(arr.astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()
    y = torch.as_tensor(np.asarray(ds.targets)[: len(arr)], dtype=torch.long)
    if size is not None and size != 32:
        x = downsample(x, size) if size < 32 else upsample(x, size)
    return ImageSet(x, y, tuple(ds.classes))


def load_image_folder(root: str | Path, size: int = 64, limit_per_class: int | None = None) -> ImageSet:
    """An ImageFolder tree ``root/<class>/<image>`` as an ``ImageSet`` resized to ``size`` x ``size`` RGB.

    Each image is center-cropped to a square and resized with the anti-aliased ``downsample`` (bilinear when
    smaller than ``size``). A missing folder, no class folders, an empty class or an unreadable file raises an
    error that names the path and the expected layout.
    """

    layout = "root/<class name>/<image>.png|jpg|... (one sub-folder per class, as torchvision's ImageFolder)"
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist; expected layout {layout}")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise ValueError(f"image folder {root} has no class sub-folders; expected layout {layout}")
    images, labels = [], []
    for label, folder in enumerate(class_dirs):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit_per_class]
        if not files:
            raise ValueError(f"class folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); "
                             f"expected layout {layout}")
        for path in files:
            images.append(read_square_image(path, size))
            labels.append(label)
    return ImageSet(torch.stack(images), torch.tensor(labels, dtype=torch.long), tuple(p.name for p in class_dirs))


def read_square_image(path: Path, size: int, what: str = "image") -> torch.Tensor:
    """The image file ``path`` as a (3, size, size) tensor in [0, 1] (centre square crop, anti-aliased resize); an
    unreadable file raises an error naming it (``what`` says what it was meant to be)."""
    from skimage import io as skio

    try:
        img = np.asarray(skio.imread(path))
    except Exception as exc:  # truncated/corrupt file, unknown format ...
        raise ValueError(f"cannot read {what} {path}: {exc}") from exc
    return _to_square_tensor(img, size, path)


def _to_square_tensor(img: np.ndarray, size: int, path: Path) -> torch.Tensor:
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise ValueError(f"image {path} has shape {img.shape}; expected (H, W), (H, W, 3) or (H, W, 4)")
    img = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[..., :3]
    scale = 255.0 if img.dtype == np.uint8 else (65535.0 if img.dtype == np.uint16 else 1.0)
    x = torch.from_numpy(img.astype(np.float32) / scale).permute(2, 0, 1)
    h, w = x.shape[1:]
    side = min(h, w)
    x = x[:, (h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side][None]
    x = downsample(x, size) if side > size else upsample(x, size)
    return x[0].clamp(0, 1)
