"""Feature whitening: the maths of the layer and the rotation, the detector's internals, smoke training."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from workbench.cache import config_key
from workbench.data.faces import load_forgery_faces
from workbench.models.classifier import SmallCNN
from workbench.whitening import (
    ConceptRotation,
    DetectorInternals,
    IterNormWhitening,
    WhiteningBlock,
    WhiteningDetector,
    WhiteningRecipe,
    channel_correlation,
    channel_maps,
    detector_config,
    evaluate_detector,
    mean_offdiag_correlation,
    pointing_game,
    replace_batchnorm,
    whitening_detector,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def correlated_features(channels: int = 16, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    mix = torch.randn(channels, channels, generator=gen)
    return torch.einsum("ij,bjhw->bihw", mix, torch.randn(32, channels, 6, 6, generator=gen)) + 2.0


def covariance(y: torch.Tensor) -> torch.Tensor:
    flat = y.transpose(0, 1).reshape(y.shape[1], -1)
    return torch.cov(flat, correction=0)


def test_whitened_covariance_is_close_to_identity_on_a_batch():
    x = correlated_features()
    layer = IterNormWhitening(16, num_groups=1, T=20).train()
    cov = covariance(layer(x))
    assert torch.allclose(cov, torch.eye(16), atol=0.02)
    assert mean_offdiag_correlation(x) > 0.2 and mean_offdiag_correlation(layer(x)) < 0.01


def test_default_T5_decorrelates_partly_more_iterations_fully_and_groups_whiten_within_themselves():
    x = correlated_features()
    partial = mean_offdiag_correlation(IterNormWhitening(16, T=5).train()(x))
    full = mean_offdiag_correlation(IterNormWhitening(16, T=20).train()(x))
    assert full < 0.01 < partial < mean_offdiag_correlation(x)  # IterNorm's T=5 is a partial whitening
    grouped = covariance(IterNormWhitening(16, num_groups=2, T=20).train()(correlated_features()))
    assert torch.allclose(grouped[:8, :8], torch.eye(8), atol=0.02)
    assert torch.allclose(grouped[8:, 8:], torch.eye(8), atol=0.02)


def test_eval_uses_running_statistics():
    layer = IterNormWhitening(16, T=20, momentum=1.0).train()
    x = correlated_features()
    layer(x)
    layer.eval()
    shifted = x[:4] * 3 + 5  # a batch with other statistics: eval must not re-estimate them
    expected = torch.bmm(layer.running_wm, shifted.transpose(0, 1).reshape(1, 16, -1) - layer.running_mean)
    assert torch.allclose(layer(shifted), expected.reshape(16, 4, 6, 6).transpose(0, 1), atol=1e-5)
    assert covariance(layer(x)).sub(torch.eye(16)).abs().max() < 0.05


def test_gradient_flows_through_the_iteration():
    x = correlated_features().requires_grad_(True)
    IterNormWhitening(16, T=5).train()(x).pow(2).mul(torch.arange(16.0).view(1, 16, 1, 1)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_rotation_stays_orthogonal_and_aligns_channel_k_with_concept_k():
    rot = ConceptRotation(8)
    gen = torch.Generator().manual_seed(0)
    directions = torch.linalg.qr(torch.randn(8, 8, generator=gen))[0]
    for _ in range(5):
        for k in range(3):  # concept k's samples point along directions[:, k]
            xhat = directions[:, k].view(1, 8, 1, 1) * 2 + 0.1 * torch.randn(4, 8, 3, 3, generator=gen)
            rot.accumulate(xhat, k)
        rot.update()
        r = rot.rotation[0]
        assert torch.allclose(r @ r.T, torch.eye(8), atol=1e-5)
    for k in range(3):
        out = rot(directions[:, k].view(1, 8, 1, 1))[0, :, 0, 0]
        assert int(out.argmax()) == k and out[k] > 0.9


def test_replace_batchnorm_in_any_cnn_and_clear_errors():
    cnn = SmallCNN(1, 2, width=8, depth=2)
    block = replace_batchnorm(cnn, "features.1.1", T=5)
    assert isinstance(cnn.features[1][1], WhiteningBlock) and block.num_features == 16
    assert cnn(torch.rand(4, 1, 16, 16)).shape == (4, 2)
    with pytest.raises(ValueError, match="not a BatchNorm2d"):
        replace_batchnorm(cnn, "features.0.0")
    with pytest.raises(ValueError, match="not a module"):
        replace_batchnorm(cnn, "features.9.9")
    with pytest.raises(ValueError, match="divisible"):
        IterNormWhitening(10, num_groups=3)


def test_detector_reaches_its_channels_without_hooks():
    det = WhiteningDetector(width=8, whiten=True).eval()
    x = torch.rand(3, 1, 32, 32)
    out = det.forward_internals(x)
    assert isinstance(out, DetectorInternals)
    assert out.norm.shape == (3, 32, 8, 8) and out.pre_norm.shape == (3, 32, 8, 8)
    assert torch.allclose(out.logits, det(x), atol=1e-5)
    assert torch.equal(det.whitened_features(x), out.norm)
    assert isinstance(det.norm_layer, WhiteningBlock)
    plain = WhiteningDetector(width=8, whiten=False)
    assert isinstance(plain.norm_layer, nn.BatchNorm2d)
    with pytest.raises(ValueError, match="unknown concept"):
        WhiteningDetector(width=8, concepts=("ears",))


def test_measures_and_maps_validate_input():
    det = WhiteningDetector(width=8).eval()
    maps = channel_maps(det, torch.rand(2, 1, 32, 32), channel=0)
    assert maps.shape == (2, 32, 32) and maps.min() >= 0 and maps.max() <= 1
    with pytest.raises(ValueError, match="NaN"):
        channel_maps(det, torch.full((1, 1, 32, 32), float("nan")), 0)
    with pytest.raises(ValueError, match="1 channel"):
        channel_maps(det, torch.rand(1, 3, 32, 32), 0)
    with pytest.raises(ValueError, match="channel must lie"):
        channel_maps(det, torch.rand(1, 1, 32, 32), 99)
    corr = channel_correlation(correlated_features())
    assert torch.allclose(corr, corr.T) and torch.allclose(corr.diagonal(), torch.ones(16))
    peak = torch.zeros(1, 4, 4)
    peak[0, 1, 2] = 1
    mask = torch.zeros(1, 1, 4, 4)
    mask[0, 0, 1, 2] = 1
    assert pointing_game(peak, mask) == 1.0 and pointing_game(peak, 1 - mask) == 0.0


def test_smoke_detector_learns_on_held_out_identities_and_its_layer_is_decorrelated(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    white = whitening_detector(True, smoke=True, progress=False, device="cpu")
    test = load_forgery_faces("test")
    result = evaluate_detector(white, test)
    print(f"smoke whitened detector on held-out identities: {result}")
    assert result["auc"] > 0.6
    assert mean_offdiag_correlation(white.whitened_features(test.images)) < 0.05
    assert white.concepts[0] == "manipulated"
    r = white.norm_layer.rotation.rotation[0]
    assert torch.allclose(r @ r.T, torch.eye(r.shape[0]), atol=1e-4)
    assert not torch.allclose(r, torch.eye(r.shape[0]))  # the concept alignment did rotate


def test_gpu_check_lives_in_the_benchmark_and_reports_loss_and_throughput(load_benchmark):
    import workbench.whitening

    assert not hasattr(workbench.whitening, "gpu_check_whitening")
    out = load_benchmark("whitening").gpu_check("cpu", max_steps=2)
    assert set(out) == {"loss_first", "loss_last", "items_per_s"} and out["items_per_s"] > 0


def test_iternorm_has_no_affine_path():
    """The unused affine path of IterNormWhitening is gone (the block's own affine remains)."""
    assert not any(True for _ in IterNormWhitening(8).parameters())
    with pytest.raises(TypeError):
        IterNormWhitening(8, affine=True)
    assert {n for n, _ in WhiteningBlock(8, affine=True).named_parameters()} == {"weight", "bias"}


def test_recipe_is_a_frozen_dataclass_with_the_cache_key_of_the_old_dict():
    """The keys were computed from the string-keyed config dicts before they became dataclasses: a changed field
    would silently retrain every cached detector and move the benchmark numbers."""
    smoke = detector_config(True, smoke=True)
    assert isinstance(smoke, WhiteningRecipe) and smoke.width == 8 and smoke.epochs == 10
    assert config_key(smoke) == "950b3dfd05"
    assert config_key(detector_config(False, smoke=True)) == "d253a5e5cb"
    assert config_key(detector_config(True, smoke=True, train_kinds=["swap"])) == \
        config_key(dataclasses.replace(smoke, train_kinds=("swap",)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        smoke.epochs = 3
