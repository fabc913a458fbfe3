"""DSST's separate scale filter (``workbench.tracking.scale``, issue 27 item 3): it follows a target that grows and
shrinks by a known factor where the fixed-scale tracker cannot, ``scale_filter=None`` is the tracker as it was (same
boxes, same recipe key), and bad settings are refused naming the field."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from workbench.cache import config_key
from workbench.recipes import recipe_fields
from workbench.tracking import (
    ChannelDistillation,
    DCFParams,
    DCFTracker,
    ECOParams,
    ECOTracker,
    ScaleFilter,
    ScaleFilterParams,
    make_sequence,
    run_sequence,
)
from workbench.tracking.features import HOGColorFeatures


@pytest.fixture(scope="module")
def growing():
    """The generator's scale sequence: the object grows to 1.5x its first size and shrinks to 0.8x (known exactly)."""
    return make_sequence("scale", n_frames=60, size=(160, 160), seed=1)


def _size_error(boxes: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """|log(tracked size / true size)| per frame, sizes as sqrt(area)."""
    return np.abs(0.5 * np.log((boxes[:, 2] * boxes[:, 3]) / (truth[:, 2] * truth[:, 3])))


def test_the_scale_filter_follows_the_true_size_and_the_fixed_scale_tracker_does_not(growing):
    truth = growing.ground_truth
    true_size = np.sqrt(truth[:, 2] * truth[:, 3] / (truth[0, 2] * truth[0, 3]))
    assert true_size.max() > 1.45 and true_size.min() < 0.85  # the factor the generator plants
    fixed = run_sequence(DCFTracker(params=DCFParams(scales=1)), growing).boxes
    assert _size_error(fixed, truth).max() > 0.35  # stays at the first size: 1.5x off at the largest
    for tracker in (DCFTracker(params=DCFParams.dsst()), ECOTracker(params=ECOParams.dsst())):
        boxes = run_sequence(tracker, growing).boxes
        error = _size_error(boxes, truth)
        assert error.max() < 0.12 and error.mean() < 0.04, (tracker.name, error.max(), error.mean())
        assert tracker.scale_response is not None and tracker.scale_response.shape == (33,)


def test_one_zoom_by_a_known_factor_is_read_off_within_a_step():
    """A photograph zoomed by 1.02^k about the target's centre: the filter learnt on the first frame answers 1.02^k
    (within one step) from the current scale 1."""
    frame = np.ascontiguousarray(data.astronaut()[::2, ::2])  # 256 x 256
    center, size = np.array([70.0, 130.0]), np.array([60.0, 50.0])
    params = ScaleFilterParams()
    for k in (-4, 5):
        factor = params.step**k
        zoom = cv2.getRotationMatrix2D((float(center[1]), float(center[0])), 0.0, factor)
        zoomed = cv2.warpAffine(frame, zoom, frame.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        scale_filter = ScaleFilter(params, HOGColorFeatures(), size, frame.shape)
        scale_filter.initialize(frame, center)
        estimate, _ = scale_filter.estimate(zoomed, center, 1.0)
        assert abs(np.log(estimate / factor)) <= np.log(params.step) + 1e-9, (k, estimate, factor)
        # the same frame seen from a wrong current scale 1.02^k: the filter brings it back to 1 (within a step)
        back, _ = scale_filter.estimate(frame, center, factor)
        assert abs(np.log(back)) <= np.log(params.step) + 1e-9, (k, back)


def test_the_scale_filter_composes_with_channel_distillation(growing):
    tracker = DCFTracker(params=DCFParams.dsst(), channel_distillation=ChannelDistillation())
    assert tracker.name == "DCF-CD" and tracker.params.scale_filter == ScaleFilterParams()
    result = run_sequence(tracker, growing)
    assert _size_error(result.boxes, growing.ground_truth).mean() < 0.06
    assert result.channels_per_frame < HOGColorFeatures().channels  # CD still drops translation channels


def test_without_a_scale_filter_the_boxes_and_the_recipe_key_are_the_old_ones():
    """Pinned: the boxes and keys of the trackers before the scale filter existed (commit c28716a)."""
    seq = make_sequence("scale", n_frames=16, size=(128, 128), seed=1)
    old = {
        DCFTracker: [[33.456, 47.832, 31.93, 28.84], [56.719, 74.777, 35.937, 32.46],
                     [51.036, 50.64, 39.27, 35.47], [43.957, 39.856, 33.875, 30.596]],
        ECOTracker: [[33.587, 48.004, 31.62, 28.56], [56.508, 74.295, 37.048, 33.463],
                     [50.191, 49.449, 40.904, 36.945], [44.139, 40.595, 33.555, 30.308]],
    }
    for cls, boxes in old.items():
        default = run_sequence(cls(), seq).boxes
        explicit = run_sequence(cls(params=cls.params_class(scale_filter=None)), seq).boxes
        np.testing.assert_array_equal(default, explicit)
        np.testing.assert_allclose(default[[1, 5, 10, 15]], boxes, atol=2e-3)
    assert {c.__name__: config_key(c()) for c in (DCFParams, ECOParams)} == {
        "DCFParams": "e8fa849671", "ECOParams": "5cafe409af"}
    assert "scale_filter" not in recipe_fields(DCFParams())
    assert recipe_fields(DCFParams.dsst())["scale_filter"]["scales"] == 33
    assert config_key(DCFParams.dsst()) != config_key(DCFParams(scales=1))


@pytest.mark.parametrize(("changes", "field"), [
    ({"step": 1.0}, "step"), ({"step": 0.98}, "step"), ({"scales": 32}, "scales"), ({"scales": 1}, "scales"),
    ({"scales": 3.0}, "scales"), ({"learning_rate": 0.0}, "learning_rate"), ({"sigma_factor": -1.0}, "sigma_factor"),
    ({"lambda_": 0.0}, "lambda_"), ({"max_area": 4.0}, "max_area"), ({"min_scale": 1.5}, "min_scale"),
    ({"max_scale": 0.5}, "max_scale"), ({"step": float("nan")}, "step"),
])
def test_bad_scale_filter_settings_are_refused_naming_the_field(changes, field):
    with pytest.raises(ValueError, match=rf"^{field} must"):
        ScaleFilterParams(**changes)


def test_a_scale_filter_of_the_wrong_type_is_refused():
    with pytest.raises(TypeError, match="scale_filter must be a ScaleFilterParams"):
        DCFParams(scale_filter={"scales": 33})  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="initialize"):
        ScaleFilter(ScaleFilterParams(), HOGColorFeatures(), np.array([20.0, 20.0]), (64, 64)).estimate(
            np.zeros((64, 64, 3), np.uint8), np.array([32.0, 32.0]), 1.0)
