"""The embedded face-forgery data: faces, masks inside the face, identity splits, determinism, real-layout loader."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from skimage import data as skdata

from workbench.data.faces import (
    ASTRONAUT_FACE_BOX,
    MANIPULATION_KINDS,
    ForgeryParams,
    detect_face_box,
    face_from_photo,
    face_mask,
    load_forgery_faces,
    load_frame_folder,
    make_forgery,
    real_faces,
    sample_forgery_params,
)


@pytest.fixture(scope="module")
def train_set():
    return load_forgery_faces("train", n_per_identity=2)


def test_real_faces_are_the_lfw_faces_plus_the_astronaut():
    faces, ids, sources = real_faces(32)
    assert faces.shape == (101, 32, 32) and faces.min() >= 0 and faces.max() <= 1
    assert sources[0] == "lfw_subset[0]" and sources[-1] == "astronaut"
    assert ids[-1] not in ids[:-1]  # the astronaut is her own identity


def test_haar_cascade_finds_the_recorded_astronaut_box():
    x, y, w, h = detect_face_box(skdata.astronaut())
    bx, by, bw, bh = ASTRONAUT_FACE_BOX
    assert abs(x - bx) <= 4 and abs(y - by) <= 4 and abs(w - bw) <= 6 and abs(h - bh) <= 6
    assert np.allclose(face_from_photo(skdata.astronaut()), real_faces(32)[0][-1], atol=0.05)


def test_balanced_labels_kinds_and_masks_only_on_fakes(train_set):
    assert train_set.images.shape[1:] == (1, 32, 32)
    assert int(train_set.labels.sum()) * 2 == len(train_set)
    assert set(train_set.kinds) == {"real", *MANIPULATION_KINDS}
    real = train_set.labels == 0
    assert train_set.masks[real].abs().sum() == 0
    assert (train_set.masks[~real].flatten(1).amax(1) > 0.5).all()


def test_masks_lie_inside_the_face(train_set):
    outside = torch.from_numpy(1 - face_mask(32))
    assert float((train_set.masks[:, 0] * outside).max()) == 0.0


def test_fakes_differ_from_their_source_only_inside_the_mask():
    faces, _, _ = real_faces(32)
    rng = np.random.default_rng(3)
    for kind in MANIPULATION_KINDS:
        fake, mask = make_forgery(faces[0], sample_forgery_params(kind, rng), donor=faces[5])
        diff = np.abs(fake - faces[0])
        assert diff[mask == 0].max() == 0.0
        assert diff[mask > 0.5].mean() > 0.01, kind


def test_splits_are_by_identity():
    splits = {s: set(load_forgery_faces(s, n_per_identity=1).identities.tolist()) for s in ("train", "val", "test")}
    assert not splits["train"] & splits["val"] and not splits["train"] & splits["test"]
    assert not splits["val"] & splits["test"]
    assert all(splits.values())


def test_same_seed_same_data_other_seed_other_data():
    a, b = load_forgery_faces("val", n_per_identity=2, seed=1), load_forgery_faces("val", n_per_identity=2, seed=1)
    c = load_forgery_faces("val", n_per_identity=2, seed=2)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks) and a.kinds == b.kinds
    assert a.images.shape != c.images.shape or not torch.equal(a.images, c.images)


def test_with_kinds_keeps_reals_and_the_named_fakes(train_set):
    sub = train_set.with_kinds(["swap"])
    assert set(sub.kinds) == {"real", "swap"}
    assert int((sub.labels == 0).sum()) == int((train_set.labels == 0).sum())


def test_bad_inputs_get_clear_errors():
    faces, _, _ = real_faces(32)
    params = ForgeryParams(kind="color", region="mouth", brightness=0.2)
    with pytest.raises(ValueError, match="no face found"):
        face_from_photo(skdata.coffee())
    with pytest.raises(ValueError, match="grey image"):
        face_from_photo(skdata.camera())
    nan_face = faces[0].copy()
    nan_face[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        make_forgery(nan_face, params)
    with pytest.raises(ValueError, match="donor must be 32x32"):
        make_forgery(faces[0], ForgeryParams(kind="swap", region="mouth"), donor=np.zeros((25, 25), np.float32))
    with pytest.raises(ValueError, match="grey \\(H, W\\)"):
        make_forgery(np.zeros((32, 32, 3), np.float32), params)
    with pytest.raises(ValueError, match="unknown manipulation kind"):
        sample_forgery_params("morph", np.random.default_rng(0))
    with pytest.raises(ValueError, match="split must be"):
        load_forgery_faces("dev")


def _write_frames(folder, n=2, value=100):
    folder.mkdir(parents=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((40, 40, 3), value + 10 * i, np.uint8))


def test_faceforensics_layout_is_read_with_identities_of_the_target(tmp_path):
    _write_frames(tmp_path / "original_sequences/youtube/c23/frames/000")
    _write_frames(tmp_path / "original_sequences/youtube/c23/frames/001")
    _write_frames(tmp_path / "manipulated_sequences/Deepfakes/c23/frames/000_001", value=30)
    data = load_frame_folder(tmp_path, size=16)
    assert data.images.shape == (6, 3, 16, 16) and data.labels.tolist() == [0, 0, 0, 0, 1, 1]
    assert set(data.kinds) == {"real", "Deepfakes"} and not data.has_masks
    assert data.identities[4] == data.identities[0]  # the fake of target 000 belongs to person 000


def test_celebdf_layout_and_layout_errors_name_the_folder(tmp_path):
    _write_frames(tmp_path / "Celeb-real/id0_0000")
    _write_frames(tmp_path / "Celeb-synthesis/id0_id1_0000")
    data = load_frame_folder(tmp_path, size=16, channels=1)
    assert data.images.shape == (4, 1, 16, 16) and data.labels.tolist() == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="neither a FaceForensics"):
        load_frame_folder(tmp_path / "Celeb-real")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_frame_folder(tmp_path / "missing")
    (tmp_path / "ff/original_sequences").mkdir(parents=True)
    with pytest.raises(ValueError, match="original_sequences/youtube/c23/frames"):
        load_frame_folder(tmp_path / "ff")
