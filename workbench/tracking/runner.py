"""Run a tracker over a sequence, timing the tracker alone (image loading excluded), as OTB's FPS does."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from workbench.tracking.base import Tracker
from workbench.tracking.evaluation import OPEResult, evaluate
from workbench.tracking.sequences import Sequence


@dataclass
class TrackingResult:
    """Boxes ``(N, 4)`` (the first is the initial box), seconds per frame spent in the tracker, and its footprint.

    ``channels_used`` per frame is the number of feature channels the tracker extracted and used, ``correlations``
    the channel correlations it computed (both 0 where the tracker does not say),
    ``feature_memory_bytes`` the largest per-frame feature footprint it reported (extracted maps plus stored model).
    """

    tracker: str
    sequence: str
    boxes: np.ndarray
    times: np.ndarray
    channels_used: np.ndarray
    correlations: np.ndarray
    feature_memory_bytes: int

    @property
    def fps(self) -> float:
        """Frames per second over the tracked frames (initialisation excluded)."""
        tracked = self.times[1:] if len(self.times) > 1 else self.times
        return float(len(tracked) / max(tracked.sum(), 1e-12))

    def evaluate(self, ground_truth: np.ndarray) -> OPEResult:
        """OTB one-pass evaluation of these boxes."""
        return evaluate(self.boxes, ground_truth)


def run_sequence(tracker: Tracker, sequence: Sequence,
                 on_frame: Callable[[int, np.ndarray], None] | None = None) -> TrackingResult:
    """Initialise ``tracker`` on the first frame's ground truth and track every other frame (OTB one-pass).

    ``on_frame(index, frame)`` is called after each frame, outside the timed region (the views record the tracker's
    response and channels there).
    """
    n = len(sequence)
    boxes = np.zeros((n, 4))
    times = np.zeros(n)
    channels = np.zeros(n, dtype=int)
    correlations = np.zeros(n, dtype=int)
    memory = 0
    for index in range(n):
        frame = sequence.frame(index)  # loading is outside the timed region
        start = time.perf_counter()
        if index == 0:
            tracker.initialize(frame, sequence.ground_truth[0])
            boxes[0] = sequence.ground_truth[0]
        else:
            boxes[index] = tracker.track(frame)
        times[index] = time.perf_counter() - start
        kept = getattr(tracker, "kept_channels", None)
        channels[index] = len(kept) if kept is not None else 0
        correlations[index] = int(getattr(tracker, "correlations", 0)) if index > 0 else 0
        memory = max(memory, int(getattr(tracker, "feature_bytes", 0)))
        if on_frame is not None:
            on_frame(index, frame)
    return TrackingResult(
        tracker=getattr(tracker, "name", type(tracker).__name__),
        sequence=sequence.name,
        boxes=boxes,
        times=times,
        channels_used=channels,
        correlations=correlations,
        feature_memory_bytes=memory,
    )
