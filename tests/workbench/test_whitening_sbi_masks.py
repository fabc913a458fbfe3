"""Issue 24's mask comparison (``benchmarks/whitening.py --sbi --mask box,hull``): both blend masks make training
sets of the same faces, the recipe's mask keeps the shipped key for "box", the real-fake smoke check reads
``deepfake_dev``, and the table pairs hull - box per seed and says whether hull >= box."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from workbench.cache import config_key
from workbench.data.face_front import dlib_available, landmarks_of_crop
from workbench.data.sbi_masks import hull_region
from workbench.whitening import detector_config
from workbench.whitening.recipe import sbi_training_draw

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _realdata(name: str) -> Path | None:
    """``shared/realdata/<name>`` beside the checkout or any folder above it (worktrees sit deeper)."""
    return next((p / "shared" / "realdata" / name for p in REPO.parents if (p / "shared" / "realdata" / name).is_dir()),
                None)


needs_dlib = pytest.mark.skipif(not dlib_available(), reason="the faces extra (dlib, face_recognition_models) is off")


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("whitening")


def test_the_recipe_mask_box_is_the_shipped_key_and_hull_is_another_model():
    default = detector_config(True, data="sbi")
    assert config_key(default.with_(mask="box")) == config_key(default)  # shipped SBI weights stay loadable
    assert config_key(default.with_(mask="hull")) != config_key(default)
    with pytest.raises(ValueError, match=r"mask must be one of \('box', 'hull'\)"):
        default.with_(mask="ellipse")


def test_the_mask_option_is_parsed_with_clear_errors(bench):
    assert bench.parse_masks("box, hull") == ("box", "hull")
    for bad in ("box,ellipse", "", "box,box"):
        with pytest.raises(ValueError, match="--mask takes distinct masks"):
            bench.parse_masks(bad)


@needs_dlib
@pytest.mark.skipif(_realdata("faces_dev") is None, reason="../shared/realdata/faces_dev is absent")
def test_the_mask_option_builds_box_and_hull_training_sets_of_the_same_faces(bench, tmp_path):
    for photo in sorted(_realdata("faces_dev").glob("img*.png"))[:6]:  # the fewest a split takes: 4 train faces
        shutil.copy(photo, tmp_path)
    sets = {m: sbi_training_draw(bench.mask_config(m, str(tmp_path), 0, smoke=True), augmented=False)
            for m in bench.parse_masks("box,hull")}
    box, hull = sets["box"], sets["hull"]
    assert torch.equal(box.labels, hull.labels) and torch.equal(box.identities, hull.identities)
    real = box.labels == 0
    assert torch.equal(box.images[real], hull.images[real])  # the same faces, the same crops
    assert float((box.masks[~real] - hull.masks[~real]).abs().mean()) > 0.05  # blended with other masks
    assert float((box.images[~real] - hull.images[~real]).abs().mean()) > 0.005
    for face, mask in zip(hull.images[real], hull.masks[~real, 0].numpy(), strict=True):
        region = hull_region(landmarks_of_crop(face.permute(1, 2, 0).numpy()), 64, "extended")
        grown = cv2.dilate(region, np.ones((9, 9), np.uint8))
        assert float((mask * grown).sum() / mask.sum()) > 0.95  # the hull blend lies on this face's landmarks


@needs_dlib
@pytest.mark.skipif(_realdata("deepfake_dev") is None, reason="../shared/realdata/deepfake_dev is absent")
def test_the_real_fake_smoke_check_reads_every_crop_and_the_video_pair_and_sees_an_inverted_detector(bench):
    real = bench.load_real_fakes(_realdata("deepfake_dev"), 64)
    assert real["crops"].shape == (26, 3, 64, 64) and int(real["labels"].sum()) == 13
    assert [len(real["videos"][k]) for k in ("real", "fake")] == [1, 1]
    assert real["videos"]["fake"][0].shape == (bench.VIDEO_FRAMES, 3, 64, 64)

    class Redness(torch.nn.Module):  # a stand-in detector: logit(fake) = sign * mean red - green
        def __init__(self, sign: float):
            super().__init__()
            self.sign = sign

        def forward(self, x):
            score = self.sign * (x[:, 0] - x[:, 1]).mean((1, 2))
            return torch.stack([torch.zeros_like(score), score], 1)

    up, down = (bench.real_fake_scores(Redness(s), real) for s in (1.0, -1.0))
    assert up["dev_crops_auc"] == pytest.approx(1 - down["dev_crops_auc"])
    assert np.sign(up["dev_video_fake_minus_real_pfake"]) == -np.sign(down["dev_video_fake_minus_real_pfake"])


def _rows(hull_clean: tuple[float, float]) -> pd.DataFrame:
    rows = []
    for seed, h in enumerate(hull_clean):
        for mask, clean in (("box", 0.70), ("hull", h)):
            rows.append({"mask": mask, "seed": seed, "train_s": 1.0, "auc_box_clean": clean,
                         "auc_box_jpeg40": 0.6, "auc_box_perturbed": 0.6, "auc_hull_clean": clean,
                         "auc_hull_perturbed": 0.6 + (mask == "hull") * 0.01, "dev_crops_auc": 0.4})
    return pd.DataFrame(rows)


def test_the_masks_table_pairs_hull_minus_box_per_seed_and_gives_the_verdict(bench):
    text = bench.write_sbi_masks(_rows((0.80, 0.74)), "faces", 1.0, smoke=True)
    assert "| metric | trained on box | trained on hull |" in text
    assert "| auc_box_clean | 0.700 +- 0.000 | 0.770 +- 0.042 |" in text
    assert "| auc_box_clean | +0.070 +- 0.042 | 2 of 2 |" in text  # hull - box: +0.10, +0.04
    assert "| auc_hull_perturbed | +0.010 +- 0.000 | 2 of 2 |" in text
    assert "auc_box_jpeg40 | +" not in text  # single perturbations stay in the per-mask table
    assert "hull >= box on clean and perturbed AUC (mean paired difference over 2 seeds, every test mask): **yes**" \
        in text
    worse = bench.write_sbi_masks(_rows((0.80, 0.50)), "faces", 1.0, smoke=True)
    assert "| auc_box_clean | -0.050 +- 0.212 | 1 of 2 |" in worse and "**no**" in worse
