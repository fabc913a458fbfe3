"""Spatiotemporal dropout and the bag-of-patches ViT: token shares, seeding, eval, frame order, rollout, training."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest
import torch

from workbench.cache import config_key
from workbench.data.clips import load_forgery_clips
from workbench.stdt import (
    BagOfPatchesViT,
    SpatiotemporalDropout,
    StdtRecipe,
    dropout_draw,
    inspect_draw,
    stdt_config,
    stdt_detector,
    video_auc,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.mark.parametrize(("rho_s", "rho_t"), [(0.25, 0.25), (0.5, 0.0), (0.0, 0.5), (0.1, 0.4)])
def test_std_keeps_exactly_the_requested_share(rho_s, rho_t):
    tokens = torch.randn(3, 8, 16, 5)
    std = SpatiotemporalDropout(rho_s, rho_t, seed=0).train()
    kept, t_idx, n_idx = std(tokens)
    kt, kn = round((1 - rho_t) * 8), round((1 - rho_s) * 16)
    assert kept.shape == (3, kt * kn, 5)
    for b in range(3):
        frames = t_idx[b].unique()
        assert len(frames) == kt
        for t in frames:
            assert len(n_idx[b][t_idx[b] == t].unique()) == kn  # kn distinct positions in each kept frame
        assert torch.equal(kept[b], tokens[b, t_idx[b], n_idx[b]])


def test_std_is_reproducible_with_a_seed_and_off_in_eval():
    tokens = torch.randn(2, 8, 16, 4)
    a = SpatiotemporalDropout(0.3, 0.3, seed=7).train()(tokens)
    b = SpatiotemporalDropout(0.3, 0.3, seed=7).train()(tokens)
    c = SpatiotemporalDropout(0.3, 0.3, seed=8).train()(tokens)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[1] * 16 + a[2], c[1] * 16 + c[2])
    kept, _, _ = SpatiotemporalDropout(0.3, 0.3, seed=7).eval()(tokens)
    assert torch.equal(kept, tokens.reshape(2, -1, 4))


def test_bad_ratios_and_inputs_get_clear_errors():
    with pytest.raises(ValueError, match="spatial_ratio"):
        SpatiotemporalDropout(1.0, 0.1)
    with pytest.raises(ValueError, match="stem must be 'tubelet' or 'frame'"):
        BagOfPatchesViT(stem="3d")
    model = BagOfPatchesViT(dim=16, depth=1, heads=2)
    with pytest.raises(ValueError, match="B, T, C, H, W"):
        model(torch.rand(2, 8, 32, 32))
    with pytest.raises(ValueError, match="empty"):
        model(torch.rand(0, 8, 1, 32, 32))
    bad = torch.rand(1, 8, 1, 32, 32)
    bad[0, 3, 0, 4, 4] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        model(bad)


def test_frame_order_matters_only_with_the_time_embedding_or_the_tubelet_stem():
    """With ``time_embed`` (or a stem that convolves over neighbouring frames) the model sees when each patch was;
    built with ``time_embedding=False`` and the per-frame stem (time_embed zero, frozen) joint attention over the bag
    + CLS pooling makes it invariant to the order of the frames."""
    torch.manual_seed(0)
    clips = torch.rand(2, 8, 1, 32, 32)
    shuffled = clips[:, torch.randperm(8)]
    with_time = BagOfPatchesViT(dim=32, depth=2, heads=2).eval()
    with torch.no_grad():
        with_time.time_embed.normal_(0, 0.5)
        assert not torch.allclose(with_time(clips), with_time(shuffled), atol=1e-4)
    without_time = BagOfPatchesViT(dim=32, depth=2, heads=2, time_embedding=False, stem="frame").eval()
    with torch.no_grad():
        assert torch.allclose(without_time(clips), without_time(shuffled), atol=1e-5)
    assert not without_time.time_embed.requires_grad
    tubelet = BagOfPatchesViT(dim=32, depth=2, heads=2, time_embedding=False, stem="tubelet").eval()
    with torch.no_grad():
        assert not torch.allclose(tubelet(clips), tubelet(shuffled), atol=1e-4)


def test_test_time_draws_average_and_rollout_covers_kept_patches():
    model = BagOfPatchesViT(dim=16, depth=2, heads=2, test_draws=3, seed=0).eval()
    clips = torch.rand(2, 8, 1, 32, 32)
    logits = model(clips)
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()
    roll = model.attention_rollout(clips)
    assert roll.shape == (2, 8, 4, 4)
    assert torch.allclose(roll.sum((1, 2, 3)), torch.ones(2), atol=1e-5) and (roll >= 0).all()
    model.std.reseed(1)
    keep = model.std.draw(2, 8, 16)
    roll = model.attention_rollout(clips, keep)
    dropped = torch.ones(2, 8 * 16, dtype=torch.bool)
    dropped[torch.arange(2)[:, None], keep[0] * 16 + keep[1]] = False
    assert (roll.reshape(2, -1)[dropped] == 0).all()


def test_smoke_recipe_with_std_tells_fakes_from_reals_of_unseen_identities():
    """The smoke recipe (STD on, tubelet stem; 520 clips, 8 epochs, ~40 s on one CPU thread, then cached: the model
    the dashboard and tutorial show on a CPU): the held-out identities' fakes get a higher P(fake) than their real
    clips, well above chance (AUC 0.5). It needs the frame-to-frame flicker: models that look at single frames stay
    near chance on these clips (benchmarks/results/stdt.md)."""
    model = stdt_detector(True, smoke=True, device="cpu", progress=False)
    test = load_forgery_clips("test", n_per_identity=2)
    assert video_auc(model, test)["auc"] > 0.75


def test_recipe_is_a_frozen_dataclass_with_the_cache_key_of_the_old_dict():
    """Keys computed from the string-keyed config dicts before they became dataclasses (same cached models)."""
    smoke = stdt_config(True, smoke=True)
    assert isinstance(smoke, StdtRecipe) and smoke.n_per_identity == 4 and smoke.spatial_ratio == 0.25
    assert config_key(smoke) == "f695ad9d6d"
    assert config_key(stdt_config(False, smoke=True)) == "44cb6f017d"
    assert stdt_config(False).spatial_ratio == stdt_config(False).temporal_ratio == 0.0
    assert stdt_config(True, spatial_ratio=0.5).spatial_ratio == 0.5  # an override wins over std=True
    with pytest.raises(dataclasses.FrozenInstanceError):
        smoke.epochs = 3


def test_inspect_draw_scores_the_clip_and_the_draw():
    model = BagOfPatchesViT(16, 8, frames=4, dim=16, depth=1, heads=2, seed=0).eval()
    clip = torch.rand(1, 4, 1, 16, 16)
    keep = dropout_draw(model, 0.5, 0.5, seed=0)
    seen = inspect_draw(model, clip, keep)
    assert seen.kept.shape == (4, 2, 2) and seen.kept.sum() == keep[0].shape[1] == 2 * 2
    with torch.no_grad():
        assert abs(seen.score - float(torch.softmax(model(clip), 1)[0, 1])) < 1e-5
    assert seen.rollout[~seen.kept].sum() == 0 and abs(seen.rollout.sum() - 1) < 1e-5


def test_gpu_check_lives_in_the_benchmark_and_reports_loss_and_throughput():
    import workbench.stdt

    assert not hasattr(workbench.stdt, "gpu_check_stdt")
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "stdt.py"
    spec = importlib.util.spec_from_file_location("benchmark_stdt", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.gpu_check("cpu", max_steps=2, smoke=True)
    assert set(out) == {"loss_first", "loss_last", "items_per_s"} and out["items_per_s"] > 0


def test_the_dashboard_models_are_the_cached_recipes_with_and_without_std():
    from workbench.stdt import stdt_dashboard_models

    models = stdt_dashboard_models(smoke=True, device="cpu", progress=False)
    assert list(models) == ["STD", "no STD"]
    assert models["STD"].std.spatial_ratio > 0 and models["no STD"].std.spatial_ratio == 0
    assert list(stdt_dashboard_models(smoke=True, device="cpu", progress=False, which=("STD",))) == ["STD"]
