"""Run a tracker over a sequence, timing the tracker alone (image loading excluded), as OTB's FPS does.

After each frame the runner reads the tracker's :class:`~workbench.tracking.base.FrameTelemetry` (the
:class:`~workbench.tracking.base.Tracker` protocol's ``telemetry()``), outside the timed call so that it never
counts towards the FPS: channels used, correlations, feature bytes, stage times and confidence go into the result;
with ``record=True`` the whole record of each frame is kept (response map, channel weights, kept channels and,
with ``channel_maps=True``, the kept channels' feature maps). The views, the notebook and the benchmark all run
trackers through :func:`run_sequence`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from workbench.tracking.base import STAGES, FrameTelemetry, Tracker, check_tracker, read_telemetry
from workbench.tracking.evaluation import OPEResult, evaluate
from workbench.tracking.sequences import Sequence

#: ``on_frame(index, box, telemetry)``: called after each frame, outside the timed region (telemetry None unless
#: recorded)
FrameCallback = Callable[[int, np.ndarray, "FrameTelemetry | None"], None]


def frames_per_second(times: np.ndarray) -> float:
    """Frames per second over the tracked frames of per-frame ``times`` (the first, the initialisation, excluded)."""
    times = np.asarray(times, dtype=float)
    tracked = times[1:] if len(times) > 1 else times
    return float(len(tracked) / max(tracked.sum(), 1e-12))


@dataclass
class TrackingResult:
    """Boxes ``(N, 4)`` (the first is the initial box), seconds per frame spent in the tracker, and its footprint.

    ``channels_used`` per frame is the number of feature channels the tracker extracted and used, ``correlations``
    the channel correlations it computed (both 0 where the tracker does not say),
    ``feature_memory_bytes`` the largest per-frame feature footprint it reported (extracted maps plus stored model),
    ``ground_truth`` the sequence's boxes (for :attr:`score`) and ``telemetry`` one
    :class:`~workbench.tracking.base.FrameTelemetry` per frame when the run recorded it (else None);
    ``stage_seconds`` per frame what each stage cost (empty dicts for trackers that do not say), see :attr:`profile`;
    ``confidence`` per frame the tracker's confidence (NaN at initialisation and where it reports none), which
    drops when it loses the target; ``quality_fired`` per frame whether channel distillation's quality check fired
    and ``fallback`` whether the tracker left that frame on its fallback channels (all False without a check; the
    channel counts are ``channels_used``).
    """

    tracker: str
    sequence: str
    boxes: np.ndarray
    times: np.ndarray
    channels_used: np.ndarray
    correlations: np.ndarray
    feature_memory_bytes: int
    ground_truth: np.ndarray | None = None
    telemetry: list[FrameTelemetry] | None = field(default=None, repr=False)
    stage_seconds: list[dict[str, float]] = field(default_factory=list, repr=False)
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    quality_fired: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool), repr=False)
    fallback: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool), repr=False)

    @property
    def profile(self) -> dict[str, float]:
        """Mean milliseconds per tracked frame of each stage (:data:`~workbench.tracking.base.STAGES`), ``other``
        (the tracker's time outside them: validation, bookkeeping) and ``total``; empty if the tracker reports no
        stages."""
        tracked = self.stage_seconds[1:] if len(self.stage_seconds) > 1 else self.stage_seconds
        if not any(tracked):
            return {}
        times = self.times[1:] if len(self.times) > 1 else self.times
        out = {stage: 1e3 * float(np.mean([s.get(stage, 0.0) for s in tracked])) for stage in STAGES}
        out["total"] = 1e3 * float(np.mean(times))
        out["other"] = max(out["total"] - sum(out[stage] for stage in STAGES), 0.0)
        return out

    @property
    def fps(self) -> float:
        """Frames per second over the tracked frames (initialisation excluded)."""
        return frames_per_second(self.times)

    @property
    def channels_per_frame(self) -> float:
        """Mean number of channels extracted and used per tracked frame (the first frame's when only one)."""
        used = self.channels_used[1:] if len(self.channels_used) > 1 else self.channels_used
        return float(used.mean())

    def evaluate(self, ground_truth: np.ndarray) -> OPEResult:
        """OTB one-pass evaluation of these boxes."""
        return evaluate(self.boxes, ground_truth)

    @cached_property
    def score(self) -> OPEResult:
        """OTB one-pass evaluation against the sequence's ground truth."""
        if self.ground_truth is None:
            raise ValueError("this result has no ground truth: use evaluate(ground_truth)")
        return self.evaluate(self.ground_truth)

    def _recorded(self) -> list[FrameTelemetry]:
        if self.telemetry is None:
            raise ValueError("this run recorded no telemetry: use run_sequence(..., record=True)")
        return self.telemetry

    @property
    def channel_weights(self) -> np.ndarray:
        """Channel weights per frame ``(N, D)`` (``D = 0`` for trackers without channels)."""
        return np.stack([t.channel_weights for t in self._recorded()])

    @property
    def kept_channels(self) -> list[np.ndarray]:
        """Kept channel indices per frame."""
        return [t.kept_channels for t in self._recorded()]


def run_sequence(tracker: Tracker, sequence: Sequence, on_frame: FrameCallback | None = None,
                 record: bool = False, channel_maps: bool = False) -> TrackingResult:
    """Initialise ``tracker`` on the first frame's ground truth and track every other frame (OTB one-pass).

    ``record`` keeps each frame's telemetry in the result (``channel_maps`` adds the kept channels' feature maps,
    which costs one more feature extraction per frame, and implies ``record``); ``on_frame(index, box, telemetry)``
    is called after each frame (progress bars). Both happen outside the timed region. A ``tracker`` without the
    :class:`~workbench.tracking.base.Tracker` protocol's members (``telemetry()`` included) is refused with a
    TypeError before the first frame.
    """
    record = record or channel_maps
    tracker = check_tracker(tracker)
    n = len(sequence)
    boxes, times, confidence = np.zeros((n, 4)), np.zeros(n), np.full(n, np.nan)
    fired, fallback = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    channels, correlations = np.zeros(n, dtype=int), np.zeros(n, dtype=int)
    telemetry: list[FrameTelemetry] | None = [] if record else None
    stages: list[dict[str, float]] = []
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
        report = read_telemetry(tracker, frame if channel_maps else None)
        channels[index], correlations[index] = len(report.kept_channels), report.correlations
        fired[index], fallback[index] = report.quality_fired, report.fallback
        memory = max(memory, int(report.feature_bytes))
        stages.append(dict(report.stage_seconds))
        if report.confidence is not None:
            confidence[index] = report.confidence
        if telemetry is not None:
            telemetry.append(report)
        if on_frame is not None:
            on_frame(index, boxes[index], report if record else None)
    return TrackingResult(
        tracker=tracker.name, sequence=sequence.name, boxes=boxes, times=times, channels_used=channels,
        correlations=correlations, feature_memory_bytes=memory,
        ground_truth=np.asarray(sequence.ground_truth, dtype=float), telemetry=telemetry, stage_seconds=stages,
        confidence=confidence, quality_fired=fired, fallback=fallback,
    )
