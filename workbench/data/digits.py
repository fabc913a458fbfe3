"""scikit-learn's handwritten digits (real, 8x8, 1797 images) up-sampled to ``size`` x ``size``.

Pixels are scaled from the original 0..16 to [0, 1] and up-sampled with bilinear interpolation (``antialias``
off: up-sampling). The split is fixed: a stratified 80/20 split with ``random_state=0`` (1437 train / 360 test).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

DIGIT_CLASSES: tuple[str, ...] = tuple(str(i) for i in range(10))


@dataclass
class ImageSet:
    """A labelled image set as tensors: ``images`` (N, C, H, W) float in [0, 1], ``labels`` (N,) long."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def loader(self, batch_size: int = 64, shuffle: bool = True, seed: int = 0) -> torch.utils.data.DataLoader:
        ds = torch.utils.data.TensorDataset(self.images, self.labels)
        gen = torch.Generator().manual_seed(seed)
        return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=gen)


def load_digits(size: int = 16, split: str = "train") -> ImageSet:
    """The digits set at ``size`` x ``size`` (1 channel, [0, 1]) for ``split`` in {"train", "test", "all"}."""
    if split not in {"train", "test", "all"}:
        raise ValueError(f"split must be 'train', 'test' or 'all'; got {split!r}")
    if size < 8:
        raise ValueError(f"size must be at least the original 8 pixels; got {size}")
    from sklearn.datasets import load_digits as _sk_load_digits  # imported here: scikit-learn is heavy for kernels
    from sklearn.model_selection import train_test_split  # that only need ImageSet

    raw = _sk_load_digits()
    x = torch.from_numpy(raw.images.astype(np.float32) / 16.0).unsqueeze(1)
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    y = torch.from_numpy(raw.target.astype(np.int64))
    idx = np.arange(len(y))
    train_idx, test_idx = train_test_split(idx, test_size=0.2, random_state=0, stratify=raw.target)
    pick = {"train": np.sort(train_idx), "test": np.sort(test_idx), "all": idx}[split]
    pick_t = torch.from_numpy(pick)
    return ImageSet(x[pick_t].contiguous(), y[pick_t].contiguous(), DIGIT_CLASSES)
