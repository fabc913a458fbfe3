"""HORKD in the paper's own setting: low-resolution faces from a user's folder, split by identity, every stream
trained as a classifier of the training identities and judged by its embeddings on people it never saw."""

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import io as skio

from workbench.cache import config_key
from workbench.horkd import (
    HorkdConfig,
    build_teacher,
    default_models,
    evaluate_resolutions,
    identification_scores,
    load_horkd_data,
    low_res_input,
    paired_comparisons,
    rank1_identification,
    teacher_model,
    verification_auc,
)
from workbench.train import one_thread


def write_identities(root: Path, identities: int = 16, per_identity: int = 8, size: int = 40, seed: int = 1) -> None:
    """A tiny ``root/<identity>/<image>.png`` folder whose identities are learnable and transfer to unseen ones:
    a person is a grating orientation and frequency; every photo of them has its own random colour, contrast, phase
    and noise. Pixel statistics (colour) vary more within a person than between people, so a random network's
    embedding does not tell people apart, while one that learnt to ignore colour and read the pattern does."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for k in range(identities):
        theta, freq = rng.uniform(0, np.pi), rng.uniform(1.5, 3.5)
        (root / f"person{k:02d}").mkdir(parents=True)
        for i in range(per_identity):
            wave = np.sin(2 * np.pi * freq * (xx * np.cos(theta) + yy * np.sin(theta)) + rng.uniform(0, 2 * np.pi))
            img = rng.uniform(0.2, 0.8, 3) + rng.uniform(0.2, 0.35) * wave[..., None]
            img = img + rng.normal(0, 0.04, img.shape)
            skio.imsave(root / f"person{k:02d}" / f"{i}.png", (np.clip(img, 0, 1) * 255).astype(np.uint8),
                        check_contrast=False)


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """The folder, its smoke config (a longer teacher: 20 epochs of 176 faces) and the rows of two seeds."""
    mp = pytest.MonkeyPatch()
    mp.setenv("WORKBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "horkd_faces_cache"))
    root = tmp_path_factory.mktemp("faces")
    write_identities(root)
    config = HorkdConfig.faces(root, smoke=True).with_(resolutions=(8,), teacher_epochs=20)
    with one_thread():
        rows = evaluate_resolutions(config, seeds=(0, 1), methods=("scratch", "horkd"), device="cpu",
                                    progress=False, teacher_resolutions=(8, 32))
        yield config, rows
    mp.undo()


def test_streams_classify_the_training_identities_only(faces):
    config, _ = faces
    train, test = load_horkd_data(config)
    assert not set(train.classes) & set(test.classes) and len(test.classes) >= 2
    assert config.classes == train.classes
    teacher = teacher_model(config, device="cpu", progress=False)
    assert teacher.head.out_features == len(train.classes)
    assert 0 <= teacher.workbench_meta["test_rank1"] <= 1 and "test_acc" not in teacher.workbench_meta


def test_faces_rows_report_identification_on_unseen_identities(faces):
    _, rows = faces
    assert {(r["method"], r["resolution"]) for r in rows} == {
        ("teacher_upsampled", 8), ("teacher_upsampled", 32), ("assistant", 8), ("scratch", 8), ("horkd", 8)}
    for row in rows:
        assert "top1" not in row and 0 <= row["rank1"] <= 1 and 0 <= row["auc"] <= 1, row
    pairs = paired_comparisons(rows, [8], pairs=[("horkd", "scratch")], metric="rank1")
    assert len(pairs) == 1 and pairs[0]["metric"] == "rank1" and pairs[0]["seeds"] == 2


def test_trained_teacher_tells_unseen_people_apart_better_than_a_random_network(faces):
    config, rows = faces
    _, test = load_horkd_data(config)
    teacher_auc = next(r["auc"] for r in rows if r["method"] == "teacher_upsampled" and r["resolution"] == 32)
    random_auc = [identification_scores(build_teacher(config, seed), test.images, test.labels)["auc"]
                  for seed in range(3)]
    assert teacher_auc > max(random_auc) + 0.05, (teacher_auc, random_auc)
    # the rows are the teacher's own scores, on the view the row names
    teacher = teacher_model(config, device="cpu", progress=False)
    at8 = identification_scores(teacher, low_res_input(test.images, 8, True), test.labels)
    assert at8 == {k: v for k, v in next(r for r in rows if r["method"] == "teacher_upsampled"
                                          and r["resolution"] == 8).items() if k in ("rank1", "auc")}


def test_identification_metrics_on_planted_embeddings():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    clusters = torch.eye(3)[labels] + 0.01 * torch.arange(6.0)[:, None]
    assert rank1_identification(clusters, labels) == 1.0 and verification_auc(clusters, labels) == 1.0
    swapped = torch.eye(3)[torch.tensor([0, 1, 1, 2, 2, 0])]  # every face nearest to another person's
    assert rank1_identification(swapped, labels) == 0.0 and verification_auc(swapped, labels) < 0.5
    singleton = torch.tensor([0, 0, 1, 1, 2])  # person 2 has no other face: not a probe
    assert rank1_identification(torch.eye(3)[singleton], singleton) == 1.0
    with pytest.raises(ValueError, match="at least 3 faces of at least 2 identities"):
        rank1_identification(torch.ones(4, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"embeddings \(N, D\) and labels \(N,\)"):
        verification_auc(torch.ones(4, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="NaN or Inf"):
        verification_auc(torch.full((4, 2), float("nan")), labels[:4])


def test_faces_config_needs_a_good_folder_and_keeps_the_bank_cache_keys(tmp_path):
    with pytest.raises(ValueError, match="task='faces' needs face_root"):
        HorkdConfig(task="faces")
    with pytest.raises(ValueError, match="face_root is only read by task='faces'"):
        HorkdConfig(face_root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="one sub-folder per person"):
        teacher_model(HorkdConfig.faces(tmp_path / "nowhere", smoke=True), device="cpu", progress=False)
    write_identities(tmp_path / "three", identities=3, per_identity=2, size=8)
    with pytest.raises(ValueError, match=r"3 identity sub-folder\(s\)"):
        load_horkd_data(HorkdConfig.faces(tmp_path / "three", smoke=True))
    for bank in (HorkdConfig.full(), HorkdConfig.smoke(), HorkdConfig(task="patches")):
        fields = dataclasses.asdict(bank)
        assert fields.pop("face_root") is None  # hashes as before the field existed
        for optional in ("angle_triplets", "face_front", "teacher"):  # likewise the exact angle term and the
            if fields[optional] is None:  # whole-photo, project-teacher faces (the smoke weights ship under that hash)
                del fields[optional]
        assert bank.recipe() == fields
    root = tmp_path / "people"
    write_identities(root, identities=4, per_identity=2, size=8)
    before = config_key(HorkdConfig.faces(root).recipe())
    assert before != config_key(HorkdConfig.faces(tmp_path / "three").recipe())
    skio.imsave(root / "person00" / "extra.png", np.zeros((8, 8, 3), np.uint8), check_contrast=False)
    assert config_key(HorkdConfig.faces(root).recipe()) != before  # new photos retrain, never reuse stale models


def test_dashboard_models_refuse_faces_rather_than_score_unseen_people_as_classes(faces):
    with pytest.raises(ValueError, match="unseen identities"):
        default_models(faces[0], device="cpu", progress=False)


def test_faces_benchmark_tables_name_their_metrics(faces, tmp_path, monkeypatch, load_benchmark):
    config, rows = faces
    bench = load_benchmark("horkd")
    pairs = paired_comparisons(rows, [8], metric="rank1")
    text = "\n".join(bench.report(rows, config, "test", 1.0, pairs, bench._sizes(config, 0, "cpu")))
    assert "face recognition on unseen identities" in text and "Top-1" not in text
    assert "Rank-1 identification on unseen identities" in text and "Verification AUC" in text
    assert "| HORKD (teacher + assistant) | " in text and "HORKD (teacher + assistant) − student from scratch" in text
    monkeypatch.setattr(sys, "argv", ["horkd.py", "--faces", str(tmp_path / "none"), "--quick",
                                      "--out", str(tmp_path)])
    with pytest.raises(FileNotFoundError, match="one sub-folder per person"):
        bench.main()
    assert not list(tmp_path.glob("*.md"))
