"""The harder embedded low-resolution task (the patch bank) and identity-disjoint faces from a user's folder."""

from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import io as skio

from workbench.data.patch_bank import (
    BANK_SOURCES,
    bank_classes,
    bank_layout,
    bank_source,
    load_face_identities,
    load_patch_bank,
)
from workbench.data.patches import PATCH_SOURCES

FACES_DEV = Path(__file__).resolve().parents[3] / "shared" / "realdata" / "faces_dev"


def test_bank_has_every_shipped_photograph_and_the_colour_patch_sources():
    assert set(PATCH_SOURCES.values()) <= set(BANK_SOURCES)
    assert {"china", "flower", "retina", "hubble_deep_field"} <= set(BANK_SOURCES)
    assert len(bank_classes(2)) == 2 * len(BANK_SOURCES) >= 40
    assert len(set(bank_classes(2))) == len(bank_classes(2))
    for name in ("logo", "china", "shepp_logan_phantom"):
        img = bank_source(name)
        assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.float32 and 0 <= img.min() <= img.max() <= 1
    with pytest.raises(ValueError, match="bands must be one of"):
        bank_classes(5)


def test_bank_patches_never_share_a_pixel_across_splits_or_bands():
    train, test = bank_layout("train", bands=2), bank_layout("test", bands=2)
    for name in bank_classes(2):
        tr, te = [b for b in train if b.name == name], [b for b in test if b.name == name]
        assert tr and te, name
        assert max(b.left + b.side for b in tr) <= min(b.left for b in te)
    h = bank_source("brick").shape[0]
    top = [b for b in train if b.name == "brick/top"]
    bottom = [b for b in train if b.name == "brick/bottom"]
    assert max(b.top + b.side for b in top) <= h // 2 <= min(b.top for b in bottom)


def test_bank_images_are_the_source_pixels_resized_and_balanced_when_capped():
    test = load_patch_bank(64, "test", max_per_class=3)
    box = bank_layout("test", max_per_class=3)[7]
    src = bank_source(box.name.split("/")[0])[box.top:box.top + 64, box.left:box.left + 64]
    assert np.allclose(test.images[7].permute(1, 2, 0).numpy(), src)
    small = load_patch_bank(32, "train", bands=1, max_per_class=4, augment=True)
    assert small.images.shape == (2 * 4 * len(BANK_SOURCES), 3, 32, 32)
    assert torch.equal(small.labels.bincount(), torch.full((len(BANK_SOURCES),), 8))


def _write_people(root: Path, counts: dict[str, int]) -> None:
    rng = np.random.default_rng(0)
    for person, n in counts.items():
        (root / person).mkdir(parents=True)
        for i in range(n):
            skio.imsave(root / person / f"{i}.png", rng.integers(0, 255, (40, 30, 3), dtype=np.uint8),
                        check_contrast=False)


def test_face_identities_split_has_no_person_on_both_sides(tmp_path):
    _write_people(tmp_path, {f"person{i}": 3 for i in range(8)})
    train, test = load_face_identities(tmp_path, size=16, test_fraction=0.25)
    assert not set(train.classes) & set(test.classes)
    assert set(train.classes) | set(test.classes) == {f"person{i}" for i in range(8)}
    assert len(test.classes) == 2 and train.images.shape == (18, 3, 16, 16) and len(test) == 6
    assert torch.equal(test.labels.bincount(), torch.tensor([3, 3]))


def test_face_folder_errors_name_the_folder_and_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="one sub-folder per person"):
        load_face_identities(tmp_path / "nowhere")
    _write_people(tmp_path / "few", {"ann": 2, "bob": 2, "cy": 2})
    with pytest.raises(ValueError, match=r"3 identity sub-folder\(s\); at least 4"):
        load_face_identities(tmp_path / "few")
    _write_people(tmp_path / "once", {"ann": 2, "bob": 1, "cy": 2, "dee": 2})
    with pytest.raises(ValueError, match=r"fewer than 2 images: \S*bob \(1\)"):
        load_face_identities(tmp_path / "once")
    _write_people(tmp_path / "bad", {"ann": 2, "bob": 2, "cy": 2, "dee": 2})
    (tmp_path / "bad" / "cy" / "1.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read face image .*cy"):
        load_face_identities(tmp_path / "bad")


def test_faces_dev_without_identity_folders_is_refused_clearly():
    if not FACES_DEV.is_dir():
        pytest.skip("../shared/realdata/faces_dev is absent")
    with pytest.raises(ValueError, match="identity sub-folder"):  # flat files: no identities to split by
        load_face_identities(FACES_DEV)
