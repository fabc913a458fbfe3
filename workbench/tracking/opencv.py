"""OpenCV's trackers (KCF, CSRT, MOSSE from opencv-contrib) behind this package's tracker interface, as anchors."""

from __future__ import annotations

import cv2
import numpy as np

from workbench.tracking.base import BoxLike, FrameTelemetry, check_box, check_frame, to_float_rgb

_FACTORIES = {
    "KCF": ("TrackerKCF_create",),
    "CSRT": ("TrackerCSRT_create",),
    "MOSSE": ("legacy.TrackerMOSSE_create",),
}


def _factory(kind: str):  # noqa: ANN202 - returns an OpenCV factory function
    for path in _FACTORIES[kind]:
        target = cv2
        for part in path.split("."):
            target = getattr(target, part, None)
            if target is None:
                break
        if target is not None:
            return target
    raise RuntimeError(
        f"OpenCV tracker {kind} needs the contrib build: install opencv-contrib-python-headless<5 "
        f"(and no other OpenCV distribution); this cv2 {cv2.__version__} lacks cv2.{_FACTORIES[kind][0]}"
    )


class OpenCVTracker:
    """``OpenCVTracker("KCF" | "CSRT" | "MOSSE")``: an OpenCV tracker with ``initialize``/``track``, x, y, w, h boxes.

    OpenCV works on BGR uint8 images and integer boxes; frames are converted and boxes rounded on the way in. When
    OpenCV reports a failure the last box is kept (what the OTB protocol expects from a tracker that lost the target).
    OpenCV exposes no response map, channels or stage times, so :meth:`telemetry` reports an empty record.
    """

    def __init__(self, kind: str = "CSRT") -> None:
        kind = kind.upper()
        if kind not in _FACTORIES:
            raise ValueError(f"unknown OpenCV tracker {kind!r}; expected one of {sorted(_FACTORIES)}")
        self.kind = kind
        self.name = f"OpenCV-{kind}"
        self._create = _factory(kind)
        self._box: np.ndarray | None = None

    @staticmethod
    def _bgr(frame: np.ndarray) -> np.ndarray:
        frame = check_frame(frame)
        if frame.dtype != np.uint8:
            frame = np.clip(to_float_rgb(frame), 0, 255).astype(np.uint8)
        return cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)

    def initialize(self, frame: np.ndarray, box: BoxLike) -> None:
        """Start tracking ``box`` (x, y, w, h) in ``frame``."""
        image = self._bgr(frame)
        x, y, w, h = check_box(box, image.shape)
        self._tracker = self._create()
        rect = (int(round(x)), int(round(y)), max(int(round(w)), 1), max(int(round(h)), 1))
        self._tracker.init(image, rect)
        self._box = np.array([x, y, w, h], dtype=float)
        self._shape = image.shape

    def track(self, frame: np.ndarray) -> np.ndarray:
        """Box (x, y, w, h) of the target in ``frame``."""
        if self._box is None:
            raise RuntimeError("call initialize(frame, box) before track(frame)")
        image = self._bgr(frame)
        if image.shape != self._shape:
            raise ValueError(f"frame shape {image.shape} differs from the first frame's {self._shape}")
        ok, rect = self._tracker.update(image)
        if ok:
            self._box = np.asarray(rect, dtype=float)
        return self._box.copy()

    def telemetry(self, frame: np.ndarray | None = None) -> FrameTelemetry:
        """The per-frame record of the :class:`~workbench.tracking.base.Tracker` protocol: empty (no response map,
        no channels, no confidence), whatever ``frame``."""
        return FrameTelemetry(None, np.zeros(0), np.zeros(0, dtype=int))
