"""Trackers follow the planted target; channel distillation drops channels and work; bad input is refused."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from workbench.tracking import (
    ChannelDistillation,
    CNNFeatures,
    DCFTracker,
    ECOTracker,
    FeatureExtractor,
    HOGColorFeatures,
    OpenCVTracker,
    evaluate,
    make_sequence,
    run_sequence,
    torchvision_features,
)


@pytest.fixture(scope="module")
def sequence():
    # a look-alike copy of the target crosses its path: a tracker has to hold on to the right one
    return make_sequence("distractor", n_frames=50, size=(160, 160), seed=5)


def static_auc(seq) -> float:
    """Success AUC of a box that never moves from the first frame: what "not tracking" scores."""
    return evaluate(np.repeat(seq.ground_truth[:1], len(seq), axis=0), seq.ground_truth).success_auc


TRACKERS = {
    "DCF": lambda: DCFTracker(),
    "DCF-CD": lambda: DCFTracker(channel_distillation=ChannelDistillation()),
    "ECO": lambda: ECOTracker(),
    "ECO-CD": lambda: ECOTracker(channel_distillation=ChannelDistillation()),
}


@pytest.mark.parametrize("name", sorted(TRACKERS))
def test_tracker_follows_planted_target(sequence, name):
    result = run_sequence(TRACKERS[name](), sequence)
    score = evaluate(result.boxes, sequence.ground_truth)
    baseline = static_auc(sequence)
    # AUC 0.6 means the box overlaps the truth by more than ~0.6 on average over thresholds: a box that drifted to
    # the look-alike or the background scores near the static box (about 0.2 here), so both bounds separate
    # following from losing the target; the margin over the static box keeps the test meaningful if the
    # generator changes.
    assert score.success_auc > 0.6, f"{name}: AUC {score.success_auc:.3f}"
    assert score.success_auc > baseline + 0.3, f"{name}: AUC {score.success_auc:.3f}, static box {baseline:.3f}"
    assert score.precision_at_20 > 0.8
    assert result.boxes.shape == (len(sequence), 4) and result.fps > 0 and len(result.times) == len(sequence)


def test_scale_search_follows_growing_object():
    seq = make_sequence("scale", n_frames=40, size=(160, 160), seed=0)
    result = run_sequence(DCFTracker(), seq)
    ratio = result.boxes[15:25, 2] / seq.ground_truth[15:25, 2]  # the object is ~1.5x its first size here
    assert 0.8 < np.median(ratio) < 1.25
    assert evaluate(result.boxes, seq.ground_truth).success_auc > 0.7


@pytest.mark.parametrize("tracker_class", [DCFTracker, ECOTracker])
def test_distillation_keeps_fewer_channels_and_correlations(sequence, tracker_class):
    full, distilled = tracker_class(), tracker_class(channel_distillation=ChannelDistillation(keep_ratio=0.25))
    short = make_sequence("distractor", n_frames=8, size=(160, 160), seed=5)
    full_result, cd_result = run_sequence(full, short), run_sequence(distilled, short)
    channels = full.features.channels
    assert (full_result.channels_used == channels).all()
    assert 1 <= cd_result.channels_used.max() <= 10 < channels  # k = 25% of 40
    assert distilled.correlations < full.correlations
    assert cd_result.correlations[1:].max() < full_result.correlations[1:].min()
    assert cd_result.feature_memory_bytes < full_result.feature_memory_bytes
    weights = distilled.channel_weights
    assert weights.shape == (channels,) and (weights >= 0).all()
    assert set(np.flatnonzero(weights)) == set(distilled.kept_channels)


class _Spy(FeatureExtractor):
    """HOG/colour features that record how many channels each call computed."""

    def __init__(self) -> None:
        self.inner = HOGColorFeatures()
        self.channels, self.cell_size, self.channel_names = self.inner.channels, 4, self.inner.channel_names
        self.requests: list[int] = []

    def _extract(self, patch, channels):
        self.requests.append(len(channels))
        return self.inner._extract(patch, channels)


def test_dropped_channels_are_not_extracted_between_selections():
    spy = _Spy()
    tracker = DCFTracker(spy, channel_distillation=ChannelDistillation(keep=6, period=5))
    seq = make_sequence("occlusion", n_frames=12, size=(128, 128), seed=2)
    tracker.initialize(seq.frames[0], seq.ground_truth[0])
    spy.requests.clear()
    tracker.track(seq.frames[1])  # frame 1 is no selection frame: 3 scales + 1 training sample, kept channels only
    assert spy.requests == [len(tracker.kept_channels)] * 4 and len(tracker.kept_channels) <= 6


class _NoisyChannels(FeatureExtractor):
    """Channels 0-5: HOG/colour channels of the patch; channels 6-17: fresh noise at every call (uninformative)."""

    def __init__(self) -> None:
        self.inner = HOGColorFeatures()
        self.channels, self.cell_size = 18, 4
        self.channel_names = [str(k) for k in range(18)]
        self.rng = np.random.default_rng(0)

    def _extract(self, patch, channels):
        real = self.inner._extract(patch, np.array([0, 4, 9, 13, 27, 28]))
        noise = self.rng.normal(0, real.std() * 2, size=(*real.shape[:2], 12)).astype(np.float32)
        return np.concatenate([real, noise], axis=2)[:, :, channels]


def test_distillation_keeps_informative_channels_over_noise():
    seq = make_sequence("scale", n_frames=3, size=(128, 128), seed=4)
    tracker = DCFTracker(_NoisyChannels(), channel_distillation=ChannelDistillation(keep=4))
    tracker.initialize(seq.frames[0], seq.ground_truth[0])
    # noise channels fit the first frame as well as real ones but do not generalise to the held-out views
    assert set(tracker.kept_channels) <= set(range(6)), tracker.kept_channels


@pytest.mark.parametrize(
    ("frame", "box", "message"),
    [
        (np.zeros((64, 64, 3), np.uint8), (100, 10, 10, 10), "outside"),
        (np.zeros((64, 64, 3), np.uint8), (10, 10, 0, 10), "positive width"),
        (np.zeros((64, 64, 3), np.uint8), (10, np.nan, 10, 10), "finite"),
        (np.zeros((64, 64, 4), np.uint8), (10, 10, 10, 10), "HxWx3"),
        (np.full((64, 64, 3), np.nan), (10, 10, 10, 10), "NaN"),
        (np.zeros((64, 64, 3), np.int32), (10, 10, 10, 10), "uint8 or float"),
    ],
)
@pytest.mark.parametrize("make", [DCFTracker, ECOTracker, lambda: OpenCVTracker("KCF")])
def test_trackers_reject_bad_input(make, frame, box, message):
    with pytest.raises(ValueError, match=message):
        make().initialize(frame, box)


def test_track_before_initialize_and_frame_size_change_are_errors():
    tracker = DCFTracker()
    with pytest.raises(RuntimeError, match="initialize"):
        tracker.track(np.zeros((64, 64, 3), np.uint8))
    tracker.initialize(np.zeros((64, 64, 3), np.uint8), (20, 20, 16, 16))
    with pytest.raises(ValueError, match="differs from the first frame"):
        tracker.track(np.zeros((32, 64, 3), np.uint8))


def test_grey_and_float_frames_track_like_uint8():
    seq = make_sequence("illumination", n_frames=6, size=(96, 96), seed=1)
    reference, grey_float = DCFTracker(), DCFTracker()
    reference.initialize(seq.frames[0], seq.ground_truth[0])
    grey_float.initialize(seq.frames[0].astype(np.float32) / 255.0, seq.ground_truth[0])  # float RGB in 0..1
    for frame in seq.frames[1:]:
        expected = reference.track(frame)
        got = grey_float.track(frame.astype(np.float32) / 255.0)
    assert np.allclose(got, expected, atol=0.5)
    grey = DCFTracker()
    grey.initialize(seq.frames[0].mean(axis=2), seq.ground_truth[0])  # H x W grey, float 0..255
    assert np.all(np.isfinite(grey.track(seq.frames[1].mean(axis=2))))


def test_distillation_settings_are_validated():
    with pytest.raises(ValueError, match="keep_ratio"):
        ChannelDistillation(keep_ratio=0.0)
    with pytest.raises(ValueError, match="mu"):
        ChannelDistillation(mu=1.5)
    assert ChannelDistillation(keep=100).n_keep(40) == 40


def test_hog_subset_equals_slice_of_full():
    patch = make_sequence("mixed", n_frames=2, seed=0).frames[0][:96, :112]
    features = HOGColorFeatures()
    full = features(patch)
    assert full.shape == (24, 28, 40) and full.dtype == np.float32
    for channels in ([3], [20, 2, 39], list(range(0, 40, 3))):
        assert np.allclose(features.extract(patch, channels), full[:, :, channels], atol=1e-6)
    with pytest.raises(ValueError, match="0..39"):
        features.extract(patch, [40])


def test_cnn_features_convolve_only_selected_filters():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 24, 3, padding=1), nn.BatchNorm2d(24),
        nn.ReLU(),
    ).eval()
    features = CNNFeatures(net)
    assert features.channels == 24 and features.cell_size == 2 and features.subset_is_cheap
    patch = np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    full = features(patch)
    assert full.shape == (20, 24, 24)
    assert np.allclose(features.extract(patch, [5, 0, 17]), full[:, :, [5, 0, 17]], atol=1e-5)
    # a CNN feature tracker runs end to end with distillation
    seq = make_sequence("distractor", n_frames=6, size=(96, 96), seed=5)
    tracker = DCFTracker(features, channel_distillation=ChannelDistillation(keep=6))
    result = run_sequence(tracker, seq)
    assert (result.channels_used <= 6).all()


def test_torchvision_features_never_download():
    checkpoint = Path(torch.hub.get_dir()) / "checkpoints" / "vgg16-397923af.pth"
    if checkpoint.exists():
        pytest.skip("vgg16 weights are cached here; the missing-weights error cannot be provoked")
    with pytest.raises(RuntimeError, match="not in the local cache.*vgg16-397923af.pth"):
        torchvision_features("vgg16")


@pytest.mark.parametrize("kind", ["KCF", "CSRT", "MOSSE"])
def test_opencv_trackers_share_the_interface(kind):
    short = make_sequence("distractor", n_frames=15, size=(160, 160), seed=5)
    result = run_sequence(OpenCVTracker(kind), short)
    assert result.boxes.shape == (15, 4) and result.tracker == f"OpenCV-{kind}"
    assert np.isfinite(result.boxes).all()
    if kind == "CSRT":  # KCF and MOSSE report failure on this sequence and keep their last box (OpenCV's choice)
        assert evaluate(result.boxes, short.ground_truth).success_auc > static_auc(short) + 0.3
