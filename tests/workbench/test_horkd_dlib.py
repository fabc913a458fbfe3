"""HORKD with a real face teacher: dlib's frozen network on aligned HR faces teaches LR students; its descriptors are
computed once per image and view; bad face folders are refused with the folder or file named."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch
from skimage import data as skdata
from skimage import io as skio

from workbench.cache import config_key
from workbench.horkd import HorkdConfig, HorkdStudentRecipe, evaluate_resolutions, load_horkd_data, teacher_model
from workbench.horkd import dlib_teacher as dlib_module
from workbench.train import one_thread

HAS_DLIB = bool(importlib.util.find_spec("dlib") and importlib.util.find_spec("face_recognition_models"))
needs_dlib = pytest.mark.skipif(not HAS_DLIB, reason="dlib / face_recognition_models not installed (faces extra)")
FACES_IDENTITY = next((p / "shared" / "realdata" / "faces_identity" for p in Path(__file__).resolve().parents
                       if (p / "shared" / "realdata" / "faces_identity").is_dir()), None)
needs_faces = pytest.mark.skipif(FACES_IDENTITY is None, reason="../shared/realdata/faces_identity is absent")
#: the five development people with the fewest photos (5, 5, 5, 4, 3 and 4): a split of 3 training, 2 unseen people
SMALL_PEOPLE = ("id06", "id07", "id08", "id09", "id10")


@pytest.fixture(scope="module")
def dlib_run(tmp_path_factory):
    """Five real people (linked, not copied), a smoke dlib-teacher config at 8x8, the images dlib's network was run
    on while a teacher, an assistant and two students were trained and scored, and the rows."""
    if not HAS_DLIB or FACES_IDENTITY is None:
        pytest.skip("needs dlib and ../shared/realdata/faces_identity")
    mp = pytest.MonkeyPatch()
    mp.setenv("WORKBENCH_CACHE", str(tmp_path_factory.mktemp("dlib_cache")))
    root = tmp_path_factory.mktemp("people")
    for name in SMALL_PEOPLE:
        (root / name).symlink_to(FACES_IDENTITY / name, target_is_directory=True)
    from workbench.models import face_id

    seen: list[int] = []
    real = face_id.face_descriptors

    def counting(crops):
        seen.append(len(crops))
        return real(crops)

    mp.setattr(face_id, "face_descriptors", counting)
    config = HorkdConfig.faces(root, smoke=True, teacher="dlib").with_(resolutions=(8,))
    with one_thread():
        rows = evaluate_resolutions(config, seeds=(0,), methods=("hinton", "horkd"), device="cpu", progress=False,
                                    teacher_resolutions=(8, config.hr_size))
        yield config, rows, seen, counting
    mp.undo()


@needs_dlib
@needs_faces
def test_dlib_descriptors_are_computed_once_per_image_and_view(dlib_run):
    config, _, seen, _ = dlib_run
    train, test = load_horkd_data(config)
    # the distinct (image, view) pairs: training faces and their flips at HR and up-sampled from 8x8, unseen faces
    # at HR and up-sampled from 8x8; the students' many steps added none
    assert sum(seen) == 2 * len(train) + 2 * len(test), (seen, len(train), len(test))
    calls = len(seen)
    with one_thread():
        evaluate_resolutions(config, seeds=(0,), methods=("hinton", "horkd"), device="cpu", progress=False,
                             teacher_resolutions=(8, config.hr_size))
        assert len(seen) == calls  # the same run again: all from the memo
        dlib_module._MEMO.clear()  # a new process: the model cache's descriptor file
        teacher = teacher_model(config, device="cpu", progress=False)
        assert len(seen) == calls and teacher.workbench_meta["train_acc"] >= 0.9


@needs_dlib
@needs_faces
def test_dlib_teacher_trains_smoke_students_scored_on_unseen_people(dlib_run):
    config, rows, _, _ = dlib_run
    train, test = load_horkd_data(config)
    assert train.images.shape[-1] == 150 and not set(train.classes) & set(test.classes)
    teacher = teacher_model(config, device="cpu", progress=False)
    logits = teacher(test.images[:3])
    assert logits.shape == (3, len(train.classes)) and not any(p.requires_grad for p in teacher.parameters())
    assert {(r["method"], r["resolution"]) for r in rows} == {
        ("teacher_upsampled", 8), ("teacher_upsampled", 150), ("assistant", 8), ("hinton", 8), ("horkd", 8)}
    for row in rows:
        assert all(math.isfinite(row[k]) and 0 <= row[k] <= 1 for k in ("rank1", "auc")), row
    hr = next(r for r in rows if r["method"] == "teacher_upsampled" and r["resolution"] == 150)
    assert hr["rank1"] >= 0.9 and hr["auc"] >= 0.9, hr  # dlib tells these unseen people apart on HR faces
    # the assistant is the same frozen network on the up-sampled LR view
    at8 = [{k: r[k] for k in ("rank1", "auc")} for r in rows if r["resolution"] == 8
           and r["method"] in ("teacher_upsampled", "assistant")]
    assert at8[0] == at8[1]
    project = HorkdConfig.faces(config.face_root, smoke=True).with_(resolutions=(8,))
    assert config_key(HorkdStudentRecipe.of(config, method="horkd", resolution=8)) != config_key(
        HorkdStudentRecipe.of(project, method="horkd", resolution=8))


def test_faces_teacher_option_keeps_the_project_keys_and_checks_its_values(tmp_path):
    root = str(tmp_path)
    default = HorkdConfig.faces(root)
    assert HorkdConfig.faces(root, teacher="project") == default and HorkdConfig(
        task="faces", face_root=root, teacher="project").teacher is None
    assert "teacher" not in default.recipe() and "face_front" not in default.recipe()
    dlib = HorkdConfig.faces(root, teacher="dlib")
    assert (dlib.teacher, dlib.face_front, dlib.hr_size) == ("dlib", "dlib", 150)
    aligned = HorkdConfig.faces(root, aligned=True)
    assert aligned.teacher is None and aligned.face_front == "dlib" and aligned.hr_size == 32
    with pytest.raises(ValueError, match="teacher must be one of"):
        HorkdConfig.faces(root, teacher="arcface")
    with pytest.raises(ValueError, match="teacher='dlib' needs aligned faces"):
        HorkdConfig.faces(root, teacher="dlib", aligned=False)
    with pytest.raises(ValueError, match="needs face_front='dlib'"):
        HorkdConfig(task="faces", face_root=root, teacher="dlib")
    with pytest.raises(ValueError, match="only read by task='faces'"):
        HorkdConfig(teacher="dlib", face_front="dlib")


def _astronaut_people(root: Path, people: int, per_person: int = 2) -> None:
    face = skdata.astronaut()
    for k in range(people):
        (root / f"p{k}").mkdir(parents=True)
        for i in range(per_person):
            skio.imsave(root / f"p{k}" / f"{i}.png", face[:, ::-1] if i % 2 else face, check_contrast=False)


def test_a_folder_with_one_person_is_refused_naming_it(tmp_path):
    _astronaut_people(tmp_path / "one", 1)
    with pytest.raises(ValueError, match=rf"{tmp_path / 'one'} has 1 identity sub-folder\(s\)"):
        load_horkd_data(HorkdConfig.faces(tmp_path / "one", teacher="dlib"))


def test_a_person_with_one_photo_is_refused_naming_their_folder(tmp_path):
    _astronaut_people(tmp_path, 4)
    (tmp_path / "p2" / "1.png").unlink()
    with pytest.raises(ValueError, match=rf"fewer than 2 images: {tmp_path / 'p2'} \(1\)"):
        load_horkd_data(HorkdConfig.faces(tmp_path, teacher="dlib"))


@needs_dlib
def test_a_photo_without_a_face_is_refused_naming_the_file(tmp_path, monkeypatch):
    from workbench.models.face_id import NoFaceError

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    _astronaut_people(tmp_path / "faces", 4)
    skio.imsave(tmp_path / "faces" / "p3" / "coffee.png", skdata.coffee(), check_contrast=False)
    config = HorkdConfig.faces(tmp_path / "faces", teacher="dlib")
    with pytest.raises(NoFaceError, match=r"no face in 1 photo\(s\) of face folder .*: .*p3/coffee\.png"):
        load_horkd_data(config)
    assert not list((tmp_path / "cache").glob("horkd_aligned_faces-*"))  # nothing half-made is cached
    (tmp_path / "faces" / "p3" / "coffee.png").unlink()
    train, test = load_horkd_data(HorkdConfig.faces(tmp_path / "faces", teacher="dlib"))
    assert len(train) + len(test) == 2 * 2 * 2 + 2 * 2  # two training people's photos + flips, two unseen
    assert train.images.shape[1:] == (3, 150, 150) and torch.isfinite(train.images).all()
