"""The project's own pre-trained CNN as tracker features: it follows the target with channel distillation, and dropped
channels are really not computed (the last convolution is sliced)."""


import numpy as np
import pytest
import torch

from workbench.tracking import ChannelDistillation, DCFTracker, evaluate, make_sequence, run_sequence
from workbench.tracking.pretrained import RECIPES, project_cnn_features
from workbench.train import config_key


@pytest.fixture(scope="module")
def features():
    return project_cnn_features(smoke=True, progress=False)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_cnn_features_have_tracking_stride_and_cheap_subsets(features):
    assert features.cell_size == 4 and features.channels == 64 and features.subset_is_cheap
    assert features.extract(np.zeros((64, 48, 3), np.uint8)).shape == (16, 12, 64)


def test_cnn_features_with_channel_distillation_follow_the_target(features):
    seq = make_sequence("distractor", n_frames=24, seed=5)
    result = run_sequence(DCFTracker(features, channel_distillation=ChannelDistillation()), seq)
    score = evaluate(result.boxes, seq.ground_truth)
    static = evaluate(np.repeat(seq.ground_truth[:1], len(seq), axis=0), seq.ground_truth).success_auc
    # a box left where the target started scores about 0.25 on this sequence (the target moves away from it and a
    # look-alike passes by); following the target lifts the AUC far above that, losing it does not
    assert score.success_auc > static + 0.3, f"AUC {score.success_auc:.3f} vs static box {static:.3f}"
    assert score.precision_at_20 > 0.8
    assert result.channels_used[1:].max() < features.channels  # CD kept fewer than the 64 channels


def test_dropping_channels_slices_the_last_convolution(features, monkeypatch):
    patch = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.float32)
    full = features.extract(patch)
    out_channels: list[int] = []
    conv2d = torch.nn.functional.conv2d

    def recording_conv2d(x, weight, *args, **kwargs):
        out_channels.append(int(weight.shape[0]))
        return conv2d(x, weight, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "conv2d", recording_conv2d)
    kept = [3, 17, 40]
    subset = features.extract(patch, kept)
    assert out_channels[-1] == len(kept), f"last convolution computed {out_channels[-1]} channels, not {len(kept)}"
    assert sum(out_channels) < 16 + 16 + 32 + 32 + 64 + 64  # fewer output channels than the full stack computes
    np.testing.assert_allclose(subset, full[:, :, kept], rtol=1e-4, atol=1e-4)


def test_patch_classifier_recipes_keep_their_cache_keys():
    # the recipes became frozen dataclasses: asdict() must give the old settings dict, so cached models stay valid
    assert config_key(RECIPES["full"]) == "38c2353e52" and config_key(RECIPES["smoke"]) == "ca60ebba93"


def test_gpu_check_in_the_benchmark_trains_and_reports(load_benchmark):
    module = load_benchmark("tracking")
    report = module.gpu_check("cpu", max_steps=6)
    assert set(report) == {"loss_first", "loss_last", "items_per_s"}
    assert report["items_per_s"] > 0 and np.isfinite(report["loss_first"]) and np.isfinite(report["loss_last"])


def test_pruning_earlier_layers_computes_fewer_channels_and_approximates_the_kept_ones():
    from torch import nn

    from workbench.tracking.cnn import CNNFeatures
    from workbench.tracking.prune import prune_plan

    torch.manual_seed(0)
    stack = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
                          nn.Conv2d(16, 12, 3, stride=2, padding=1), nn.ReLU()).eval()
    with torch.no_grad():  # two of the middle layer's channels feed kept filters only weakly
        stack[5].weight[:, :2] *= 1e-3
    patch = np.random.default_rng(0).integers(0, 255, (32, 32, 3)).astype(np.uint8)
    kept = np.array([1, 4, 7])
    exact = CNNFeatures(stack, cell_size=4).extract(patch)[:, :, kept]
    pruned = CNNFeatures(stack, cell_size=4, prune_tolerance=0.01)
    approx = pruned.extract(patch, kept)
    plan = prune_plan(list(stack.children()), torch.as_tensor(kept), 0.01)
    shapes = [tuple(t[0].shape[:2]) for kind, _, t in plan if kind == "conv"]
    assert shapes[-1][0] == 3 and shapes[-1][1] <= 14 and shapes[1][0] == shapes[-1][1]  # middle conv pruned too
    assert np.linalg.norm(approx - exact) <= 0.05 * np.linalg.norm(exact)
    shared = CNNFeatures(stack, cell_size=4).with_pruning(0.01)
    assert shared.module is stack and np.allclose(shared.extract(patch, kept), approx)
    exact_plan = prune_plan(list(stack.children()), torch.as_tensor(kept), 0.0)
    assert [tuple(t[0].shape[:2]) for kind, _, t in exact_plan if kind == "conv"][-1] == (3, 16)
    with pytest.raises(ValueError, match="prune_tolerance"):
        CNNFeatures(stack, cell_size=4, prune_tolerance=1.5)
