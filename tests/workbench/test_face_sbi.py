"""Self-blended images at real resolution: colour faces from a folder, masks as ground truth, splits, clear errors,
the unseen kind, and detectors (whitening, STDT) that take these sizes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from skimage import data as skdata

from workbench.data.face_crops import ASTRONAUT_FACE_BOX
from workbench.data.face_sbi import (
    UNSEEN_KIND,
    augment,
    crop_colour_face,
    embedded_colour_faces,
    load_face_folder,
    load_sbi_clips,
    load_sbi_faces,
    poisson_swap,
    self_blend,
)
from workbench.data.synthesis import face_mask
from workbench.train import fit

REPO = Path(__file__).resolve().parents[2]
DEV_FACES = REPO.parent / "shared" / "realdata" / "faces_dev"
needs_dev_faces = pytest.mark.skipif(not DEV_FACES.is_dir(), reason="../shared/realdata/faces_dev is absent")
pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _write(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb)
    return path


def _astronaut_folder(tmp_path: Path, n: int) -> Path:
    """``n`` photos of the astronaut (slightly shifted copies), one file each."""
    photo = skdata.astronaut()
    for k in range(n):
        _write(tmp_path / f"photo{k}.png", np.roll(photo, 3 * k, axis=1))
    return tmp_path


@pytest.fixture(scope="module")
def embedded_train():
    return load_sbi_faces("train", 64, 1)


def test_embedded_self_blends_are_colour_64px_with_masks_only_on_fakes(embedded_train):
    data = embedded_train
    assert data.images.shape[1:] == (3, 64, 64) and data.masks.shape[1:] == (1, 64, 64)
    assert data.images.min() >= 0 and data.images.max() <= 1
    real, fake = data.labels == 0, data.labels == 1
    assert int(real.sum()) == int(fake.sum()) > 50
    assert float(data.masks[real].abs().max()) == 0.0 and bool((data.masks[fake].flatten(1).amax(1) > 0.2).all())
    assert set(data.kinds) == {"real", "self_blend"}


def test_the_blend_changes_the_face_inside_the_mask_and_the_mask_lies_on_the_face():
    face = embedded_colour_faces(64).faces[-1]  # the astronaut, a true colour photo
    rng = np.random.default_rng(0)
    for _ in range(5):
        fake, mask = self_blend(face, rng)
        assert mask.max() > 0.2
        outside_face = face_mask(64) == 0
        assert mask[outside_face].sum() < 0.1 * mask.sum()  # the blend region is the face region (soft edge aside)
        assert float(mask[:4, :4].max()) < 0.01 and float(mask[-4:, -4:].max()) < 0.01
        assert fake.shape == face.shape and np.isfinite(fake).all()


def test_splits_are_group_disjoint_and_deterministic():
    parts = {s: load_sbi_faces(s, 64, 1) for s in ("train", "val", "test")}
    groups = {s: set(d.identities.tolist()) for s, d in parts.items()}
    assert not groups["train"] & groups["val"] and not groups["train"] & groups["test"]
    assert not groups["val"] & groups["test"]
    again = load_sbi_faces("test", 64, 1)
    assert torch.equal(again.images, parts["test"].images)


def test_training_images_are_augmented_and_held_out_images_are_not():
    clean = load_sbi_faces("train", 64, 1, augmented=False)
    augmented = load_sbi_faces("train", 64, 1)
    assert not torch.equal(clean.images, augmented.images)
    img = np.full((64, 64, 3), 0.5, np.float32)
    outs = [augment(img, np.random.default_rng(k)) for k in range(20)]
    assert any(np.abs(o - img).max() > 0.01 for o in outs)  # noise / JPEG change some of them


def test_blur_and_colour_augmentation_probabilities_are_knobs_with_clear_errors():
    def sharpness(data):  # mean squared Laplacian: high-frequency energy, which a blur removes
        grey = data.images.mean(1).numpy()
        return float(np.mean([cv2.Laplacian(g, cv2.CV_32F).var() for g in grey]))

    def colour_shift(data):  # mean |change| of each image's mean colour from the un-augmented image's
        return float((data.images.mean((2, 3)) - clean.images.mean((2, 3))).abs().mean())

    clean = load_sbi_faces("train", 64, 1, augmented=False)
    never, always = (load_sbi_faces("train", 64, 1, blur_p=p) for p in (0.0, 1.0))
    assert sharpness(always) < 0.85 * sharpness(never)  # (the noise added after a blur keeps some)
    assert colour_shift(load_sbi_faces("train", 64, 1, colour_p=1.0)) > 2 * colour_shift(never)
    for knob in ("blur_p", "colour_p"):
        with pytest.raises(ValueError, match=knob):
            load_sbi_faces("train", 64, 1, **{knob: 1.5})


def test_a_fresh_draw_blends_the_same_training_faces_anew():
    first, again, fresh = (load_sbi_faces("train", 64, 1, draw=d) for d in (0, 0, 1))
    assert torch.equal(first.images, again.images)
    assert torch.equal(first.identities, fresh.identities) and torch.equal(first.labels, fresh.labels)
    assert float((first.images - fresh.images).abs().mean()) > 0.01


def test_poisson_swap_changes_pixels_inside_its_mask_more_than_outside():
    faces = embedded_colour_faces(64).faces
    target, donor = faces[-1], faces[3]
    fake, mask = poisson_swap(target, donor, np.random.default_rng(1))
    diff = np.abs(fake - target).mean(-1)
    assert diff[mask > 0.9].mean() > 3 * diff[mask < 0.01].mean()
    unseen = load_sbi_faces("test", 64, 1, kind=UNSEEN_KIND)
    assert set(unseen.kinds) == {"real", UNSEEN_KIND}


def test_clips_move_and_their_masks_follow():
    clips = load_sbi_clips("val", 64, frames=4, n_per_face=1)
    assert clips.clips.shape[1:] == (4, 3, 64, 64) and clips.masks.shape[1:] == (4, 64, 64)
    assert float((clips.clips[:, :1] - clips.clips[:, 1:]).abs().mean()) > 0.003  # the face moves
    fake = int(torch.nonzero(clips.labels == 1)[0])
    assert float(clips.masks[fake].amax()) > 0.2 and float(clips.masks[clips.labels == 0].abs().max()) == 0.0


def test_augmented_clips_blur_and_noise_whole_clips_and_fresh_draws_differ():
    plain = load_sbi_clips("train", 64, frames=4, n_per_face=1)
    again = load_sbi_clips("train", 64, frames=4, n_per_face=1, blur_p=0.0, noise_p=0.0, draw=0)
    assert torch.equal(plain.clips, again.clips)  # the knobs' defaults keep the stream
    blurred = load_sbi_clips("train", 64, frames=4, n_per_face=1, blur_p=1.0)
    noisy = load_sbi_clips("train", 64, frames=4, n_per_face=1, noise_p=1.0)

    def roughness(clips):  # mean absolute Laplacian: blur lowers it, noise raises it
        frames = clips.clips.flatten(0, 1).permute(0, 2, 3, 1).numpy()
        return float(np.mean([np.abs(cv2.Laplacian(f, cv2.CV_32F)).mean() for f in frames]))
    assert roughness(blurred) < 0.8 * roughness(plain) < 0.8 * roughness(noisy)
    fresh = load_sbi_clips("train", 64, frames=4, n_per_face=1, draw=1)
    assert torch.equal(fresh.labels, plain.labels) and not torch.equal(fresh.clips, plain.clips)
    val = load_sbi_clips("val", 64, frames=4, n_per_face=1)
    assert torch.equal(load_sbi_clips("val", 64, frames=4, n_per_face=1, blur_p=1.0).clips, val.clips)  # not augmented
    with pytest.raises(ValueError, match=r"noise_p is a probability in \[0, 1\]; got 1.5"):
        load_sbi_clips("train", 64, frames=4, n_per_face=1, noise_p=1.5)


def _planted_clips(n: int, seed: int):
    """Noise clips (2 frames, 32 px); the second half carry a brighter red 8 px patch (the mask) at a random cell."""
    from workbench.data.forgery_sets import ClipSet

    gen = torch.Generator().manual_seed(seed)
    clips, masks = 0.5 + 0.1 * torch.randn(n, 2, 3, 32, 32, generator=gen), torch.zeros(n, 2, 32, 32)
    cells = torch.randint(0, 16, (n,), generator=gen)
    for i in range(n // 2, n):
        r, c = divmod(int(cells[i]), 4)
        masks[i, :, 8 * r:8 * r + 8, 8 * c:8 * c + 8] = 1.0
        clips[i, :, 0, 8 * r:8 * r + 8, 8 * c:8 * c + 8] += 0.3
    labels = (torch.arange(n) >= n // 2).long()
    return ClipSet(clips.clamp(0, 1), labels, masks, ("clip",) * n, torch.arange(n)), cells


def test_the_stdt_mask_head_points_at_the_planted_patch():
    from workbench.stdt import BagOfPatchesViT
    from workbench.stdt.recipe import mask_step, patch_mask_targets

    masks = torch.zeros(1, 2, 64, 64)
    masks[0, 1, :16, 16:32] = 1.0  # frame 1, patch row 0, column 1 of a 4 x 4 grid
    target = patch_mask_targets(masks, 16)
    assert target.shape == (1, 32) and float(target[0, 16 + 1]) == 1.0 and float(target.sum()) == 1.0
    train, _ = _planted_clips(128, 0)
    test, cells = _planted_clips(32, 1)
    torch.manual_seed(0)
    model = BagOfPatchesViT(32, 8, 2, 32, 1, 2, 0.25, 0.25, in_channels=3, mask_head=True, seed=0)
    fit(model, train.loader(16, with_masks=True), mask_step(1.0), epochs=6, lr=3e-3, device="cpu", progress=False)
    with torch.no_grad():
        logits = model.patch_mask_logits(model.encode(model.tokens(test.clips).flatten(1, 2)))
    hits = (logits[16:, :16].argmax(1) == cells[16:]).float().mean()  # frame 0's peak on held-out fakes
    assert hits >= 0.9
    with pytest.raises(ValueError, match="no mask head"):
        BagOfPatchesViT(32, 8, 2, 32, 1, 2).patch_mask_logits(torch.zeros(1, 3, 32))


def test_the_sbi_stdt_recipe_trains_its_mask_head_on_fresh_clips():
    from workbench.stdt import build_stdt, stdt_config, train_stdt

    config = stdt_config(True, smoke=True, data="sbi", mask_weight=1.0, fresh_draws=True, cosine=True, epochs=2,
                         frames=2)
    model = build_stdt(config)
    meta = train_stdt(model, config, device="cpu", progress=False, max_steps=6)
    assert model.mask_head is not None and all(np.isfinite(h["mask_bce"]) for h in meta["history"])
    assert build_stdt(stdt_config(True, smoke=True, data="sbi", mask_weight=0.0)).mask_head is None


# ---------------------------------------------------------------------------------------------------- bad input
def test_a_photo_without_a_face_is_named(tmp_path):
    folder = _astronaut_folder(tmp_path, 6)
    noise = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    _write(folder / "landscape.png", noise)
    with pytest.raises(ValueError, match=r"no face found in .*landscape\.png"):
        load_face_folder(folder, 64)
    assert load_face_folder(folder, 64, skip_no_face=True).skipped == ("landscape.png",)


def test_a_grey_photo_is_named_for_the_colour_model(tmp_path):
    folder = _astronaut_folder(tmp_path, 6)
    _write(folder / "grey.png", cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2GRAY))
    with pytest.raises(ValueError, match=r"grey\.png is a grey photo"):
        load_face_folder(folder, 64)


def test_a_folder_with_too_few_faces_is_named(tmp_path):
    folder = _astronaut_folder(tmp_path / "few", 2)
    with pytest.raises(ValueError, match=r"few has 2 photo"):
        load_face_folder(folder, 64)
    with pytest.raises(ValueError, match="does not exist"):
        load_face_folder(tmp_path / "missing", 64)


def test_person_subfolders_make_identity_disjoint_groups(tmp_path):
    photo = skdata.astronaut()
    for person in range(3):
        for k in range(2):
            _write(tmp_path / f"person{person}" / f"{k}.png", np.roll(photo, 5 * person + k, axis=0))
    folder = load_face_folder(tmp_path, 64)
    assert folder.faces.shape == (6, 64, 64, 3) and sorted(set(folder.groups.tolist())) == [0, 1, 2]
    assert folder.groups[0] == folder.groups[1] != folder.groups[2]


def test_the_colour_crop_is_framed_like_the_lfw_crops():
    face = crop_colour_face(skdata.astronaut(), 96, ASTRONAUT_FACE_BOX)
    assert face.shape == (96, 96, 3) and 0 <= face.min() and face.max() <= 1


@needs_dev_faces
def test_the_real_development_faces_load_in_colour_with_file_disjoint_splits():
    folder = load_face_folder(DEV_FACES, 64, skip_no_face=True)
    assert len(folder.faces) >= 55 and folder.faces.shape[1:] == (64, 64, 3)
    assert float(np.abs(folder.faces[..., 0] - folder.faces[..., 2]).mean()) > 0.02  # colour, not grey
    test = load_sbi_faces("test", 64, 1, DEV_FACES)
    train = load_sbi_faces("train", 64, 1, DEV_FACES)
    assert not set(test.identities.tolist()) & set(train.identities.tolist())


# ---------------------------------------------------------------------------------------------------- detectors
def test_the_sbi_whitening_detector_records_its_input_and_rejects_grey_faces():
    from workbench.whitening import build_detector, detector_config, train_detector

    config = detector_config(True, smoke=True, data="sbi")
    model = build_detector(config)
    assert (model.in_channels, model.image_size) == (3, 64)
    meta = train_detector(model, config, "cpu", progress=False, max_steps=4)
    assert np.isfinite(meta["history"][-1]["loss"])
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 2)
    from workbench.whitening import channel_maps

    with pytest.raises(ValueError, match="channel"):
        channel_maps(model, torch.rand(2, 1, 64, 64), 0)
    with pytest.raises(ValueError, match="data must be"):
        detector_config(True, data="photos")


def test_sbi_calibration_realigns_the_concept_channel_to_the_calibrated_whitening():
    """The full whitening of the calibration changes the whitened basis; without re-aligning the rotation, the
    concept channel no longer fires on the manipulated region (issue 16: it lost the pointing game)."""
    import copy
    import dataclasses

    import torch.nn.functional as F

    from workbench.whitening import build_detector, calibrate_detector, detector_config, train_detector, training_data

    config = detector_config(True, smoke=True, data="sbi", realign_steps=0)
    stale = build_detector(config)
    train_detector(stale, config, "cpu", progress=False, max_steps=10)
    train, _ = training_data(config)
    aligned = copy.deepcopy(stale)
    calibrate_detector(aligned, dataclasses.replace(config, realign_steps=10), train)
    fakes = train.subset(train.labels == 1)

    def concept_score(model):  # mean whitened activation of the concept channel, weighted by the true mask
        maps = model.whitened_features(fakes.images)[:, 0]
        weights = F.adaptive_avg_pool2d(fakes.masks, maps.shape[-2:])[:, 0]
        return float((maps * weights).sum() / weights.sum())

    assert concept_score(aligned) > concept_score(stale) + 0.2
    rotation = aligned.norm_layer.rotation.rotation[0]
    assert torch.allclose(rotation @ rotation.T, torch.eye(len(rotation)), atol=1e-5)


def test_the_calibration_holds_a_bounded_number_of_training_draws():
    """Calibrating over every epoch's draw must not make a large face folder's memory grow with the epochs."""
    import dataclasses

    from workbench.whitening import detector_config
    from workbench.whitening.recipe import calibration_draws

    config = detector_config(True, data="sbi")
    assert calibration_draws(config, per_draw=592) == config.epochs  # the development faces: every draw
    assert calibration_draws(config, per_draw=50_000) == 1  # a large folder: its first draw only
    assert calibration_draws(dataclasses.replace(config, size=128), 592) < calibration_draws(config, 592)


def test_the_sbi_stdt_takes_colour_64px_clips():
    from workbench.stdt import build_stdt, stdt_config

    config = stdt_config(True, smoke=True, data="sbi")
    model = build_stdt(config)
    assert (model.in_channels, model.image_size) == (3, 64)
    clips = load_sbi_clips("val", 64, frames=config.frames, n_per_face=1).clips[:2]
    assert model(clips).shape == (2, 2)
    with pytest.raises(ValueError, match=r"clips must be \(B, 8, 3, 64, 64\)"):
        model(clips[:, :, :1])


@pytest.mark.parametrize("name", ["whitening", "stdt"])
def test_gpu_benchmark_trains_both_models_and_writes_its_table(tmp_path, name, load_benchmark):
    extra = {"seeds": ()} if name == "stdt" else {}  # stdt's SBI seeds train full models: GPU only
    rows = load_benchmark(name).gpu_benchmark(torch.device("cpu"), tmp_path, budget_s=600, size=32, max_steps=2,
                                              **extra)
    assert len(rows) == 2 and all(np.isfinite(r["loss_first"]) and r["items_per_s"] > 0 for r in rows)
    assert list(tmp_path.glob("*.csv")) and list(tmp_path.glob("*.md"))


def test_the_sbi_whitening_table_says_which_targets_are_missed_and_pairs_the_detectors_by_seed(load_benchmark):
    import pandas as pd

    bench = load_benchmark("whitening")
    rows = []
    for seed, (white_auc, plain_auc, concept, gradcam) in enumerate(((0.9, 0.8, 0.6, 0.4), (0.76, 0.8, 0.5, 0.3))):
        common = {"seed": seed, "train_s": 1.0, "auc_unseen_poisson_swap": 0.6}
        rows.append({"detector": "whitened", **common, **{f"auc_{c}": white_auc for c in bench.CONDITIONS},
                     "offdiag_corr_layer_output": 0.03, "pointing_concept_channel": concept, "pointing_gradcam": 0.2})
        rows.append({"detector": "plain (BatchNorm)", **common, **{f"auc_{c}": plain_auc for c in bench.CONDITIONS},
                     "offdiag_corr_layer_output": 0.7, "pointing_gradcam": gradcam})
    text = bench.write_sbi(pd.DataFrame(rows), "faces", 1.0, smoke=True)
    target = "| AUC clean >= 0.75 (whitened detector; plain baseline beside it) |"
    assert f"{target} yes | 0.830 / 0.800 |" in text
    assert "| whitened clean AUC within 2 points of plain | yes |" in text
    assert "| decorrelation < 0.05 | yes | 0.0300 |" in text
    assert "| concept channel pointing >= plain Grad-CAM | yes | 0.550 vs 0.350 |" in text
    assert "| AUC clean | +0.030 +- 0.099 | 1 of 2 |" in text  # whitened - plain: +0.1, -0.04
    assert "| concept channel pointing - plain Grad-CAM pointing | +0.200 +- 0.000 | 2 of 2 |" in text
    worse = pd.DataFrame(rows).assign(offdiag_corr_layer_output=0.08)
    assert "| decorrelation < 0.05 | NO |" in bench.write_sbi(worse, "faces", 1.0, smoke=True)
    frame = pd.DataFrame(rows)
    weak_plain = frame.assign(auc_clean=frame.auc_clean.where(frame.detector == "whitened", 0.6))
    assert f"{target} yes | 0.830 / 0.600 |" in bench.write_sbi(weak_plain, "faces", 1.0, smoke=True)
    weak_white = frame.assign(auc_clean=frame.auc_clean.where(frame.detector != "whitened", 0.7))
    assert f"{target} NO | 0.700 / 0.800 |" in bench.write_sbi(weak_white, "faces", 1.0, smoke=True)


def test_the_sbi_stdt_benchmark_trains_in_two_processes_and_writes_one_table(tmp_path):
    sys.path.insert(0, str(REPO))
    stdt_benchmark = importlib.import_module("benchmarks.stdt")  # by its name: the worker processes import it
    text = stdt_benchmark.run_sbi_seeds([0], "", True, torch.device("cpu"), tmp_path, "CPU", workers=2,
                                       epochs=1, frames=2)
    rows = pd.read_csv(tmp_path / "stdt_sbi.csv")
    assert list(rows.model) == ["STDT (STD)", "ViT (no STD)"] and rows["auc_blur0.8"].between(0, 1).all()
    assert "STD minus no STD" in text and (tmp_path / "stdt_sbi.md").read_text() == text
