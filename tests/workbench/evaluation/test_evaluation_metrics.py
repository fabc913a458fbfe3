"""Behaviour of the evaluation metrics: planted evidence localises, randomising a model changes its gradient maps,
statistics match scipy/scikit-image, bad input gets a clear error, and nothing the user owns is modified."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import skimage.metrics
import torch
from evaluation_helpers import Gradient, gradient

import workbench.evaluation as ev
from workbench.evaluation.base import average_ranks, spearman, ssim_1d
from workbench.models.planted import RegionOnlyClassifier, box_mask

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.mark.parametrize("name", ["RelevanceMassAccuracy", "RelevanceRankAccuracy", "PointingGame"])
def test_map_on_planted_evidence_localises_better_than_a_random_map(digits, name):
    base, x, y, _ = digits
    mask = box_mask(16, 4, 4, 8, 8)
    planted = RegionOnlyClassifier(base, mask).eval()  # pixels outside the box cannot change the output
    masks = mask.bool().expand(len(x), 16, 16)
    on_evidence = gradient(planted, x, y)
    random_map = torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    metric = ev.METRICS[name]()
    good = metric(planted, x, y, on_evidence, masks=masks)
    bad = metric(planted, x, y, random_map, masks=masks)
    assert (good >= bad).all() and good.mean() > bad.mean() + 0.2


def test_mprt_similarity_falls_as_more_layers_are_randomised(digits):
    model, x, y, a = digits
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    metric = ev.MPRT()
    result = metric.curve(metric.batch(model, x, y, a, explain=gradient), keep_maps=True)
    mean = result.similarity.mean(0)
    assert result.layers[0] == "original" and mean[0] == pytest.approx(1.0, abs=1e-6)
    assert mean[-1] < 0.5 < mean[0]
    first_half, second_half = mean[1:len(mean) // 2].mean(), mean[len(mean) // 2:].mean()
    assert second_half < first_half  # cascading randomisation: deeper into the network, less of the map survives
    assert len(result.maps) == len(result.layers) and result.maps[0].shape == a.shape
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())  # deep copy, never in place
    assert torch.equal(rng, torch.get_rng_state())  # global torch RNG untouched


def test_mprt_rebinds_a_captum_shaped_explainer_to_the_randomised_model(digits):
    model, x, y, a = digits
    by_fn = ev.MPRT()(model, x[:3], y[:3], a[:3], explain=gradient)
    by_object = ev.MPRT()(model, x[:3], y[:3], a[:3], explain=Gradient(model))
    torch.testing.assert_close(by_object, by_fn)


def test_explainer_without_a_model_reference_cannot_be_randomised(digits):
    model, x, y, a = digits

    class Detached:
        def attribute(self, inputs, target):
            return gradient(model, inputs, target)

    with pytest.raises(ValueError, match="holds no reference to the model"):
        ev.MPRT()(model, x[:2], y[:2], a[:2], explain=Detached())


def test_random_metrics_are_reproducible_with_a_seeded_generator(tiny):
    model, x, y, a = tiny
    for metric in (ev.MaxSensitivity(nr_samples=5), ev.LocalLipschitzEstimate(nr_samples=5),
                   ev.FaithfulnessCorrelation(nr_runs=10, subset_size=16), ev.ROAD(), ev.RandomLogit()):
        runs = [metric(model, x, y, a, explain=gradient, generator=torch.Generator().manual_seed(3)) for _ in range(2)]
        torch.testing.assert_close(runs[0], runs[1], msg=metric.name)


def test_directions_are_declared_as_quantus_declares_them():
    lower = {"PixelFlipping", "ROAD", "MPRT", "RandomLogit", "MaxSensitivity", "LocalLipschitzEstimate",
             "Complexity", "Deletion"}
    for name, cls in ev.METRICS.items():
        assert cls.higher_is_better == (name not in lower), name
        assert cls.family in ev.FAMILIES


def test_bad_maps_and_missing_masks_get_clear_errors(tiny):
    model, x, y, a = tiny
    with pytest.raises(ValueError, match="maps must be"):
        ev.PixelFlipping()(model, x, y, a[:, :, :4])
    nan_map = a.clone()
    nan_map[2, 0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match=r"NaN/Inf values for image\(s\) \[2\]"):
        ev.Sparseness()(model, x, y, nan_map)
    with pytest.raises(ValueError, match="needs ground-truth masks"):
        ev.RelevanceMassAccuracy()(model, x, y, a)
    with pytest.raises(ValueError, match="needs `explain`"):
        ev.MaxSensitivity()(model, x, y, a)
    with pytest.raises(ValueError, match="masks must be"):
        ev.PointingGame()(model, x, y, a, masks=torch.ones(3, 3, dtype=torch.bool))


def test_average_ranks_and_spearman_match_scipy_with_ties():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 5, (4, 30), generator=g).float()  # many ties
    b = torch.rand(4, 30, generator=g)
    np.testing.assert_allclose(average_ranks(a).numpy(), scipy.stats.rankdata(a.numpy(), axis=1))
    expected = [scipy.stats.spearmanr(a[i], b[i])[0] for i in range(4)]
    np.testing.assert_allclose(spearman(a, b).numpy(), expected, atol=1e-6)


def test_ssim_matches_scikit_image_on_flattened_maps():
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(3, 64, generator=g), torch.rand(3, 64, generator=g) - 0.3
    expected = []
    for u, v in zip(a.double().numpy(), b.double().numpy(), strict=True):
        rng = float(max(u.max(), v.max()) - min(u.min(), v.min()))
        expected.append(skimage.metrics.structural_similarity(u, v, data_range=rng))
    np.testing.assert_allclose(ssim_1d(a, b).numpy(), expected, atol=1e-6)


def test_linear_imputation_fills_holes_with_the_neighbours_mean():
    x = torch.arange(64.0).view(1, 1, 8, 8)  # a linear ramp is reproduced exactly inside a hole
    removed = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    removed[..., 2:5, 3:6] = True
    torch.testing.assert_close(ev.linear_imputation(x, removed), x)
    flat = torch.zeros(1, 1, 8, 8)
    flat[..., 0, 0] = 1.0
    out = ev.linear_imputation(flat, ~(flat.bool()))  # one known pixel: the whole image takes its value
    torch.testing.assert_close(out, torch.ones_like(out), atol=1e-6, rtol=0)


def test_mprt_rebinds_layer_references_of_a_captum_explainer(digits):
    from captum.attr import LayerAttribution, LayerGradCam

    model, x, y, _ = digits

    class UpsampledGradCam:  # holds the model and one of its layers, as Captum's layer methods do
        def __init__(self, m):
            self.cam = LayerGradCam(m, m.gradcam_layer)

        def attribute(self, inputs, target):
            return LayerAttribution.interpolate(self.cam.attribute(inputs, target=target), inputs.shape[-2:])

    def by_fn(m, inputs, targets):  # a fresh explainer on whichever model MPRT passes
        return UpsampledGradCam(m).attribute(inputs, targets)

    maps = by_fn(model, x[:3], y[:3])
    metric = ev.MPRT()
    rebound = metric.curve(metric.batch(model, x[:3], y[:3], maps, explain=UpsampledGradCam(model)))
    fresh = metric.curve(metric.batch(model, x[:3], y[:3], maps, explain=by_fn))
    torch.testing.assert_close(rebound.similarity, fresh.similarity, equal_nan=True)
    assert rebound.similarity[:, 1:].isfinite().any()
