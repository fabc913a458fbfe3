"""Tracker parameter presets (frozen dataclasses, pytracking style) and per-frame telemetry through the runner."""

import dataclasses

import numpy as np
import pytest

from workbench.recipes import recipe_fields
from workbench.tracking import (
    ChannelDistillation,
    DCFCDParams,
    DCFParams,
    DCFTracker,
    ECOCDParams,
    ECOParams,
    ECOTracker,
    OpenCVTracker,
    Sequence,
    frames_per_second,
    make_sequence,
    run_sequence,
)


@pytest.fixture(scope="module")
def short():
    return make_sequence("distractor", n_frames=12, size=(128, 128), seed=5)


def test_presets_hold_the_trackers_historical_defaults():
    """The recipe (key) dicts; the scale filter, None by default, is left out of them (``optional_field``)."""
    assert DCFParams().scale_filter is None and ECOParams().scale_filter is None
    assert recipe_fields(DCFParams()) == {
        "padding": 1.5, "lambda_": 1e-2, "sigma_factor": 0.1, "scales": 3, "scale_step": 1.03, "template_size": 128,
        "learning_rate": 0.025}
    assert recipe_fields(ECOParams()) == {
        "padding": 1.5, "lambda_": 1e-2, "sigma_factor": 0.1, "scales": 5, "scale_step": 1.02, "template_size": 128,
        "compressed_channels": 12, "samples": 10, "learning_rate": 0.03, "update_every": 4, "cg_iterations": 5,
        "init_cg_iterations": 30}
    assert isinstance(DCFCDParams(), DCFParams) and isinstance(ECOCDParams(), ECOParams)
    assert DCFCDParams().distillation == ChannelDistillation()
    with pytest.raises(dataclasses.FrozenInstanceError):
        DCFParams().padding = 2.0  # type: ignore[misc]


@pytest.mark.parametrize(("tracker_class", "params_class"), [(DCFTracker, DCFCDParams), (ECOTracker, ECOCDParams)])
def test_params_and_old_keywords_build_the_same_tracker(short, tracker_class, params_class):
    cd = ChannelDistillation(keep=5)
    by_params = tracker_class(params=params_class(learning_rate=0.05, distillation=cd))
    by_keywords = tracker_class(channel_distillation=cd, learning_rate=0.05)
    assert by_params.params == by_keywords.params and by_params.name == by_keywords.name
    assert by_params.name.endswith("-CD") and by_params.distillation is cd
    a, b = run_sequence(by_params, short), run_sequence(by_keywords, short)
    np.testing.assert_array_equal(a.boxes, b.boxes)


def test_bad_parameters_are_refused_by_the_preset():
    with pytest.raises(ValueError, match="learning_rate"):
        DCFTracker(learning_rate=0.0)
    with pytest.raises(ValueError, match="scales"):
        ECOTracker(params=ECOParams(scales=0))
    with pytest.raises(TypeError, match="unexpected parameters.*'samples'"):
        DCFTracker(samples=3)  # an ECO parameter
    with pytest.raises(TypeError, match="params must be a DCFParams"):
        DCFTracker(params=ECOParams())


def test_recording_is_off_by_default_and_does_not_change_the_boxes(short):
    plain = run_sequence(DCFTracker(channel_distillation=ChannelDistillation()), short)
    seen = []
    recorded = run_sequence(DCFTracker(channel_distillation=ChannelDistillation()), short, channel_maps=True,
                            on_frame=lambda i, box, t: seen.append((i, box.copy(), t)))
    assert plain.telemetry is None
    np.testing.assert_array_equal(plain.boxes, recorded.boxes)
    telemetry = recorded.telemetry
    assert telemetry is not None and len(telemetry) == len(short)
    assert telemetry[0].response is None and telemetry[1].response.ndim == 2
    assert [i for i, _, _ in seen] == list(range(len(short))) and seen[3][2] is telemetry[3]
    np.testing.assert_array_equal(seen[3][1], recorded.boxes[3])
    for t, used in zip(telemetry, recorded.channels_used, strict=True):
        assert len(t.kept_channels) == used == t.channel_maps.shape[2]
        assert set(np.flatnonzero(t.channel_weights)) == set(t.kept_channels)
    assert recorded.channel_weights.shape == (len(short), 40)
    assert recorded.score.success_auc == recorded.evaluate(short.ground_truth).success_auc


def test_trackers_without_telemetry_report_empty_frames(short):
    result = run_sequence(OpenCVTracker("CSRT"), short, record=True)
    assert result.channel_weights.shape == (len(short), 0)
    assert all(t.response is None and t.kept_channels.size == 0 for t in result.telemetry)


def test_frames_per_second_leaves_out_the_initialisation():
    assert frames_per_second(np.array([10.0, 0.5, 0.5])) == pytest.approx(2.0)
    assert frames_per_second(np.array([0.25])) == pytest.approx(4.0)


def test_recorded_channel_maps_of_float_frames_match_the_uint8_ones(short):
    # the old dashboard runner extracted the maps from the raw frame: a 0..1 float sequence gave maps of 1/255-scaled
    # pixels (its "energy" channel peaked at 0.22 instead of 0.94); the tracker's telemetry scales frames as it tracks
    as_float = Sequence(name="float", frames=[f.astype(np.float32) / 255 for f in short.frames],
                        ground_truth=short.ground_truth)
    runs = [run_sequence(DCFTracker(channel_distillation=ChannelDistillation()), seq, channel_maps=True)
            for seq in (short, as_float)]
    for index in (1, 2):
        maps_uint8, maps_float = (r.telemetry[index].channel_maps for r in runs)
        assert maps_uint8.shape == maps_float.shape
        assert np.abs(maps_uint8 - maps_float).max() < 0.05


def test_single_parameter_keywords_still_work_but_are_deprecated():
    with pytest.warns(DeprecationWarning, match=r"params=ECOParams\.full\(\)\.with_\(samples=20\)"):
        tracker = ECOTracker(samples=20)
    assert tracker.params == ECOParams.full().with_(samples=20) == ECOParams(samples=20)
