"""The tracker protocol's per-frame record: what the runner reads, refused when missing, and a confidence that falls
when the target disappears (issue 27: a tracker that loses its target says so instead of drifting silently)."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.tracking import (
    ChannelDistillation,
    DCFTracker,
    ECOTracker,
    FrameTelemetry,
    GOT10kTracker,
    OpenCVTracker,
    PyTrackingTracker,
    Sequence,
    Tracker,
    make_sequence,
    run_sequence,
)


class NoRecord:
    """Tracks (a fixed box) but keeps no per-frame record."""

    name = "no record"

    def __init__(self) -> None:
        self.calls = 0

    def initialize(self, frame: np.ndarray, box: np.ndarray) -> None:
        self.calls += 1
        self.box = np.asarray(box, dtype=float)

    def track(self, frame: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.box


class WrongRecord(NoRecord):
    def telemetry(self, frame: np.ndarray | None = None) -> dict:
        return {"kept_channels": []}


class Spy(DCFTracker):
    """A channel-distilled DCF that keeps every record it hands out."""

    def __init__(self) -> None:
        super().__init__(channel_distillation=ChannelDistillation(period=4, stable=0.0))
        self.reports: list[FrameTelemetry] = []

    def telemetry(self, frame: np.ndarray | None = None) -> FrameTelemetry:
        self.reports.append(super().telemetry(frame))
        return self.reports[-1]


@pytest.fixture(scope="module")
def short() -> Sequence:
    return make_sequence("scale", n_frames=10, size=(96, 96), seed=0)


def test_a_tracker_without_the_record_is_refused_before_it_runs(short):
    tracker = NoRecord()
    with pytest.raises(TypeError, match=r"NoRecord is not a tracker: it lacks telemetry.*FrameTelemetry"):
        run_sequence(tracker, short)
    assert tracker.calls == 0  # refused before the first frame
    with pytest.raises(TypeError, match="lacks telemetry"):
        PyTrackingTracker(NoRecord())
    with pytest.raises(TypeError, match="must return a FrameTelemetry, got dict"):
        run_sequence(WrongRecord(), short)


def test_every_tracker_here_satisfies_the_protocol_and_the_adapters_pass_the_record_on(short):
    for tracker in (DCFTracker(), ECOTracker(), OpenCVTracker("KCF")):
        assert isinstance(tracker, Tracker), type(tracker).__name__
    adapter = GOT10kTracker(DCFTracker(channel_distillation=ChannelDistillation()))
    adapter.init(short.frames[0], short.ground_truth[0])
    adapter.update(short.frames[1])
    report, own = adapter.telemetry(), adapter.tracker.telemetry()
    assert report.confidence == own.confidence > 0 and report.kept_channels.tolist() == own.kept_channels.tolist()
    pytracking = PyTrackingTracker(ECOTracker())
    pytracking.initialize(short.frames[0], {"init_bbox": list(short.ground_truth[0])})
    assert pytracking.track(short.frames[1])["confidence"] == pytracking.tracker.telemetry().confidence > 0


def test_the_runner_reports_what_the_tracker_reported(short):
    spy = Spy()
    result = run_sequence(spy, short, record=True)
    reports = spy.reports
    assert len(reports) == len(short) and result.telemetry == reports  # the very records, in order
    np.testing.assert_array_equal(result.channels_used, [len(r.kept_channels) for r in reports])
    np.testing.assert_array_equal(result.correlations, [r.correlations for r in reports])
    assert result.feature_memory_bytes == max(r.feature_bytes for r in reports) > 0
    assert result.stage_seconds == [r.stage_seconds for r in reports]
    np.testing.assert_array_equal(result.confidence[1:], [r.confidence for r in reports[1:]])
    assert np.isnan(result.confidence[0]) and reports[0].confidence is None and reports[0].correlations == 0
    # what the numbers mean: the DCF correlates the channels kept so far at each of its scales; channels were dropped
    assert all(r.correlations == spy.params.scales * len(before.kept_channels)
               for before, r in zip(reports, reports[1:], strict=False))
    assert result.channels_per_frame < spy.features.channels
    plain = run_sequence(Spy(), short)  # not recorded: the same numbers, no records kept
    assert plain.telemetry is None
    np.testing.assert_array_equal(plain.correlations, result.correlations)
    np.testing.assert_allclose(plain.confidence, result.confidence)


def test_opencv_trackers_report_an_empty_record(short):
    result = run_sequence(OpenCVTracker("KCF"), short, record=True)
    assert np.isnan(result.confidence).all() and (result.correlations == 0).all()
    assert result.feature_memory_bytes == 0 and all(r.response is None for r in result.telemetry)


def blanked(seed: int, hidden: range) -> Sequence:
    """A generated sequence whose target is painted over with the frame's median colour on the ``hidden`` frames."""
    seq = make_sequence("scale", n_frames=40, size=(96, 96), seed=seed)
    frames = [f.copy() for f in seq.frames]
    for i in hidden:
        x, y, w, h = seq.ground_truth[i]
        x0, y0 = max(int(x) - 2, 0), max(int(y) - 2, 0)
        frames[i][y0:int(y + h) + 3, x0:int(x + w) + 3] = np.median(frames[i].reshape(-1, 3), axis=0)
    return Sequence(name=f"blanked-{seed}", frames=frames, ground_truth=seq.ground_truth)


@pytest.mark.parametrize(("make", "seed"), [(DCFTracker, 0), (ECOTracker, 1),
                                            (lambda: DCFTracker(channel_distillation=ChannelDistillation()), 2)])
def test_confidence_drops_while_the_target_is_hidden(make, seed):
    result = run_sequence(make(), blanked(seed, range(20, 30)))
    seen, hidden = np.median(result.confidence[10:20]), np.median(result.confidence[21:30])
    assert seen > 20  # a well-tracked target: MOSSE's PSR range
    assert hidden < 0.5 * seen, (seen, hidden)
