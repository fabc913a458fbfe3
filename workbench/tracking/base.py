"""Shared pieces of the trackers: input validation, the tracker protocol, patch sampling, windows and labels.

Boxes everywhere are ``(x, y, w, h)`` in 0-based, continuous pixel coordinates: pixel ``i`` covers ``[i, i + 1)``,
so a box ``(0, 0, W, H)`` is the whole ``W x H`` frame.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import cv2
import numpy as np

if TYPE_CHECKING:  # a type only: the trackers' shared pieces import nothing of channel distillation
    from workbench.tracking.distill import QualityReading

BoxLike = tuple[float, float, float, float] | list[float] | np.ndarray


def check_frame(frame: np.ndarray, name: str = "frame") -> np.ndarray:
    """Validate a frame and return it as an ``H x W x 3`` array (grey frames are repeated to three channels).

    Accepts ``H x W`` or ``H x W x 3`` arrays of dtype uint8 (0..255) or float (0..1 or 0..255, finite).
    """
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"{name} must be a numpy array of shape HxWx3 or HxW, got {type(frame).__name__}")
    if frame.ndim == 2:
        frame = frame[:, :, None].repeat(3, axis=2)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"{name} must have shape HxWx3 (RGB) or HxW (grey), got shape {frame.shape}")
    if frame.shape[0] < 2 or frame.shape[1] < 2:
        raise ValueError(f"{name} must be at least 2x2 pixels, got shape {frame.shape}")
    if frame.dtype == np.uint8:
        return frame
    if not np.issubdtype(frame.dtype, np.floating):
        raise ValueError(f"{name} must be uint8 or float, got dtype {frame.dtype}")
    if not np.isfinite(frame).all():
        raise ValueError(f"{name} contains NaN or Inf values")
    return frame


def check_box(box: BoxLike, frame_shape: tuple[int, ...] | None = None, name: str = "box") -> np.ndarray:
    """Validate an ``(x, y, w, h)`` box: four finite numbers, positive size, inside the frame when its shape is given.

    "Inside" means the box overlaps the frame: a box partly outside is legal (targets leave the frame in OTB),
    a box entirely outside is not.
    """
    arr = np.asarray(box, dtype=np.float64).reshape(-1)
    if arr.size != 4:
        raise ValueError(f"{name} must be (x, y, w, h), got {arr.size} numbers")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite (x, y, w, h), got {arr.tolist()}")
    if arr[2] <= 0 or arr[3] <= 0:
        raise ValueError(f"{name} must have positive width and height, got w={arr[2]:g}, h={arr[3]:g}")
    if frame_shape is not None:
        height, width = frame_shape[:2]
        x, y, w, h = arr
        if x >= width or y >= height or x + w <= 0 or y + h <= 0:
            raise ValueError(
                f"{name} {arr.tolist()} lies outside the {width}x{height} frame "
                "(expected 0-based x, y, w, h overlapping the frame)"
            )
    return arr


def check_frame_sizes(sizes: list[tuple[int, ...]], what: str = "frame") -> None:
    """All ``(height, width)`` in ``sizes`` equal the first; the error names the first frame that differs."""
    first = tuple(sizes[0])
    for index, size in enumerate(sizes):
        if tuple(size) != first:
            raise ValueError(f"{what} {index} is {size[1]}x{size[0]} but frame 0 is {first[1]}x{first[0]}; all frames "
                             "of a sequence must have one size")


def check_ground_truth(boxes: np.ndarray, frame_shape: tuple[int, ...], allow_missing: bool = False,
                       where: str = "ground truth") -> np.ndarray:
    """Validate ``(N, 4)`` ground-truth boxes against the frame size: each row a box overlapping the frame, or (with
    ``allow_missing``) all NaN for a frame without annotation, which the evaluation leaves out. The first row must
    be a box (it initialises the trackers). Errors name the row (1-based, as annotation files count lines)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{where} must be (N, 4) boxes (x, y, w, h), got shape {boxes.shape}")
    if np.isnan(boxes[0]).any():
        raise ValueError(f"{where}: the first frame needs a box to initialise a tracker, got {boxes[0].tolist()}")
    for index, box in enumerate(boxes):
        if allow_missing and np.isnan(box).all():
            continue
        try:
            check_box(box, frame_shape, name=f"box on line {index + 1}")
        except ValueError as error:
            hint = "" if allow_missing else " (rows of NaN, frames without annotation, need allow_missing=True)"
            raise ValueError(f"{where}: {error}{hint}") from None
    return boxes


@dataclass(frozen=True)
class FrameTelemetry:
    """What a tracker reports about the frame it just processed (:meth:`Tracker.telemetry`), read by the runner and
    the views.

    ``response`` the response map it located the target with (centred; None at initialisation or for a tracker
    without one); ``channel_weights`` ``(D,)`` and ``kept_channels`` (the indices of the channels it extracted and
    used; both empty where the tracker has no channels); ``channel_maps`` ``(h, w, k)``, only when asked for: the kept
    channels' features at the tracked box; ``stage_seconds`` what each stage of the tracker (:data:`STAGES`) cost on
    that frame, in seconds (empty for a tracker that does not say); ``correlations`` the channel correlations it
    computed on that frame (0 at initialisation or where it does not say); ``feature_bytes`` the features it extracted
    on that frame plus its stored model, in bytes (0 where it does not say); ``confidence`` how sure it is that the
    target is where it says: for a correlation filter the response's peak-to-sidelobe ratio (:func:`peak_to_sidelobe`,
    MOSSE's, Bolme et al., CVPR 2010), which falls when the target is lost or hidden; None at initialisation or for a
    tracker without a response map (OpenCV's); ``quality_fired`` whether channel distillation's quality check
    (:class:`~workbench.tracking.distill.QualityCheck`) fired on that frame, ``fallback`` whether the tracker leaves
    that frame tracking with its fallback channels (all) instead of the distilled ones (both False without a check);
    ``quality`` what that check read on that frame (:class:`~workbench.tracking.distill.QualityReading`: the PSR it
    compared, the threshold it compared it with, its state; None without a check and at initialisation)."""

    response: np.ndarray | None
    channel_weights: np.ndarray
    kept_channels: np.ndarray
    channel_maps: np.ndarray | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    correlations: int = 0
    feature_bytes: int = 0
    confidence: float | None = None
    quality_fired: bool = False
    fallback: bool = False
    quality: QualityReading | None = None


@runtime_checkable
class Tracker(Protocol):
    """The pytracking/OpenCV interface every tracker here follows, plus the per-frame record the runner reads."""

    name: str

    def initialize(self, frame: np.ndarray, box: BoxLike) -> None:
        """Start tracking the object in ``box`` of ``frame``."""

    def track(self, frame: np.ndarray) -> np.ndarray:
        """Return the object's box ``(x, y, w, h)`` in ``frame``."""

    def telemetry(self, frame: np.ndarray | None = None) -> FrameTelemetry:
        """The record of the last ``initialize``/``track`` call; with ``frame`` (the frame just processed) also the
        kept channels' feature maps, where the tracker has channels."""


#: what :func:`check_tracker` asks of a tracker (the :class:`Tracker` protocol's members)
TRACKER_MEMBERS = ("name", "initialize", "track", "telemetry")


def check_tracker(tracker: object) -> Tracker:
    """``tracker`` if it has every member of the :class:`Tracker` protocol; else a TypeError naming the missing ones."""
    missing = [m for m in TRACKER_MEMBERS
               if not hasattr(tracker, m) or (m != "name" and not callable(getattr(tracker, m)))]
    if missing:
        raise TypeError(
            f"{type(tracker).__name__} is not a tracker: it lacks {', '.join(missing)}; a tracker has name, "
            "initialize(frame, box), track(frame) -> box and telemetry(frame=None) -> FrameTelemetry (the per-frame "
            "record the runner reads; see workbench.tracking.base.Tracker)"
        )
    return tracker  # type: ignore[return-value]


def read_telemetry(tracker: Tracker, frame: np.ndarray | None = None) -> FrameTelemetry:
    """``tracker.telemetry(frame)``; a TypeError unless it is a :class:`FrameTelemetry`."""
    report = tracker.telemetry(frame) if frame is not None else tracker.telemetry()
    if not isinstance(report, FrameTelemetry):
        raise TypeError(f"{type(tracker).__name__}.telemetry() must return a FrameTelemetry, got "
                        f"{type(report).__name__}")
    return report


def peak_to_sidelobe(response: np.ndarray, exclude: int | None = None) -> float:
    """Peak-to-sidelobe ratio of a response map (MOSSE's confidence): the peak minus the sidelobe's mean, over the
    sidelobe's standard deviation, the sidelobe being the map outside a ``(2 exclude + 1)``-cell square around the
    peak (circularly; default ``exclude``: a tenth of the shorter side)."""
    h, w = response.shape
    radius = max(1, round(min(h, w) / 10)) if exclude is None else int(exclude)
    iy, ix = np.unravel_index(int(np.argmax(response)), response.shape)
    mask = np.ones(response.shape, dtype=bool)
    mask[np.ix_(np.arange(iy - radius, iy + radius + 1) % h, np.arange(ix - radius, ix + radius + 1) % w)] = False
    sidelobe = response[mask]
    if sidelobe.size < 2:
        return float("nan")
    return float((response[iy, ix] - sidelobe.mean()) / max(float(sidelobe.std()), 1e-12))


#: the stages a correlation-filter tracker's time is split into (each second counted in exactly one of them):
#: patch sampling and feature extraction, forward and inverse FFTs, the filter solve (closed form or conjugate
#: gradient, with the model update), the scale search (correlating each scale's sample with the filter and finding
#: the peak), and channel scoring (the channel-distillation w-step)
STAGES = ("features", "fft", "solve", "scale search", "channel scoring")


class StageClock:
    """Exclusive wall time per named stage: entering a stage pauses the enclosing one, so nested stages are counted
    once, in the innermost stage, except inside an ``opaque`` stage, which keeps everything nested in it (the
    features and FFTs the channel scoring needs are its cost). ``reset()`` starts a frame."""

    opaque = frozenset({"channel scoring"})

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._stack: list[str] = []
        self._since = 0.0

    def reset(self) -> None:
        self.seconds = {}
        self._stack = []

    def _charge(self, now: float) -> None:
        if self._stack:
            stage = self._stack[-1]
            self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._since
        self._since = now

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        if self._stack and self._stack[-1] in self.opaque:
            yield
            return
        self._charge(time.perf_counter())
        self._stack.append(stage)
        try:
            yield
        finally:
            self._charge(time.perf_counter())
            self._stack.pop()


def sample_patch(
    frame: np.ndarray, center: np.ndarray, size: np.ndarray, out_size: tuple[int, int]
) -> np.ndarray:
    """Crop the ``size = (h, w)`` window centred at ``center = (cy, cx)`` and resize it to ``out_size = (H, W)``.

    Upsampling is one bilinear affine warp (sub-pixel exact, borders replicated); downsampling crops the window
    rounded to whole pixels (at most half a pixel off) and area-averages it, which avoids aliasing.
    """
    out_h, out_w = out_size
    top = center[0] - size[0] / 2.0
    left = center[1] - size[1] / 2.0
    if size[0] > out_h and size[1] > out_w:
        height, width = frame.shape[:2]
        y0, x0 = int(round(top)), int(round(left))
        ys = np.clip(np.arange(y0, y0 + max(int(round(size[0])), 1)), 0, height - 1)
        xs = np.clip(np.arange(x0, x0 + max(int(round(size[1])), 1)), 0, width - 1)
        crop = frame[ys[:, None], xs[None, :]]
        return cv2.resize(crop, (out_w, out_h), interpolation=cv2.INTER_AREA)
    scale_y = out_h / size[0]
    scale_x = out_w / size[1]
    # continuous coordinate c maps to (c - top) * scale; warpAffine works on pixel-centre indices (c - 0.5)
    matrix = np.array(
        [
            [scale_x, 0.0, (0.5 - left) * scale_x - 0.5],
            [0.0, scale_y, (0.5 - top) * scale_y - 0.5],
        ]
    )
    return cv2.warpAffine(frame, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def cosine_window(shape: tuple[int, int]) -> np.ndarray:
    """Hann window of ``shape`` (float32), the usual DCF boundary taper."""
    return np.outer(np.hanning(shape[0] + 2)[1:-1], np.hanning(shape[1] + 2)[1:-1]).astype(np.float32)


def gaussian_label(shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian label of ``shape`` with its peak at index (0, 0) (circularly shifted), as DCFs train against."""
    ys = np.fft.fftfreq(shape[0]) * shape[0]
    xs = np.fft.fftfreq(shape[1]) * shape[1]
    return np.exp(-0.5 * (ys[:, None] ** 2 + xs[None, :] ** 2) / sigma**2).astype(np.float32)


def subpixel_peak(response: np.ndarray) -> tuple[float, float, float]:
    """Peak ``(dy, dx, value)`` of a circular response map, displacement wrapped to ``[-n/2, n/2)``.

    Parabolic interpolation around the integer maximum gives the sub-cell part.
    """
    h, w = response.shape
    iy, ix = np.unravel_index(int(np.argmax(response)), response.shape)
    peak = float(response[iy, ix])

    def refine(left: float, right: float) -> float:
        denom = left - 2 * peak + right
        return 0.0 if denom >= 0 else float(np.clip(0.5 * (left - right) / denom, -0.5, 0.5))

    dy = iy + refine(response[(iy - 1) % h, ix], response[(iy + 1) % h, ix])
    dx = ix + refine(response[iy, (ix - 1) % w], response[iy, (ix + 1) % w])
    dy = dy - h if dy >= h / 2 else dy
    dx = dx - w if dx >= w / 2 else dx
    return float(dy), float(dx), peak


def to_float_rgb(frame: np.ndarray) -> np.ndarray:
    """Frame as float32 in 0..255 (float frames with max <= 1 are taken to be 0..1)."""
    if frame.dtype == np.uint8:
        return frame.astype(np.float32)
    out = frame.astype(np.float32)
    return out * 255.0 if out.size and out.max() <= 1.0 else out
