"""OTB metrics against hand-computed values."""

import numpy as np
import pytest

from workbench.tracking import center_error, evaluate, iou, precision_curve, success_curve


def test_iou_hand_computed():
    truth = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 4, 4]], dtype=float)
    pred = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5], [1, 1, 2, 2]], dtype=float)
    # identical: 1; half shifted: 50 / (100 + 100 - 50) = 1/3; disjoint: 0; inside: 4 / 16
    assert np.allclose(iou(pred, truth), [1.0, 1 / 3, 0.0, 0.25])


def test_center_error_hand_computed():
    truth = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], dtype=float)
    pred = np.array([[3, 4, 10, 10], [0, 0, 20, 20]], dtype=float)
    # centres (8, 9) vs (5, 5) -> 5; (10, 10) vs (5, 5) -> sqrt(50)
    assert np.allclose(center_error(pred, truth), [5.0, np.sqrt(50)])


def test_success_and_precision_curves_hand_computed():
    overlaps = np.array([0.0, 0.3, 0.6, 1.0])
    curve = success_curve(overlaps)
    assert curve.shape == (21,)
    assert curve[0] == 0.75  # > 0: three of four
    assert curve[6] == 0.5  # > 0.3: 0.6 and 1.0 (0.3 itself does not count)
    assert curve[20] == 0.0  # > 1: none
    # AUC = mean over 21 thresholds; counts of thresholds t_i = i/20 below each overlap: 0, 6, 12, 20
    assert np.isclose(curve.mean(), (0 + 6 + 12 + 20) / (4 * 21))
    errors = np.array([0.0, 19.9, 20.0, 35.0])
    precision = precision_curve(errors)
    assert precision.shape == (51,) and precision[20] == 0.75 and precision[50] == 1.0 and precision[0] == 0.25


def test_evaluate_summaries_and_nan_frames_skipped():
    truth = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [np.nan] * 4])
    pred = np.array([[0, 0, 10, 10], [40, 40, 10, 10], [0, 0, 10, 10]])
    result = evaluate(pred, truth)
    # the NaN frame is skipped; frame 0 (overlap 1) passes 20 of 21 thresholds, frame 1 (overlap 0) none
    assert np.isclose(result.success_auc, 0.5 * 20 / 21)
    assert result.precision_at_20 == 0.5


def test_metrics_reject_bad_shapes():
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        iou(np.zeros((3, 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="one per frame"):
        iou(np.zeros((2, 4)), np.zeros((3, 4)))
