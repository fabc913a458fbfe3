"""A user's face photo read by every HORKD stream: the face found and aligned, each student's view made as its
training views were, every stream's top-k, what the models were trained on; bad photos refused with the file named.

The streams are untrained networks of the setting's architectures: what is tested is the reading (which streams,
which views, which names, which errors), not accuracy."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from workbench.data.face_front import NoFaceError
from workbench.horkd import (
    METHODS,
    HorkdConfig,
    HorkdModels,
    build_student,
    build_teacher,
    load_horkd_data,
    low_res_input,
    read_face_photo,
    trained_on,
)
from workbench.train import one_thread

FACES_DEV = next((p / "shared" / "realdata" / "faces_dev" for p in Path(__file__).resolve().parents
                  if (p / "shared" / "realdata" / "faces_dev").is_dir()), None)
FACES_IDENTITY = next((p / "shared" / "realdata" / "faces_identity" for p in Path(__file__).resolve().parents
                       if (p / "shared" / "realdata" / "faces_identity").is_dir()), None)
PEOPLE = ("id06", "id07", "id08", "id09", "id10")  # the five development people with the fewest photos


def untrained_models(config: HorkdConfig) -> HorkdModels:
    """Every stream of ``config`` (teacher, an assistant and each method's student per trained resolution)."""
    torch.manual_seed(0)
    students = {(m, r): build_student(config, seed=i).eval() for i, m in enumerate(METHODS)
                for r in config.resolutions}
    return HorkdModels(config, build_teacher(config).eval(),
                       {r: build_teacher(config, seed=r).eval() for r in config.resolutions}, students,
                       load_horkd_data(config)[1])


@pytest.fixture(scope="module")
def bank_models() -> HorkdModels:
    with one_thread():
        return untrained_models(HorkdConfig.smoke())


@pytest.fixture(scope="module")
def face_photo() -> Path:
    if FACES_DEV is None:
        pytest.skip("../shared/realdata/faces_dev is absent")
    return FACES_DEV / "img1.png"


def test_real_face_gets_every_stream_at_every_resolution_with_sorted_probabilities(bank_models, face_photo):
    with one_thread():
        reading = read_face_photo(bank_models, face_photo, k=3)
    config = bank_models.config
    assert reading.finder in ("dlib", "haar") and reading.source == str(face_photo)
    assert reading.face.shape == (3, config.hr_size, config.hr_size)
    assert 0 <= float(reading.face.min()) and float(reading.face.max()) <= 1 and float(reading.face.std()) > 0.05
    assert set(reading.views) == {16, 8}
    for r, view in reading.views.items():  # the students' own view of the aligned face, not a new resize
        assert torch.equal(view, low_res_input(reading.face[None], r)[0])
    expected = {("teacher", config.hr_size)} | {(s, r) for r in (16, 8) for s in ("assistant", *METHODS)}
    assert {(a.stream, a.resolution) for a in reading.answers} == expected and len(reading.answers) == len(expected)
    for answer in reading.answers:
        probs = [p for _, p in answer.top]
        assert len(answer.top) == 3 and all(name in config.classes for name, _ in answer.top)
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    scratch8 = bank_models.students[("scratch", 8)]
    with torch.no_grad():
        p = torch.softmax(scratch8(reading.views[8][None]), 1)[0]
    assert reading.answer("scratch", 8).top[0] == (config.classes[int(p.argmax())], pytest.approx(float(p.max())))


def test_a_photo_array_reads_as_the_file_does(bank_models, face_photo):
    rgb = cv2.cvtColor(cv2.imread(str(face_photo)), cv2.COLOR_BGR2RGB)
    with one_thread():
        from_file, from_array = read_face_photo(bank_models, face_photo), read_face_photo(bank_models, rgb)
    assert torch.equal(from_file.face, from_array.face) and from_file.answers == from_array.answers
    assert "array" in from_array.source


def test_photo_without_a_face_names_the_file(bank_models, tmp_path):
    grey = tmp_path / "flat_grey.png"
    cv2.imwrite(str(grey), np.full((120, 160, 3), 128, np.uint8))
    with pytest.raises(NoFaceError, match="flat_grey.png.*no face found"):
        read_face_photo(bank_models, grey)


def test_missing_and_unreadable_files_are_named(bank_models, tmp_path):
    missing = tmp_path / "nobody.jpg"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        read_face_photo(bank_models, missing)
    notes = tmp_path / "notes.png"
    notes.write_text("not an image")
    with pytest.raises(ValueError, match="notes.png: unreadable image"):
        read_face_photo(bank_models, notes)


def test_an_array_of_another_shape_says_the_expected_shape(bank_models):
    with pytest.raises(ValueError, match=r"expected a photo array of shape \(H, W, 3\).*got shape \(3, 64, 64\)"):
        read_face_photo(bank_models, np.zeros((3, 64, 64), np.uint8))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        read_face_photo(bank_models, np.full((64, 64, 3), 2.5))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        read_face_photo(bank_models, np.zeros((64, 64, 3), np.uint8), k=0)


def test_trained_on_says_what_the_models_know(tmp_path):
    bank = trained_on(HorkdConfig.full())
    assert "44-class patch bank, not faces" in bank and "not who it is" in bank
    assert "10-class colour patch set, not faces" in trained_on(HorkdConfig(task="patches"))
    if FACES_IDENTITY is None:
        pytest.skip("../shared/realdata/faces_identity is absent")
    for name in PEOPLE:
        (tmp_path / name).symlink_to(FACES_IDENTITY / name, target_is_directory=True)
    config = HorkdConfig.faces(tmp_path, smoke=True)
    faces = trained_on(config)
    assert "not faces" not in faces and str(tmp_path) in faces and "whole photos" in faces
    assert f"{len(config.classes)} people" in faces and all(name in faces for name in config.classes)
    assert all(name not in faces for name in load_horkd_data(config)[1].classes)  # the unseen people are not named
    if FACES_DEV is not None:  # a faces model answers with the names of its training people
        with one_thread():
            reading = read_face_photo(untrained_models(config), FACES_DEV / "img1.png")
        assert reading.trained_on == faces
        assert all(name in config.classes for a in reading.answers for name, _ in a.top)


def test_models_trained_on_dlib_chips_read_the_face_as_their_training_faces_were_made(tmp_path, monkeypatch):
    """Aligned-faces models were fed dlib's own chips (``load_aligned_identities``): the photo's face is that chip
    at HR, found by dlib; Haar framing is refused for them, not silently fed."""
    from workbench.data.face_front import dlib_available
    from workbench.models.face_id import CHIP_SIZE, align_face, read_photo

    if FACES_IDENTITY is None or FACES_DEV is None or not dlib_available():
        pytest.skip("needs dlib and ../shared/realdata/faces_identity and faces_dev")
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "people"
    root.mkdir()
    for name in PEOPLE:
        (root / name).symlink_to(FACES_IDENTITY / name, target_is_directory=True)
    config = HorkdConfig.faces(root, smoke=True, aligned=True)
    with one_thread():
        models = untrained_models(config)
        reading = read_face_photo(models, FACES_DEV / "img1.png")
    chip = torch.from_numpy(align_face(read_photo(FACES_DEV / "img1.png"), CHIP_SIZE)).permute(2, 0, 1) / 255.0
    made = torch.nn.functional.interpolate(chip[None].float(), size=(32, 32), mode="bilinear", antialias=True,
                                           align_corners=False)[0].clamp(0, 1)
    assert reading.finder == "dlib" and torch.allclose(reading.face, made, atol=1e-6)
    assert "aligned by dlib's landmarks" in reading.trained_on
    with pytest.raises(ValueError, match="dlib-aligned face chips"):
        read_face_photo(models, FACES_DEV / "img1.png", aligner="haar")
