"""Every metric that Quantus 0.6 also has agrees with it on the same model, inputs and maps.

Deterministic metrics are compared directly (float32 round-off: ``atol=1e-5`` relative to the score's scale). Metrics
that sample at random are compared on the same draws: the test records the numbers Quantus takes from NumPy's global
state and hands them to our metric's ``draw_*`` hook, so the comparison is exact too; ROAD is compared with its noise
switched off (the imputation is then deterministic). Where our per-image normalisation differs from Quantus's
batch-wide one (LocalLipschitzEstimate, RandomLogit), Quantus is called one image at a time, which is the same thing.
Quantus 0.6 calls ``np.trapz``, gone from NumPy 2, so its curves are integrated here with ``np.trapezoid``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import quantus  # the test/eval extra (LGPL): tests only, never imported by workbench
import torch
from evaluation_helpers import gradient, quantus_explain

import workbench.evaluation as ev

pytestmark = [pytest.mark.usefixtures("torch_one_thread"),
              pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.filterwarnings("ignore::FutureWarning")]
KW = {"channel_first": True, "device": "cpu"}


def _np(model, x, y, a):
    return x.numpy(), y.numpy(), a.numpy().copy()


def test_pixel_flipping_matches_quantus(digits):
    model, x, y, a = digits
    curves = np.asarray(quantus.PixelFlipping(disable_warnings=True)(model, *_np(model, x, y, a), **KW))
    metric = ev.PixelFlipping()
    ours = metric.curve(metric.batch(model, x, y, a))
    np.testing.assert_allclose(ours.numpy(), curves, atol=1e-5)
    np.testing.assert_allclose(metric(model, x, y, a).numpy(), np.trapezoid(curves, axis=1), atol=1e-3)


@pytest.mark.parametrize("patch_size", [4, 5])  # 5 does not divide 16: Quantus pads the image
def test_region_perturbation_matches_quantus(digits, patch_size):
    model, x, y, a = digits
    q = quantus.RegionPerturbation(patch_size=patch_size, regions_evaluation=12, disable_warnings=True)
    curves = np.asarray(q(model, *_np(model, x, y, a), **KW))
    ours = ev.RegionPerturbation(patch_size=patch_size, regions_evaluation=12)(model, x, y, a)
    np.testing.assert_allclose(ours.numpy(), np.trapezoid(curves, axis=1), atol=1e-5)


def test_road_matches_quantus_without_noise(digits):
    model, x, y, a = digits
    q = quantus.ROAD(noise=0.0, disable_warnings=True)(model, *_np(model, x, y, a), **KW)
    metric = ev.ROAD(noise=0.0)
    ours = metric.curve(metric.batch(model, x, y, a)).float().mean(0)
    np.testing.assert_allclose(ours.numpy(), np.array(list(q.values())), atol=1e-6)
    assert metric(model, x, y, a).mean().item() == pytest.approx(np.mean(list(q.values())), abs=1e-6)


def test_faithfulness_correlation_matches_quantus_on_the_same_subsets(digits, monkeypatch):
    model, x, y, a = digits
    drawn, choice = [], np.random.choice

    def record(*args, **kwargs):
        out = choice(*args, **kwargs)
        drawn.append(out)
        return out

    monkeypatch.setattr(np.random, "choice", record)
    q = quantus.FaithfulnessCorrelation(nr_runs=20, subset_size=32, return_aggregate=False, disable_warnings=True)
    theirs = np.asarray(q(model, *_np(model, x, y, a), **KW))
    monkeypatch.setattr(np.random, "choice", choice)
    subsets = torch.as_tensor(np.stack(drawn).reshape(20, len(x), 32)).transpose(0, 1)
    metric = ev.FaithfulnessCorrelation(nr_runs=20, subset_size=32)
    monkeypatch.setattr(metric, "draw_subsets", lambda *_: subsets)
    np.testing.assert_allclose(metric(model, x, y, a).numpy(), theirs, atol=1e-4)


def _record_noise(monkeypatch, name: str, shape: tuple[int, ...]) -> list[np.ndarray]:
    drawn, draw = [], getattr(np.random, name)

    def record(*args, **kwargs):
        out = draw(*args, **kwargs)
        if np.shape(out) == shape:
            drawn.append(out)
        return out

    monkeypatch.setattr(np.random, name, record)
    return drawn


def test_max_sensitivity_matches_quantus_on_the_same_noise(digits, monkeypatch):
    model, x, y, a = digits
    drawn = _record_noise(monkeypatch, "uniform", (len(x), x[0].numel()))
    q = quantus.MaxSensitivity(nr_samples=8, disable_warnings=True)
    theirs = np.asarray(q(model, *_np(model, x, y, a), explain_func=quantus_explain, **KW))
    metric = ev.MaxSensitivity(nr_samples=8)
    noise = torch.as_tensor(np.stack(drawn), dtype=torch.float32).view(8, *x.shape)
    monkeypatch.setattr(metric, "draw_noise", lambda *_: noise)
    np.testing.assert_allclose(metric(model, x, y, a, explain=gradient).numpy(), theirs, rtol=1e-4, atol=1e-5)


def test_local_lipschitz_estimate_matches_quantus_on_the_same_noise(digits, monkeypatch):
    model, x, y, a = digits
    x, y, a = x[:3], y[:3], a[:3]
    drawn = _record_noise(monkeypatch, "normal", (1, x[0].numel()))
    theirs = []
    for i in range(len(x)):  # one image per call: Quantus normalises maps by the batch maximum, we by the image's
        q = quantus.LocalLipschitzEstimate(nr_samples=6, disable_warnings=True)
        theirs += q(model, *_np(model, x[i:i + 1], y[i:i + 1], a[i:i + 1]), explain_func=quantus_explain, **KW)
    noise = torch.as_tensor(np.stack(drawn), dtype=torch.float32).view(len(x), 6, *x.shape[1:]).transpose(0, 1)
    metric = ev.LocalLipschitzEstimate(nr_samples=6)
    monkeypatch.setattr(metric, "draw_noise", lambda *_: noise)
    np.testing.assert_allclose(metric(model, x, y, a, explain=gradient).numpy(), theirs, rtol=1e-4)


def test_random_logit_matches_quantus_on_the_same_classes(digits, monkeypatch):
    model, x, y, a = digits
    theirs, off = [], []
    for i in range(len(x)):  # one image per call (normalisation, see the module docstring)
        q = quantus.RandomLogit(num_classes=10, disable_warnings=True)
        theirs += q(model, *_np(model, x[i:i + 1], y[i:i + 1], a[i:i + 1]), explain_func=quantus_explain, **KW)
        np.random.seed(42)  # Quantus's draw of the other class, replayed
        others = [c for c in range(10) if c != int(y[i])]
        off.append(others[np.random.randint(0, 9, 1)[0]])
    metric = ev.RandomLogit()
    monkeypatch.setattr(metric, "draw_off_targets", lambda *_: torch.tensor(off))
    np.testing.assert_allclose(metric(model, x, y, a, explain=gradient).numpy(), theirs, atol=1e-5)


def test_mprt_matches_quantus_layer_by_layer(digits):
    model, x, y, a = digits
    q = quantus.MPRT(disable_warnings=True)(model, *_np(model, x, y, a), explain_func=quantus_explain, **KW)
    metric = ev.MPRT()
    ours = metric.curve(metric.batch(model, x, y, a, explain=gradient))
    assert ours.layers == list(q)
    np.testing.assert_allclose(ours.similarity.numpy().T, np.array(list(q.values())), atol=1e-5)
    np.testing.assert_allclose(metric(model, x, y, a, explain=gradient).numpy(), list(q.values())[-1], atol=1e-5)


@pytest.mark.parametrize("name", ["RelevanceMassAccuracy", "RelevanceRankAccuracy", "PointingGame"])
def test_localisation_matches_quantus(digits, name):
    model, x, y, a = digits
    masks = torch.zeros(len(x), 16, 16, dtype=torch.bool)
    masks[:, 4:12, 3:9] = True
    masks[1] = torch.rand(16, 16, generator=torch.Generator().manual_seed(1)) > 0.6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = getattr(quantus, name)(disable_warnings=True)(
            model, *_np(model, x, y, a), s_batch=masks[:, None].numpy().astype(float), **KW)
    ours = ev.METRICS[name]()(model, x, y, a, masks=masks)
    np.testing.assert_allclose(ours.numpy(), np.asarray(theirs, dtype=float), atol=1e-5)


@pytest.mark.parametrize("name", ["Sparseness", "Complexity"])
def test_complexity_matches_quantus(digits, name):
    model, x, y, a = digits
    theirs = getattr(quantus, name)(disable_warnings=True)(model, *_np(model, x, y, a), **KW)
    np.testing.assert_allclose(ev.METRICS[name]()(model, x, y, a).numpy(), theirs, atol=1e-5)
