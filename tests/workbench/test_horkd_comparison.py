"""Paired tests across seeds and the views of where students' errors differ, on rows and predictions made up so
that the answer is known."""

import numpy as np
import pytest
from scipy import stats

from workbench.horkd import (
    disagreement_matrix,
    paired_comparison,
    paired_comparisons,
    per_class_accuracy,
    right_wrong_examples,
    seed_summary,
)


def _rows(values: dict[str, list[float]], resolution: int = 8) -> list[dict]:
    return [{"method": m, "resolution": resolution, "seed": s, "top1": v}
            for m, vs in values.items() for s, v in enumerate(vs)]


def test_a_consistent_gain_exceeds_the_spread_and_a_noisy_one_does_not():
    rows = _rows({"scratch": [0.50, 0.60, 0.55, 0.45, 0.52], "horkd": [0.53, 0.65, 0.59, 0.49, 0.56],
                  "hinton": [0.60, 0.50, 0.50, 0.55, 0.47]})
    gain = paired_comparison(rows, "horkd", "scratch", 8)
    assert gain["wins"] == 5 and gain["losses"] == 0
    assert gain["sign_p"] == pytest.approx(2 / 32)
    assert gain["t_p"] == pytest.approx(stats.ttest_rel(*[[r["top1"] for r in rows if r["method"] == m]
                                                          for m in ("horkd", "scratch")]).pvalue)
    assert gain["mean_diff"] == pytest.approx(0.04) and gain["spread"] == pytest.approx(
        max(np.std([0.50, 0.60, 0.55, 0.45, 0.52], ddof=1), np.std([0.53, 0.65, 0.59, 0.49, 0.56], ddof=1)))
    # +0.04 on every seed: within the seeds' spread (0.06), yet the paired t-test sees it
    assert not gain["exceeds_spread"] and gain["t_p"] < 0.01
    noisy = paired_comparison(rows, "hinton", "scratch", 8)
    assert noisy["wins"] == 2 and noisy["losses"] == 3 and noisy["t_p"] > 0.5 and not noisy["exceeds_spread"]
    big = paired_comparison(_rows({"scratch": [0.5, 0.52, 0.51], "rkd": [0.7, 0.71, 0.69]}), "rkd", "scratch", 8)
    assert big["exceeds_spread"] and big["t_p"] < 0.01
    assert seed_summary(rows, "scratch", 8)["n"] == 5


def test_paired_tests_need_two_common_seeds_and_skip_untrained_pairs():
    rows = _rows({"scratch": [0.5], "horkd": [0.6]})
    with pytest.raises(ValueError, match="at least 2 seeds"):
        paired_comparison(rows, "horkd", "scratch", 8)
    rows = _rows({"scratch": [0.5, 0.6], "horkd": [0.6, 0.6]})
    assert [(p["method"], p["reference"]) for p in paired_comparisons(rows, [8])] == [("horkd", "scratch")]


def test_disagreement_counts_images_one_student_gets_right_and_the_other_wrong():
    labels = np.array([0, 0, 1, 1, 2, 2])
    preds = {"scratch": np.array([0, 1, 1, 0, 2, 2]), "horkd": np.array([0, 0, 1, 1, 1, 2])}
    names, m = disagreement_matrix(preds, labels)
    assert names == ["scratch", "horkd"]
    assert m[1, 0] == pytest.approx(2 / 6) and m[0, 1] == pytest.approx(1 / 6) and m[0, 0] == 0
    assert list(right_wrong_examples(preds, labels, "horkd", "scratch")) == [1, 3]
    assert list(right_wrong_examples(preds, labels, "scratch", "horkd")) == [4]
    acc = per_class_accuracy(preds, labels, 4)
    assert list(acc["horkd"][:3]) == [1.0, 1.0, 0.5] and np.isnan(acc["horkd"][3])
    with pytest.raises(ValueError, match="no predictions for student 'rkd'"):
        right_wrong_examples(preds, labels, "rkd", "scratch")
