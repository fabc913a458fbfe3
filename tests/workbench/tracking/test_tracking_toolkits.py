"""Toolkit adapters (got10k, pytracking), the evaluation against got10k's conventions, the per-stage profile, the
bounded channel scoring, and bad sequences failing before tracking starts."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from workbench.tracking import (
    STAGES,
    ChannelDistillation,
    DCFTracker,
    GOT10kTracker,
    PyTrackingTracker,
    Sequence,
    evaluate,
    load_otb,
    make_sequence,
    run_sequence,
)
from workbench.tracking.distill import select_channels


def got10k_reference(boxes: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """got10k's ExperimentOTB scores, written from its formulas (utils/metrics.py rect_iou and center_error,
    experiments/otb.py _calc_curves): IoU with an eps in the union, centres at x + (w - 1) / 2, success = IoU
    strictly greater than each of linspace(0, 1, 21), precision = centre error <= each of 0..50 px, score at 20."""
    left = np.maximum(boxes[:, 0], truth[:, 0])
    top = np.maximum(boxes[:, 1], truth[:, 1])
    right = np.minimum(boxes[:, 0] + boxes[:, 2], truth[:, 0] + truth[:, 2])
    bottom = np.minimum(boxes[:, 1] + boxes[:, 3], truth[:, 1] + truth[:, 3])
    inter = np.maximum(right - left, 0) * np.maximum(bottom - top, 0)
    union = np.prod(boxes[:, 2:], axis=1) + np.prod(truth[:, 2:], axis=1) - inter
    ious = np.clip(inter / (union + np.finfo(float).eps), 0.0, 1.0)
    centers1 = boxes[:, :2] + (boxes[:, 2:] - 1) / 2
    centers2 = truth[:, :2] + (truth[:, 2:] - 1) / 2
    errors = np.sqrt(np.sum((centers1 - centers2) ** 2, axis=-1))
    success = np.mean(np.greater(ious[:, None], np.linspace(0, 1, 21)[None, :]), axis=0)
    precision = np.mean(np.less_equal(errors[:, None], np.arange(0, 51)[None, :]), axis=0)
    return float(np.mean(success)), float(precision[20])


def test_ope_scores_match_got10k_conventions_on_the_same_boxes():
    rng = np.random.default_rng(0)
    truth = np.column_stack([rng.uniform(0, 200, 300), rng.uniform(0, 200, 300), rng.uniform(10, 80, (300, 2))])
    boxes = truth + rng.normal(0, 12, truth.shape)
    boxes[:, 2:] = np.abs(boxes[:, 2:]) + 1
    # edge cases: identical boxes, no overlap, IoU exactly 0.5, centre error exactly 20 px
    boxes[0] = truth[0]
    boxes[1] = truth[1] + [500, 0, 0, 0]
    truth[2], boxes[2] = [0, 0, 20, 10], [0, 0, 10, 10]
    truth[3], boxes[3] = [0, 0, 10, 10], [12, 16, 10, 10]
    auc, p20 = got10k_reference(boxes, truth)
    ours = evaluate(boxes, truth)
    assert ours.success_auc == pytest.approx(auc, abs=1e-12)
    assert ours.precision_at_20 == pytest.approx(p20, abs=1e-12)
    assert ours.errors[3] == 20.0 and ours.overlaps[2] == 0.5


def test_got10k_adapter_runs_the_toolkit_loop_on_image_files(tmp_path):
    seq = make_sequence("scale", n_frames=8, size=(96, 96), seed=2)
    files = []
    for i, frame in enumerate(seq.frames):
        files.append(str(tmp_path / f"{i:04d}.png"))
        cv2.imwrite(files[-1], cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    adapter = GOT10kTracker(DCFTracker())
    boxes, times = adapter.track(files, seq.ground_truth[0])
    direct = run_sequence(DCFTracker(), seq)
    assert adapter.name == "DCF" and adapter.is_deterministic
    assert boxes.shape == (8, 4) and times.shape == (8,) and (times > 0).all()
    np.testing.assert_allclose(boxes, direct.boxes, atol=1e-6)  # same tracker, same boxes
    one_based = GOT10kTracker(DCFTracker(), one_based=True)
    one_based.init(seq.frames[0], seq.ground_truth[0] + [1, 1, 0, 0])
    np.testing.assert_allclose(one_based.update(seq.frames[1]) - [1, 1, 0, 0], direct.boxes[1], atol=1e-6)


def test_pytracking_adapter_returns_target_bbox_and_telemetry():
    seq = make_sequence("occlusion", n_frames=6, size=(96, 96), seed=0)
    tracker = PyTrackingTracker(DCFTracker(channel_distillation=ChannelDistillation()))
    out = tracker.initialize(seq.frames[0], {"init_bbox": list(seq.ground_truth[0])})
    assert out["time"] > 0 and len(out["kept_channels"]) >= 1
    step = tracker.track(seq.frames[1])
    assert len(step["target_bbox"]) == 4 and set(step["stage_seconds"]) <= set(STAGES)
    with pytest.raises(ValueError, match="init_bbox"):
        tracker.initialize(seq.frames[0], {"bbox": [1, 2, 3, 4]})
    with pytest.raises(TypeError, match="initialize"):
        GOT10kTracker(object())


def test_profile_splits_each_frame_into_the_stages():
    seq = make_sequence("distractor", n_frames=12, size=(96, 96), seed=3)
    result = run_sequence(DCFTracker(channel_distillation=ChannelDistillation(period=5, stable=0.0)), seq,
                          record=True)
    profile = result.profile
    assert set(STAGES) <= set(profile) and profile["features"] > 0 and profile["fft"] > 0
    assert profile["channel scoring"] > 0  # frames 5 and 10 re-scored
    assert sum(profile[s] for s in STAGES) <= profile["total"] * 1.001
    scored = [i for i, t in enumerate(result.telemetry) if t.stage_seconds.get("channel scoring", 0) > 0]
    assert scored == [0, 5, 10]
    assert run_sequence(DCFTracker(), seq).profile["channel scoring"] == 0


def test_channel_scoring_is_skipped_while_nothing_changes():
    """A static scene: the response peak never drops, so scheduled selections are skipped up to max_skips."""
    seq = make_sequence("scale", n_frames=2, size=(96, 96), seed=0)
    static = Sequence(name="static", frames=[seq.frames[0]] * 41, ground_truth=np.repeat(seq.ground_truth[:1], 41, 0))
    settings = ChannelDistillation(period=5, stable=0.9, max_skips=3)
    result = run_sequence(DCFTracker(channel_distillation=settings), static, record=True)
    scored = [i for i, t in enumerate(result.telemetry) if t.stage_seconds.get("channel scoring", 0) > 0]
    assert scored == [0, 20, 40]  # not every 5 frames: skipped 3 times in a row, then forced


def test_cost_aware_selection_prefers_cheap_blocks_of_equal_fit():
    rng = np.random.default_rng(1)
    label = rng.normal(size=(6, 4)) + 1j * rng.normal(size=(6, 4))
    responses = np.stack([label * (1 + 0.01 * rng.normal(size=label.shape)) for _ in range(4)])[None]  # 4 alike
    weights = np.ones(4)
    settings = ChannelDistillation(keep=1, mu=0.0, cost_tolerance=0.1)
    blocks = [(np.array([0, 1]), 1.0), (np.array([2, 3]), 0.1)]
    chosen = select_channels(responses, label, weights, np.ones(4), settings, blocks=blocks)
    assert np.flatnonzero(chosen).tolist()[0] in (2, 3)
    blind = select_channels(responses, label, weights, np.ones(4), ChannelDistillation(keep=1, mu=0.0))
    assert np.count_nonzero(blind) == 1


def _frames(n: int, size: tuple[int, int] = (64, 64)) -> list[np.ndarray]:
    return [np.full((*size, 3), 100 + i, np.uint8) for i in range(n)]


def test_bad_sequences_fail_before_tracking_with_clear_errors():
    box = np.array([[10.0, 10, 20, 20]] * 3)
    with pytest.raises(ValueError, match="frame 2 is 80x64 but frame 0 is 64x64"):
        Sequence(name="s", frames=_frames(2) + [np.zeros((64, 80, 3), np.uint8)], ground_truth=box)
    with pytest.raises(ValueError, match="line 2.*outside the 64x64 frame"):
        Sequence(name="s", frames=_frames(3), ground_truth=[[10, 10, 20, 20], [100, 100, 5, 5], [10, 10, 20, 20]])
    with pytest.raises(ValueError, match="first frame needs a box"):
        Sequence(name="s", frames=_frames(3), ground_truth=[[np.nan] * 4, [10, 10, 20, 20], [10, 10, 20, 20]])
    with pytest.raises(ValueError, match="2 boxes for 3 frames"):
        Sequence(name="s", frames=_frames(3), ground_truth=box[:2])


def test_nan_rows_are_skipped_by_the_evaluation_and_tracking_goes_on():
    seq = make_sequence("illumination", n_frames=10, size=(96, 96), seed=4)
    truth = seq.ground_truth.copy()
    truth[[3, 7]] = np.nan  # frames without annotation (UAV123's marker)
    gappy = Sequence(name="gappy", frames=seq.frames, ground_truth=truth)
    result = run_sequence(DCFTracker(), gappy)
    assert np.isfinite(result.boxes).all()
    assert np.isnan(result.score.overlaps[[3, 7]]).all() and np.isfinite(result.score.success_auc)


def test_grey_frame_in_colour_sequence_is_tracked_as_colour():
    seq = make_sequence("scale", n_frames=10, size=(96, 96), seed=5)
    frames = list(seq.frames)
    frames[4] = cv2.cvtColor(frames[4], cv2.COLOR_RGB2GRAY)  # a single grey frame (H x W)
    mixed = Sequence(name="mixed", frames=frames, ground_truth=seq.ground_truth)
    result = run_sequence(DCFTracker(channel_distillation=ChannelDistillation()), mixed)
    assert np.isfinite(result.boxes).all() and result.score.success_auc > 0.5


def test_otb_folder_with_frames_of_changing_size_fails_at_load(tmp_path):
    (tmp_path / "img").mkdir()
    for i, frame in enumerate(_frames(2) + [np.zeros((48, 64, 3), np.uint8)]):
        cv2.imwrite(str(tmp_path / "img" / f"{i + 1:04d}.jpg"), frame)
    (tmp_path / "groundtruth_rect.txt").write_text("5,5,10,10\n" * 3)
    with pytest.raises(ValueError, match="frame 2 is 64x48 but frame 0 is 64x64"):
        load_otb(tmp_path)


def test_benchmark_report_holds_the_stage_profile_and_per_kind_targets(load_benchmark):
    import argparse

    bench = load_benchmark("tracking")
    factories = {k: v for k, v in bench.trackers(bench.make_features("hog")).items()
                 if k in ("DCF", "DCF-CD", "DCF-CD-fast", "OpenCV-CSRT")}
    seq = make_sequence("scale", n_frames=5, size=(96, 96), seed=0)
    rows = bench.benchmark_sequence(seq, factories, repeats=1)
    assert rows[0]["ms_features"] > 0 and np.isnan(rows[-1]["ms_features"])  # OpenCV reports no stages
    summary = bench.summarise(rows, list(factories))
    args = argparse.Namespace(smoke=True, repeats=1, features="hog", frames=5, size=96)
    text = bench.report(rows, summary, args, 1.0, (0.0, 0.0, 0.0))
    assert "## Stage profile (ms per tracked frame)" in text
    assert "| DCF-CD | generated |" in text and "channel scoring" in text
    assert "- DCF-CD-fast vs DCF (generated): FPS ratio" in text
