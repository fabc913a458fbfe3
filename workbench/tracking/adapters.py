"""The trackers in the shapes the field's toolkits call, without importing either toolkit.

* :class:`GOT10kTracker` follows the got10k toolkit's ``got10k.trackers.Tracker``: ``name``, ``is_deterministic``,
  ``init(image, box)``, ``update(image) -> box`` and ``track(img_files, box, visualize=False) -> (boxes, times)``,
  so ``ExperimentOTB(...).run(GOT10kTracker(DCFTracker()))`` works where got10k is installed. got10k hands over
  PIL images (RGB) and ``numpy`` boxes ``(x, y, w, h)`` as its annotation files hold them.
* :class:`PyTrackingTracker` follows pytracking's ``BaseTracker``: ``initialize(image, info) -> dict`` with
  ``info["init_bbox"]``, ``track(image, info=None) -> dict`` with ``"target_bbox"``; the outputs also carry this
  package's per-frame telemetry (``"kept_channels"``, ``"stage_seconds"``, ``"confidence"``), which pytracking
  stores or ignores.

Both wrap any tracker of the :class:`~workbench.tracking.base.Tracker` protocol (``initialize(frame, box)`` /
``track(frame) -> box`` / ``telemetry()``, 0-based boxes) and hand its ``telemetry()`` on.
``one_based=True`` converts boxes from/to 1-based annotations (OTB's text files); got10k's OTB loader keeps the
files' values, so results stay in the annotation's convention either way, and the option only decides which pixels
the tracker samples (half a pixel's worth of difference, a whole pixel at most).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from workbench.tracking.base import FrameTelemetry, Tracker, check_tracker, read_telemetry
from workbench.tracking.sequences import read_image


def _image(image: Any) -> np.ndarray:
    """A toolkit's image (PIL image or array, RGB or grey) as an array; the tracker validates it."""
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 4:  # RGBA PIL images: drop alpha
        array = array[:, :, :3]
    return array


class _Adapter:
    def __init__(self, tracker: Tracker, one_based: bool = False, name: str | None = None) -> None:
        self.tracker = check_tracker(tracker)
        self.offset = 1.0 if one_based else 0.0
        self.name = name or tracker.name

    def telemetry(self, frame: Any = None) -> FrameTelemetry:
        """The wrapped tracker's record of the last frame (``frame``, a toolkit image, adds its channel maps)."""
        return read_telemetry(self.tracker, None if frame is None else _image(frame))

    def _start(self, image: Any, box: Any) -> None:
        box = np.asarray(box, dtype=np.float64).reshape(-1).copy()
        if box.size != 4:
            raise ValueError(f"box must be (x, y, w, h), got {box.size} numbers")
        box[:2] -= self.offset
        self.tracker.initialize(_image(image), box)

    def _next(self, image: Any) -> np.ndarray:
        box = np.asarray(self.tracker.track(_image(image)), dtype=np.float64).copy()
        box[:2] += self.offset
        return box


class GOT10kTracker(_Adapter):
    """A tracker in the got10k toolkit's shape (``init`` / ``update`` / ``track``)."""

    is_deterministic = True

    def init(self, image: Any, box: Any) -> None:
        """Start on ``box`` ``(x, y, w, h)`` of ``image`` (PIL image or array)."""
        self._start(image, box)

    def update(self, image: Any) -> np.ndarray:
        """The box ``(x, y, w, h)`` in ``image``."""
        return self._next(image)

    def track(self, img_files: Sequence[str], box: Any, visualize: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """got10k's loop: boxes ``(N, 4)`` (the first is ``box``) and seconds per frame; ``visualize`` is ignored."""
        boxes = np.zeros((len(img_files), 4))
        times = np.zeros(len(img_files))
        boxes[0] = box
        for index, path in enumerate(img_files):
            image = read_image(path)
            start = time.perf_counter()
            if index == 0:
                self.init(image, box)
            else:
                boxes[index] = self.update(image)
            times[index] = time.perf_counter() - start
        return boxes, times


class PyTrackingTracker(_Adapter):
    """A tracker in pytracking's shape (``initialize(image, info) -> dict`` / ``track(image, info) -> dict``)."""

    def initialize(self, image: Any, info: Mapping[str, Any]) -> dict[str, Any]:
        """Start on ``info["init_bbox"]`` ``[x, y, w, h]``; returns the time taken and the telemetry."""
        if "init_bbox" not in info:
            raise ValueError(f"info must hold 'init_bbox' [x, y, w, h], got keys {sorted(info)}")
        start = time.perf_counter()
        self._start(image, info["init_bbox"])
        return {"time": time.perf_counter() - start, **self._telemetry()}

    def track(self, image: Any, info: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``{"target_bbox": [x, y, w, h], "time": seconds, "kept_channels": [...], "stage_seconds": {...}}``."""
        start = time.perf_counter()
        box = self._next(image)
        return {"target_bbox": box.tolist(), "time": time.perf_counter() - start, **self._telemetry()}

    def _telemetry(self) -> dict[str, Any]:
        report = self.telemetry()
        return {"kept_channels": report.kept_channels.tolist(), "stage_seconds": dict(report.stage_seconds),
                "confidence": report.confidence}
