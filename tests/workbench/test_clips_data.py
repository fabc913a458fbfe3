"""The embedded forgery clips and the video reader (real .mp4 written here, frame folder, corrupt file, no face)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from skimage import data as skdata

from workbench.data.clips import NoFaceError, load_forgery_clips, read_video

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_clips_have_smooth_motion_flickering_fakes_masks_and_identity_splits():
    train = load_forgery_clips("train", n_per_identity=1)
    test = load_forgery_clips("test", n_per_identity=1)
    assert train.clips.shape[1:] == (8, 1, 32, 32) and train.masks.shape[1:] == (8, 32, 32)
    assert set(train.identities.tolist()).isdisjoint(test.identities.tolist())
    real, fake = train.labels == 0, train.labels == 1
    assert train.masks[real].abs().sum() == 0 and (train.masks[fake].flatten(1).amax(1) > 0.3).all()
    # the manipulation flickers: the masked region changes more from frame to frame in fakes than the same region in
    # real clips of the same faces (smooth motion only)
    diff = (train.clips[:, 1:] - train.clips[:, :-1]).abs()[:, :, 0]
    inside = train.masks[fake][:, 1:] > 0.3
    fake_flicker = diff[fake][inside].mean()
    real_flicker = diff[real][inside].mean()
    assert fake_flicker > 1.2 * real_flicker
    again = load_forgery_clips("train", n_per_identity=1)
    assert torch.equal(again.clips, train.clips)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="split"):
        load_forgery_clips("nope")
    with pytest.raises(ValueError, match="kinds"):
        load_forgery_clips("train", kinds=("morph",))


def _face_frames(n: int = 12) -> list[np.ndarray]:
    """Frames of the astronaut photo (a Haar-detectable face) drifting a few pixels, BGR 192x192."""
    bgr = cv2.cvtColor(skdata.astronaut()[:320, 64:384], cv2.COLOR_RGB2BGR)
    bgr = cv2.resize(bgr, (192, 192))
    return [np.roll(bgr, (k % 4, k % 3), axis=(0, 1)) for k in range(n)]


def test_reads_an_mp4_written_by_opencv(tmp_path):
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (192, 192))
    assert writer.isOpened()
    for frame in _face_frames():
        writer.write(frame)
    writer.release()
    clip = read_video(path, n_frames=8, size=32)
    assert clip.shape == (8, 1, 32, 32) and clip.dtype == np.float32
    assert 0 <= clip.min() and clip.max() <= 1 and clip.std() > 0.05


def test_reads_a_frame_folder(tmp_path):
    for k, frame in enumerate(_face_frames(10)):
        cv2.imwrite(str(tmp_path / f"{k:03d}.png"), frame)
    clip = read_video(tmp_path, n_frames=4, size=24)
    assert clip.shape == (4, 1, 24, 24)


def test_corrupt_video_is_named(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 20)
    with pytest.raises(ValueError, match="broken.mp4"):
        read_video(bad)


def test_clip_without_a_face_is_reported(tmp_path):
    rng = np.random.default_rng(0)
    for k in range(6):
        cv2.imwrite(str(tmp_path / f"{k}.png"), rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))
    with pytest.raises(NoFaceError, match=str(tmp_path.name)):
        read_video(tmp_path, n_frames=4)


def test_face_and_clip_sets_share_subset_kinds_and_concat():
    """ForgerySet and ClipSet use one implementation (workbench.data.forgery_sets) that keeps every field aligned."""
    from workbench.data.faces import load_forgery_faces
    from workbench.data.forgery_sets import ClipSet, ForgerySet, LabelledSamples

    clips = load_forgery_clips("val", n_per_identity=1, frames=2)
    faces = load_forgery_faces("val", n_per_identity=1)
    assert issubclass(ClipSet, LabelledSamples) and issubclass(ForgerySet, LabelledSamples)
    for data, samples in ((clips, "clips"), (faces, "images")):
        part = data.subset(data.labels == 1)
        assert len(part) == int(data.labels.sum()) and set(part.kinds) <= set(data.kinds) - {"real"}
        assert torch.equal(getattr(part, samples), getattr(data, samples)[data.labels == 1])
        assert torch.equal(part.identities, data.identities[data.labels == 1])
        swaps = data.with_kinds(["swap"])
        assert set(swaps.kinds) == {"real", "swap"}
        both = type(data).concat([part, part])
        assert len(both) == 2 * len(part) and both.kinds == part.kinds * 2
        fake = int(torch.nonzero(data.labels == 1)[0])
        real = data.nearest_real(fake)
        assert data.labels[real] == 0 and data.identities[real] == data.identities[fake]
