"""The baseline explainers: Captum-shaped calls through make_explainer, and planted-evidence sanity checks."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from workbench.data import load_digits
from workbench.explainers import BASELINES, make_explainer, superpixels
from workbench.metrics import mass_inside
from workbench.models import RegionOnlyClassifier, box_mask
from workbench.models.pretrained import digits_classifier

pytest.importorskip("captum")
pytest.importorskip("lime")

SMALL_BUDGET = {"captum_lime": {"n_samples": 60}, "kernel_shap": {"n_samples": 60}, "lime": {"n_samples": 60}}


@pytest.fixture(scope="module")
def teacher() -> torch.nn.Module:
    return digits_classifier(progress=False)  # cached under $WORKBENCH_CACHE; trains once (~25 s)


@pytest.fixture(scope="module")
def planted(teacher) -> RegionOnlyClassifier:
    return RegionOnlyClassifier(teacher, box_mask(16, 4, 4, 8, 8)).eval()


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    return load_digits(16, "test").images[:2]


@pytest.mark.parametrize("name", BASELINES)
def test_every_baseline_returns_a_finite_map_shaped_like_the_inputs(name, teacher, digits):
    attr = make_explainer(name, teacher, **SMALL_BUDGET.get(name, {})).attribute(digits)
    assert attr.shape == digits.shape
    assert attr.device == digits.device
    assert torch.isfinite(attr).all()
    single = make_explainer(name, teacher, **SMALL_BUDGET.get(name, {})).attribute(digits[0])
    assert single.shape == digits[0].shape


@pytest.mark.parametrize("name", ["integrated_gradients", "saliency"])
def test_gradient_baselines_put_the_mass_in_the_planted_region(name, planted, digits):
    attr = make_explainer(name, planted).attribute(digits)
    assert (mass_inside(attr, planted.mask[0, 0]) > 0.99).all()


def test_random_map_does_not_find_the_planted_region(planted, digits):
    attr = make_explainer("random", planted, seed=3).attribute(digits)
    share = mass_inside(attr, planted.mask[0, 0])
    assert (share < 0.4).all()  # the box is a quarter of the image
    assert torch.equal(attr, make_explainer("random", planted, seed=3).attribute(digits))


def test_target_selects_the_explained_class(teacher, digits):
    saliency = make_explainer("saliency", teacher, abs=False)
    predicted = teacher(digits).argmax(-1)
    assert torch.equal(saliency.attribute(digits), saliency.attribute(digits, target=predicted))
    other = (predicted + 1) % 10
    assert not torch.allclose(saliency.attribute(digits), saliency.attribute(digits, target=other))


def test_lime_package_paints_signed_segment_weights_on_its_superpixels(teacher, digits):
    attr = make_explainer("lime", teacher, n_samples=80).attribute(digits[:1])[0, 0]
    segments = superpixels(digits[0])
    for segment in np.unique(segments):
        values = attr[torch.from_numpy(segments == segment)]
        assert torch.all(values == values[0])  # one weight per superpixel
    assert (attr > 0).any() and (attr < 0).any()


@pytest.mark.parametrize("method", ["grid", "quickshift", "slic"])
def test_superpixels_label_gray_images_consecutively(method, digits):
    segments = superpixels(digits[0], method)
    assert segments.shape == (16, 16)
    assert set(np.unique(segments)) == set(range(segments.max() + 1))
    if method == "grid":
        assert segments.max() + 1 == 64  # 2x2-pixel cells at 16x16


def test_unknown_explainer_lists_the_valid_names(teacher):
    with pytest.raises(ValueError, match="valid names: relabel, integrated_gradients, saliency"):
        make_explainer("shap", teacher)


def test_bad_inputs_get_clear_errors(teacher):
    saliency = make_explainer("saliency", teacher)
    with pytest.raises(ValueError, match="NaN/Inf"):
        saliency.attribute(torch.full((1, 1, 16, 16), float("nan")))
    with pytest.raises(ValueError, match="empty batch"):
        saliency.attribute(torch.zeros(0, 1, 16, 16))
    with pytest.raises(ValueError, match=r"target must lie in \[0, 9\]"):
        saliency.attribute(torch.zeros(1, 1, 16, 16), target=12)
    with pytest.raises(ValueError, match="gradcam needs a layer"):
        make_explainer("gradcam", lambda x: teacher(x))


def test_missing_optional_package_names_the_extra(teacher, digits, monkeypatch):
    monkeypatch.setitem(sys.modules, "lime", None)
    monkeypatch.setitem(sys.modules, "lime.lime_image", None)
    with pytest.raises(ImportError, match=r"pip install distill-workbench\[baselines\]"):
        make_explainer("lime", teacher, n_samples=20).attribute(digits[:1])


def test_every_baseline_reports_ok_per_image(teacher, digits):
    for name in ("saliency", "random"):
        explainer = make_explainer(name, teacher)
        explainer.attribute(digits)
        assert explainer.last_status == ["ok"] * len(digits)
