"""The face front end: dlib's landmarks land on the eyes and mouth, aligned crops put them at the template, SBI's
hull masks cover the face, colour videos, the Haar fallback warns, and bad input is named."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from workbench.data import face_front
from workbench.data.clips import NoFaceError, read_video
from workbench.data.face_front import (
    TEMPLATE,
    FaceFallbackWarning,
    align_face,
    crop_face,
    crop_landmarks,
    dlib_available,
    find_face,
    key_points,
    track_faces,
)
from workbench.data.face_sbi import load_face_folder, load_sbi_faces, self_blend
from workbench.data.sbi_masks import HULL_KINDS, hull_mask, hull_region
from workbench.inputs import load_face


def _realdata(name: str) -> Path | None:
    """``shared/realdata/<name>`` beside the checkout or any folder above it (worktrees sit deeper)."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "realdata" / name
        if candidate.is_dir():
            return candidate
    return None


needs_dlib = pytest.mark.skipif(not dlib_available(), reason="the faces extra (dlib, face_recognition_models) is off")
#: The astronaut's eye centres and mouth centre (x, y), read off the photo by eye.
ASTRONAUT_EYES_MOUTH = np.array([[204, 100], [246, 104], [222, 145]], np.float32)


@pytest.fixture
def no_dlib(monkeypatch):
    """dlib made unimportable, as on a machine without the faces extra."""
    monkeypatch.setitem(sys.modules, "dlib", None)
    face_front._dlib_models.cache_clear()
    yield
    face_front._dlib_models.cache_clear()


def _write_video(path: Path, frames: list[np.ndarray]) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, frames[0].shape[1::-1])
    for rgb in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _astronaut_frames(n: int = 10) -> list[np.ndarray]:
    face = cv2.resize(skdata.astronaut()[:320, 64:384], (192, 192))
    return [np.roll(face, (k % 4, k % 3), axis=(0, 1)) for k in range(n)]


@needs_dlib
def test_landmarks_land_on_the_astronauts_eyes_and_mouth():
    face = find_face(skdata.astronaut())
    assert face.finder == "dlib" and face.landmarks.shape == (68, 2)
    assert np.abs(key_points(face.landmarks) - ASTRONAUT_EYES_MOUTH).max() < 5


@needs_dlib
@pytest.mark.parametrize("size", [32, 64, 160, 256])
def test_alignment_puts_the_eyes_and_mouth_at_the_template(size):
    """Landmarks found anew on the aligned crop (not the ones the warp was made from) sit at TEMPLATE."""
    astronaut = skdata.astronaut()
    crop = align_face(astronaut, find_face(astronaut).landmarks, size)
    assert crop.shape == (size, size, 3) and crop.dtype == np.float32 and 0 <= crop.min() and crop.max() <= 1
    big = cv2.resize((crop * 255).astype(np.uint8), (256, 256), interpolation=cv2.INTER_CUBIC)
    found = key_points(find_face(big).landmarks) / 256
    assert np.abs(found - TEMPLATE).max() < (0.05 if size >= 64 else 0.08)


@needs_dlib
def test_aligned_real_photos_agree_on_where_the_eyes_are():
    folder = _realdata("faces_identity")
    if folder is None:
        pytest.skip("../shared/realdata/faces_identity is absent")
    faces = load_face_folder(folder, 96, skip_no_face=True, aligner="dlib")
    assert len(faces.skipped) <= 1 and faces.landmarks.shape == (len(faces.faces), 68, 2)
    eyes = np.stack([key_points(points) for points in faces.landmarks]) / 96
    assert np.abs(np.median(eyes, 0) - TEMPLATE).max() < 0.02
    # the eyes are level: the crops are upright, whatever the head's roll in the photo
    assert np.median(np.abs(eyes[:, 0, 1] - eyes[:, 1, 1])) < 0.02


@needs_dlib
def test_hull_mask_covers_the_face_and_not_the_corners():
    astronaut = skdata.astronaut()
    face = find_face(astronaut)
    points = crop_landmarks(face, 128)
    nose, brows = points[30].round().astype(int), int(points[17:27, 1].min())
    rng = np.random.default_rng(0)
    for kind in HULL_KINDS:
        region = hull_region(points, 128, kind, rng)
        assert region[nose[1], nose[0]] == 1 and region[:8, :8].sum() == 0 and region[-8:, -8:].sum() == 0
    masks = np.stack([hull_mask(points, 128, rng) for _ in range(30)])
    assert 0 <= masks.min() and masks.max() <= 1
    # full strength at the nose, except for the odd random subset of face parts ("components") that leaves it out
    assert (masks[:, nose[1], nose[0]] >= 0.9 * masks.max(axis=(1, 2))).mean() >= 0.9
    corners = np.concatenate([masks[:, :12, :12], masks[:, :12, -12:], masks[:, -12:, :12], masks[:, -12:, -12:]])
    assert corners.max() < 0.02
    assert masks[:, :brows - 20].max() < 0.02  # the hair well above the eyebrows is never blended


@needs_dlib
def test_self_blend_with_the_hull_changes_the_face_inside_the_mask_only():
    astronaut = skdata.astronaut()
    found = find_face(astronaut)
    face, points = crop_face(astronaut, found, 96), crop_landmarks(found, 96)
    fake, mask = self_blend(face, np.random.default_rng(3), "hull", points)
    outside = mask < 1e-3
    assert outside[:10, :10].all() and not outside[int(points[30, 1]), int(points[30, 0])]
    assert np.abs(fake - face)[outside].max() < 1e-3 and np.abs(fake - face)[~outside].mean() > 0.005
    with pytest.raises(ValueError, match="68 landmarks"):
        self_blend(face, np.random.default_rng(0), "hull", None)


@needs_dlib
def test_sbi_set_with_hull_masks_from_the_embedded_faces():
    data = load_sbi_faces("val", 64, 1, mask="hull")
    fake = data.masks[data.labels == 1][:, 0].numpy()
    assert fake.shape[0] > 0 and (fake.max(axis=(1, 2)) > 0.2).all()
    assert fake[:, :6, :6].max() < 0.02 and fake[:, 28:36, 28:36].mean() > 0.2  # the face centre, not the corners
    assert data.masks[data.labels == 0].abs().sum() == 0
    with pytest.raises(ValueError, match="mask must be one of"):
        load_sbi_faces("val", 64, 1, mask="ellipse")


@needs_dlib
def test_colour_video_is_read_aligned_at_the_models_size(tmp_path):
    path = _write_video(tmp_path / "talk.mp4", _astronaut_frames())
    clip = read_video(path, n_frames=6, size=64, channels=3, aligner="dlib")
    assert clip.shape == (6, 3, 64, 64) and clip.dtype == np.float32
    assert np.abs(clip[:, 0] - clip[:, 2]).mean() > 0.03  # colour, not grey repeated
    grey = read_video(path, n_frames=6, size=32, aligner="dlib")
    assert grey.shape == (6, 1, 32, 32)
    assert read_video(path, n_frames=6, size=48, channels=3).shape == (6, 3, 48, 48)  # the Haar crops in colour


def test_grey_video_for_a_colour_model_is_named(tmp_path):
    frames = [np.repeat(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)[..., None], 3, 2) for f in _astronaut_frames(6)]
    for k, frame in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"{k:03d}.png"), frame)
    with pytest.raises(ValueError, match=f"{tmp_path.name} is a grey video"):
        read_video(tmp_path, n_frames=4, channels=3)
    assert read_video(tmp_path, n_frames=4).shape == (4, 1, 32, 32)  # fine for a grey model
    with pytest.raises(ValueError, match="channels must be 1"):
        read_video(tmp_path, n_frames=4, channels=2)


@needs_dlib
def test_video_without_any_face_is_named_with_dlib(tmp_path):
    rng = np.random.default_rng(0)
    path = _write_video(tmp_path / "static.mp4", [rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
                                                  for _ in range(6)])
    with pytest.raises(NoFaceError, match="static.mp4"):
        read_video(path, n_frames=4, channels=3, aligner="dlib")
    with pytest.raises(ValueError, match="aligner must be one of"):
        read_video(path, aligner="mtcnn")


@needs_dlib
def test_a_frame_without_a_face_takes_its_neighbours_box():
    frames = _astronaut_frames(5)
    frames[2] = np.full_like(frames[2], 128)  # a blank frame in the middle of the shot
    faces = track_faces(frames)
    assert [f.finder for f in faces].count("nearest-frame") == 1 and faces[2].finder == "nearest-frame"
    assert all(f.landmarks is not None for f in faces)


def test_without_dlib_the_haar_fallback_warns_what_is_lost(no_dlib, tmp_path):
    assert not dlib_available()
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR))
    with pytest.warns(FaceFallbackWarning, match="astronaut.png.*Haar.*no 68 landmarks.*faces"):
        face = load_face(photo, 3, 64, aligner="dlib")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(face.numpy(), load_face(photo, 3, 64).numpy())  # the default asks for no dlib
    with pytest.warns(FaceFallbackWarning):
        assert find_face(skdata.astronaut(), "dlib").finder == "haar"
    with pytest.raises(ImportError, match="hull.*faces"):
        load_sbi_faces("val", 64, 1, mask="hull")


@needs_dlib
def test_load_face_aligned_on_landmarks(tmp_path):
    photo = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR))
    face = load_face(photo, 3, 128, aligner="dlib").numpy().transpose(1, 2, 0)
    big = cv2.resize((face * 255).astype(np.uint8), (256, 256), interpolation=cv2.INTER_CUBIC)
    assert np.abs(key_points(find_face(big).landmarks) / 256 - TEMPLATE).max() < 0.05
    assert load_face(photo, 1, 32, aligner="dlib").shape == (1, 32, 32)
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((120, 160, 3), 90, np.uint8))
    with pytest.raises(ValueError, match="wall.png: no face found"):
        load_face(blank, 3, 64, aligner="dlib")


@needs_dlib
def test_real_videos_have_a_face_in_every_sampled_frame():
    folder = _realdata("face_videos")
    if folder is None:
        pytest.skip("../shared/realdata/face_videos is absent")
    clip = read_video(folder / "grid_bbaf2n.mp4", n_frames=6, size=64, channels=3, aligner="dlib")
    assert clip.shape == (6, 3, 64, 64)
    # a talking head, aligned: the frames agree with each other far more than with a shifted copy
    still = np.abs(clip[1:] - clip[:-1]).mean()
    shifted = np.abs(clip - np.roll(clip, 8, axis=3)).mean()
    assert still < 0.5 * shifted
