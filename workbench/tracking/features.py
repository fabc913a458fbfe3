"""Feature extractors for correlation-filter trackers, able to compute only a subset of their channels.

Channel distillation drops channels; the speed comes from not computing them. Every extractor therefore takes
``extract(patch, channels=indices)`` and computes only those channels where its structure allows it: hand-crafted
channels skip the work of the dropped ones, CNN extractors (``workbench.tracking.cnn``) convolve only the kept
output channels of their last convolution.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence as SequenceABC

import cv2
import numpy as np

ChannelIndex = SequenceABC[int] | np.ndarray


class FeatureExtractor(ABC):
    """Maps an image patch ``(H, W, 3)`` to a feature map ``(H / cell_size, W / cell_size, D)`` float32."""

    #: number of channels D of the full feature map
    channels: int
    #: pixels of the input patch per feature cell (the feature map's stride)
    cell_size: int
    #: one short name per channel, for plots
    channel_names: list[str]
    #: groups of channels that share work, each with its relative cost (computing any channel of a block costs the
    #: block), for cost-aware channel selection; None: no structure (channels cost alike)
    channel_blocks: list[tuple[np.ndarray, float]] | None = None

    def __call__(self, patch: np.ndarray) -> np.ndarray:
        """All channels of ``patch``."""
        return self.extract(patch)

    def extract(self, patch: np.ndarray, channels: ChannelIndex | None = None) -> np.ndarray:
        """Channels ``channels`` (all when None) of ``patch``, in the order given, as ``(h, w, len(channels))``."""
        patch = self._check_patch(patch)
        index = self._check_channels(channels)
        return self._extract(patch, index)

    @abstractmethod
    def _extract(self, patch: np.ndarray, channels: np.ndarray) -> np.ndarray:
        """Compute ``channels`` of a validated float32 0..255 RGB patch."""

    def _check_patch(self, patch: np.ndarray) -> np.ndarray:
        if not isinstance(patch, np.ndarray) or patch.ndim != 3 or patch.shape[2] != 3:
            shape = getattr(patch, "shape", None)
            raise ValueError(f"patch must be an HxWx3 RGB array, got {type(patch).__name__} with shape {shape}")
        if patch.shape[0] < 2 * self.cell_size or patch.shape[1] < 2 * self.cell_size:
            raise ValueError(f"patch must be at least {2 * self.cell_size} pixels each side, got {patch.shape[:2]}")
        if patch.dtype == np.uint8:
            return patch.astype(np.float32)
        if not np.issubdtype(patch.dtype, np.floating) or not np.isfinite(patch).all():
            raise ValueError(f"patch must be uint8 or finite float (0..255), got dtype {patch.dtype}")
        return patch.astype(np.float32, copy=False)

    def _check_channels(self, channels: ChannelIndex | None) -> np.ndarray:
        if channels is None:
            return np.arange(self.channels)
        index = np.asarray(channels, dtype=np.int64).reshape(-1)
        if index.size == 0:
            raise ValueError("channels must select at least one channel")
        if index.min() < 0 or index.max() >= self.channels:
            raise ValueError(f"channel indices must lie in 0..{self.channels - 1}, got {index.min()}..{index.max()}")
        return index


def _soft_histogram(
    weight: np.ndarray, b0: np.ndarray, frac: np.ndarray, bins: int, cell: int, needed: set[int]
) -> dict[int, np.ndarray]:
    """Per-cell histograms with linear voting between bins ``b0`` and ``b0 + 1`` (circular), only bins ``needed``.

    Few bins are computed one by one; many at once with one ``bincount``, whichever is cheaper.
    """
    h, w = weight.shape[0] // cell, weight.shape[1] // cell
    weight = weight[: h * cell, : w * cell]
    b0 = b0[: h * cell, : w * cell]
    frac = frac[: h * cell, : w * cell]
    if len(needed) <= 3:
        out = {}
        for b in needed:
            vote = np.where(b0 == b, weight * (1.0 - frac), 0.0) + np.where((b0 + 1) % bins == b, weight * frac, 0.0)
            out[b] = _pool(vote.astype(np.float32), cell)
        return out
    cell_index = (np.arange(h * cell)[:, None] // cell) * w + (np.arange(w * cell)[None, :] // cell)
    lower = np.bincount((cell_index * bins + b0).ravel(), (weight * (1.0 - frac)).ravel(), minlength=h * w * bins)
    upper = np.bincount((cell_index * bins + (b0 + 1) % bins).ravel(), (weight * frac).ravel(), minlength=h * w * bins)
    hist = (lower + upper).reshape(h, w, bins).astype(np.float32)
    return {b: hist[:, :, b] for b in needed}


def _pool(plane: np.ndarray, cell: int) -> np.ndarray:
    """Sum of each ``cell x cell`` block."""
    h, w = plane.shape[0] // cell, plane.shape[1] // cell
    return plane[: h * cell, : w * cell].reshape(h, cell, w, cell).sum(axis=(1, 3))


class HOGColorFeatures(FeatureExtractor):
    """fHOG-like gradient-orientation histograms plus colour channels, 40 channels at cell size 4.

    Channels: 0-17 contrast-sensitive orientation bins (18 over 360 degrees), 18-26 contrast-insensitive bins
    (9 over 180 degrees), 27 gradient energy, 28-30 CIE Lab of the cell's mean colour, 31-38 a soft 8-bin hue
    histogram weighted by saturation x value, voted at half resolution (a light stand-in for colour names),
    39 saturation. Departures from Felzenszwalb's fHOG, for speed and
    so that each bin is computed on its own: no spatial bilinear voting, and one normaliser per cell (the gradient
    energy of its 3x3 cell neighbourhood) instead of four block normalisers; the 4 fHOG texture channels are replaced
    by the single energy channel.
    """

    _HOG = 28  # channels 0..27 need the gradients

    def __init__(self, cell_size: int = 4, clip: float = 0.2) -> None:
        self.cell_size = int(cell_size)
        self.clip = float(clip)
        self.channels = 40
        self.channel_names = (
            [f"hog{k * 20}" for k in range(18)]
            + [f"hog|{k * 20}|" for k in range(9)]
            + ["energy", "L", "a", "b"]
            + [f"hue{k * 45}" for k in range(8)]
            + ["saturation"]
        )
        # relative costs measured on 128x128 patches: orientations (on top of the gradients) dominate, the gradient
        # energy alone costs about a third of them, colour little
        self.channel_blocks = [
            (np.arange(0, 27), 1.0), (np.array([27]), 0.35), (np.arange(28, 31), 0.05), (np.arange(31, 40), 0.15)
        ]

    def _extract(self, patch: np.ndarray, channels: np.ndarray) -> np.ndarray:
        cell = self.cell_size
        h, w = patch.shape[0] // cell, patch.shape[1] // cell
        patch = patch[: h * cell, : w * cell]
        out = np.empty((h, w, channels.size), np.float32)
        signed_needed = {int(c) for c in channels if c < 18} | {
            int(c) - 18 + k for c in channels if 18 <= c < 27 for k in (0, 9)
        }
        hues_needed = {int(c) - 31 for c in channels if 31 <= c < 39}
        grad = self._gradients(patch, bool(signed_needed)) if (channels < self._HOG).any() else None
        signed = _soft_histogram(*grad[:3], 18, cell, signed_needed) if signed_needed else {}  # type: ignore[index]
        lab = hsv = hues = None
        for position, c in enumerate(channels):
            if c < 18:
                out[:, :, position] = np.minimum(signed[int(c)] / grad[3], self.clip)  # type: ignore[index]
            elif c < 27:
                u = int(c) - 18
                out[:, :, position] = np.minimum((signed[u] + signed[u + 9]) / grad[3], self.clip)  # type: ignore[index]
            elif c == 27:
                out[:, :, position] = grad[4]  # type: ignore[index]
            elif c < 31:
                if lab is None:  # Lab of each cell's mean colour: one conversion per cell, not per pixel
                    mean_rgb = cv2.resize(patch, (w, h), interpolation=cv2.INTER_AREA) / 255.0
                    lab = cv2.cvtColor(mean_rgb, cv2.COLOR_RGB2Lab)
                out[:, :, position] = lab[:, :, 0] / 100.0 - 0.5 if c == 28 else lab[:, :, c - 28] / 128.0
            else:
                if hsv is None:  # hue votes at half resolution: a quarter of the conversions
                    sub = max(cell // 2, 1)
                    small = cv2.resize(patch, (w * sub, h * sub), interpolation=cv2.INTER_AREA) / 255.0
                    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
                if c == 39:
                    out[:, :, position] = cv2.resize(hsv[:, :, 1], (w, h), interpolation=cv2.INTER_AREA) - 0.3
                    continue
                if hues is None:
                    hue = hsv[:, :, 0] / 45.0
                    b0 = np.floor(hue).astype(np.int32) % 8
                    votes = hsv[:, :, 1] * hsv[:, :, 2]
                    hues = _soft_histogram(votes, b0, hue - np.floor(hue), 8, sub, hues_needed)
                out[:, :, position] = hues[int(c) - 31] / sub**2
        return out

    def _gradients(self, patch: np.ndarray, orientations: bool) -> tuple[np.ndarray | None, ...]:
        """Per pixel: magnitude, lower orientation bin and its interpolation weight (only if ``orientations``);
        per cell: normaliser and energy."""
        dx = cv2.Sobel(patch, cv2.CV_32F, 1, 0, ksize=1)
        dy = cv2.Sobel(patch, cv2.CV_32F, 0, 1, ksize=1)
        mag2 = dx * dx + dy * dy
        # per pixel, the colour channel with the strongest gradient, as fHOG
        use1 = mag2[:, :, 1] > mag2[:, :, 0]
        best = np.where(use1, mag2[:, :, 1], mag2[:, :, 0])
        use2 = mag2[:, :, 2] > best
        strongest = np.where(use2, mag2[:, :, 2], best)
        cell_area = float(self.cell_size**2)
        energy = _pool(strongest, self.cell_size)
        neighbourhood = cv2.boxFilter(energy, -1, (3, 3), normalize=True, borderType=cv2.BORDER_REFLECT)
        # scaled so that a uniform single orientation gives 0.5, as fHOG's 2x2-block normaliser does
        norm = np.sqrt(4.0 * cell_area * neighbourhood + 4.0 * cell_area**2).astype(np.float32)
        texture = (np.sqrt(cell_area * energy) / norm).astype(np.float32)
        if not orientations:  # the energy channel alone needs no orientation
            return None, None, None, norm, texture
        gx = np.where(use2, dx[:, :, 2], np.where(use1, dx[:, :, 1], dx[:, :, 0]))
        gy = np.where(use2, dy[:, :, 2], np.where(use1, dy[:, :, 1], dy[:, :, 0]))
        mag, angle = cv2.cartToPolar(np.ascontiguousarray(gx), np.ascontiguousarray(gy))
        position = angle * (18.0 / (2.0 * np.pi))
        b0 = np.floor(position).astype(np.int32) % 18
        frac = position - np.floor(position)
        return mag, b0, frac, norm, texture
