"""Channel distillation's quality check (issue 27 item 2): when the kept channels stop explaining the target, the
distilled response's PSR collapses, the check fires, the tracker falls back to all channels and keeps the target;
the runner records per frame how many channels were used and whether the check fired."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.tracking import (
    ChannelDistillation,
    DCFTracker,
    ECOTracker,
    FeatureExtractor,
    HOGColorFeatures,
    evaluate,
    make_sequence,
    run_sequence,
)
from workbench.tracking.distill import QualityCheck, QualityMonitor

#: the frame from which the channels the tracker kept turn into noise
BREAK = 15


class _Breakable(FeatureExtractor):
    """Twelve HOG/colour channels; the channels in ``broken`` go dark (faint fresh noise at every call): a camera or
    a network whose kept channels stop carrying the target."""

    picks = np.array([0, 2, 4, 6, 9, 11, 13, 15, 27, 28, 29, 30])

    def __init__(self) -> None:
        self.inner = HOGColorFeatures()
        self.channels, self.cell_size = len(self.picks), 4
        self.channel_names = [str(k) for k in range(self.channels)]
        self.broken: set[int] = set()
        self.rng = np.random.default_rng(0)

    def _extract(self, patch: np.ndarray, channels: np.ndarray) -> np.ndarray:
        feats = self.inner._extract(patch, self.picks)
        for c in self.broken:
            feats[:, :, c] = self.rng.normal(0.0, 0.05 * feats.std(), size=feats.shape[:2])
        return feats[:, :, channels]


class _BreakKept:
    """Runs a tracker and, at frame :data:`BREAK`, breaks exactly the channels it keeps."""

    def __init__(self, tracker: DCFTracker | ECOTracker) -> None:
        self.tracker, self.name, self.frames = tracker, tracker.name, 0

    def initialize(self, frame: np.ndarray, box: np.ndarray) -> None:
        self.tracker.initialize(frame, box)

    def track(self, frame: np.ndarray) -> np.ndarray:
        self.frames += 1
        if self.frames == BREAK:
            self.tracker.features.broken = {int(c) for c in self.tracker.kept_channels}
        return self.tracker.track(frame)

    def telemetry(self, frame: np.ndarray | None = None):  # noqa: ANN201 - the wrapped tracker's record
        return self.tracker.telemetry(frame)


@pytest.fixture(scope="module")
def sequence():
    return make_sequence("scale", n_frames=45, size=(128, 128), seed=3)


def run(family, sequence, quality):  # noqa: ANN001, ANN201
    # no scheduled re-selection (period beyond the sequence): only the quality check can react to the break
    cd = ChannelDistillation(keep=4, period=1000, stable=0.0, quality=quality)
    return run_sequence(_BreakKept(family(_Breakable(), channel_distillation=cd)), sequence)


@pytest.mark.parametrize("family", [DCFTracker, ECOTracker])
def test_fallback_fires_when_the_kept_channels_stop_working_and_keeps_the_target(sequence, family):
    checked = run(family, sequence, QualityCheck(drop=0.5, window=10, hold=10))
    blind = run(family, sequence, None)
    fired = np.flatnonzero(checked.quality_fired)
    assert fired.size and fired[0] >= BREAK and fired[0] <= BREAK + 2, fired  # no false alarm before the break
    # the record: all channels while falling back, the distilled few otherwise, and the check's frames
    d = checked.channels_used
    assert (d[checked.fallback] == 12).all() and (d[1:BREAK] <= 4).all()
    assert checked.fallback[fired[0]: fired[0] + 10].all()
    assert not blind.quality_fired.any() and not blind.fallback.any()
    after = slice(BREAK, None)
    truth = sequence.ground_truth[after]
    with_check = evaluate(checked.boxes[after], truth).success_auc
    without = evaluate(blind.boxes[after], truth).success_auc
    assert with_check > 0.6 and with_check > without + 0.2, (with_check, without)


def test_the_monitor_fires_on_a_drop_holds_then_restores():
    monitor = QualityMonitor(QualityCheck(drop=0.5, window=6, hold=3))
    assert [monitor.observe(p) for p in (20, 21, 19, float("nan"), None)] == [""] * 5  # too little history, no NaN
    assert monitor.observe(12.0) == ""  # 12 > 0.5 x median 20
    assert monitor.observe(9.0) == "fire" and monitor.in_fallback
    assert [monitor.observe(30.0) for _ in range(3)] == ["", "", "restore"] and not monitor.in_fallback
    assert not monitor.history  # the fresh selection's PSR level is learnt anew


@pytest.mark.parametrize(("changes", "message"), [({"drop": 1.0}, "drop"), ({"window": 1}, "window"),
                                                  ({"hold": 0}, "hold")])
def test_quality_settings_are_validated(changes, message):
    with pytest.raises(ValueError, match=message):
        QualityCheck(**changes)


def test_the_check_is_off_by_default_and_stays_out_of_the_recipe():
    import dataclasses

    from workbench.recipes import recipe_fields
    from workbench.tracking.params import DCFCDParams

    assert ChannelDistillation().quality is None
    assert "quality" not in recipe_fields(ChannelDistillation())  # earlier recipes keep their keys
    assert dataclasses.asdict(DCFCDParams(distillation=ChannelDistillation(quality=QualityCheck())))[
        "distillation"]["quality"]["drop"] == QualityCheck().drop


def test_the_monitor_says_what_it_compared_on_each_frame():
    monitor = QualityMonitor(QualityCheck(drop=0.5, window=6, hold=2))
    monitor.observe(20.0)
    assert monitor.last_reading.state == "warming up" and monitor.last_reading.threshold is None
    assert monitor.last_reading.needed == 3 and monitor.last_reading.history == 0
    for psr in (22.0, 18.0):
        monitor.observe(psr)
    monitor.observe(float("nan"))
    assert monitor.last_reading.state == "no PSR" and monitor.last_reading.psr is None
    monitor.observe(15.0)
    reading = monitor.last_reading
    assert (reading.state, reading.psr, reading.median, reading.threshold, reading.history) == (
        "passed", 15.0, 20.0, 10.0, 3)
    monitor.observe(8.0)  # median of 20, 22, 18, 15 is 19: threshold 9.5
    reading = monitor.last_reading
    assert (reading.state, reading.threshold, reading.hold_left) == ("fired", 9.5, 2)
    assert [(monitor.observe(30.0), monitor.last_reading.state) for _ in range(2)] == [
        ("", "fallback"), ("restore", "restore")]


def test_each_frames_telemetry_carries_the_checks_reading(sequence):
    checked = run_sequence(_BreakKept(DCFTracker(_Breakable(), channel_distillation=ChannelDistillation(
        keep=4, period=1000, stable=0.0, quality=QualityCheck(drop=0.5, window=10, hold=10)))), sequence,
        record=True)
    readings = [t.quality for t in checked.telemetry]
    assert readings[0] is None and all(r is not None for r in readings[1:])
    fired = [i for i, r in enumerate(readings) if r is not None and r.state == "fired"]
    assert fired == np.flatnonzero(checked.quality_fired).tolist() and fired
    first = readings[fired[0]]
    assert first.psr < first.threshold == pytest.approx(0.5 * first.median)
    # on the fired frame the tracker located the target again with all channels: its confidence is that PSR
    assert checked.confidence[fired[0]] != first.psr
    passed = [r for r in readings if r is not None and r.state == "passed"]
    assert passed and all(r.psr >= r.threshold for r in passed)
    blind = run_sequence(DCFTracker(HOGColorFeatures(), channel_distillation=ChannelDistillation()), sequence,
                         record=True)
    assert all(t.quality is None for t in blind.telemetry)
