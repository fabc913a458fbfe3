"""What a batch run explains: the items of an embedded set, an image folder, an ImageFolder tree or an OTB folder.

An item is a small, picklable record (an id, a label, how to load it) so the driver can cut the input into shards
and send only descriptions to the workers; pixels are read by the worker that explains them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: embedded sets by name -> (loader, split); their items are addressed as ``name/split/index``
EMBEDDED = ("digits", "patches")


@dataclass(frozen=True)
class Item:
    """One image to explain: ``path`` (a file, or ``digits/test/00012`` for an embedded set) and its class label
    (-1 when the source has none)."""

    path: str
    label: int = -1


def list_items(source: str | Path, limit: int | None = None) -> tuple[list[Item], list[str]]:
    """The items of ``source`` and its class names (empty when the source has none).

    ``source``: ``"digits"`` or ``"patches"`` (their test split), an OTB sequence folder (``img/`` +
    ``groundtruth_rect.txt``), an ImageFolder tree (one sub-folder of images per class) or a flat image folder.
    """
    name = str(source)
    if name in EMBEDDED:
        labels, classes = _embedded(name)
        items = [Item(f"{name}/test/{i:05d}", int(y)) for i, y in enumerate(labels.tolist())]
    else:
        items, classes = _folder_items(Path(source))
    if not items:
        raise ValueError(f"{source}: no images found (expected {', '.join(EMBEDDED)}, an image folder, an "
                         f"ImageFolder tree or an OTB folder with img/; image types {', '.join(IMAGE_SUFFIXES)})")
    return (items[:limit] if limit is not None else items), classes


def _embedded(name: str) -> tuple[torch.Tensor, list[str]]:
    data = embedded_set(name)
    return data.labels, list(getattr(data, "classes", None) or [str(c) for c in range(int(data.labels.max()) + 1)])


def embedded_set(name: str):
    """The test split of an embedded set (cached per process: a worker loads it once)."""
    if name not in _EMBEDDED_CACHE:
        if name == "digits":
            from workbench.data import load_digits

            _EMBEDDED_CACHE[name] = load_digits(16, "test")
        elif name == "patches":
            from workbench.data.patches import load_patches

            _EMBEDDED_CACHE[name] = load_patches(32, "test")
        else:
            raise ValueError(f"unknown embedded set {name!r}; valid: {', '.join(EMBEDDED)}")
    return _EMBEDDED_CACHE[name]


_EMBEDDED_CACHE: dict[str, object] = {}


def _folder_items(root: Path) -> tuple[list[Item], list[str]]:
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder (expected an image folder, an ImageFolder tree, an OTB "
                                f"sequence folder or one of {', '.join(EMBEDDED)})")
    if (root / "img").is_dir():  # OTB layout: frames in img/
        return [Item(str(p)) for p in _images(root / "img")], []
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and _images(d))
    if classes:
        return [Item(str(p), k) for k, c in enumerate(classes) for p in _images(root / c)], classes
    return [Item(str(p)) for p in _images(root)], []


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_item(item: Item, shape: tuple[int, int, int]) -> torch.Tensor:
    """The (C, H, W) float image in [0, 1] of ``item``; a clear error naming the file when it cannot be read or its
    size is not the model's ``shape`` (C, H, W). Grey files are repeated to 3 channels, colour averaged to 1."""
    head = item.path.split("/")[0]
    if head in EMBEDDED and not Path(item.path).exists():
        data = embedded_set(head)
        image = data.images[int(item.path.rsplit("/", 1)[1])]
    else:
        import cv2

        raw = cv2.imread(item.path, cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise ValueError(f"{item.path}: unreadable image (not a decodable {'/'.join(IMAGE_SUFFIXES)} file)")
        raw = raw[..., :3] if raw.ndim == 3 else raw
        scale = 65535.0 if raw.dtype == np.uint16 else 255.0
        arr = raw.astype(np.float32) / scale
        rgb = arr[..., ::-1].copy() if arr.ndim == 3 else arr[..., None]  # OpenCV reads BGR
        image = torch.from_numpy(rgb).permute(2, 0, 1)
    channels, height, width = shape
    if image.shape[0] != channels:
        image = image.mean(0, keepdim=True) if channels == 1 else image.expand(channels, -1, -1)
    if tuple(image.shape[1:]) != (height, width):
        raise ValueError(f"{item.path}: image is {image.shape[2]}x{image.shape[1]} pixels, the model expects "
                         f"{width}x{height}")
    return image.float().contiguous()
