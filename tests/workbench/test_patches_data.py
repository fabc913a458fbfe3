"""The embedded patch set, the camera model for low resolution, the face task and the real-folder loaders."""

import numpy as np
import pytest
import torch

from workbench.data.patches import (
    PATCH_CLASSES,
    _source_image,
    downsample,
    load_cifar,
    load_image_folder,
    load_lfw_faces,
    load_patches,
    low_resolution_view,
    patch_layout,
)


def test_patch_set_has_ten_balanced_rgb_classes():
    train = load_patches(32, "train", max_per_class=20)
    test = load_patches(32, "test", max_per_class=10)
    assert len(PATCH_CLASSES) >= 8
    assert train.images.shape == (20 * len(PATCH_CLASSES), 3, 32, 32)
    assert test.images.shape == (10 * len(PATCH_CLASSES), 3, 32, 32)
    assert torch.equal(train.labels.bincount(), torch.full((len(PATCH_CLASSES),), 20))
    assert 0 <= float(train.images.min()) and float(train.images.max()) <= 1
    flipped = load_patches(32, "train", max_per_class=20, augment=True)
    assert len(flipped) == 2 * len(train) and torch.equal(flipped.images[len(train):], train.images.flip(-1))


def test_train_and_test_patches_never_share_a_source_pixel():
    train, test = patch_layout("train"), patch_layout("test")
    for name in PATCH_CLASSES:
        tr = [b for b in train if b.name == name]
        te = [b for b in test if b.name == name]
        assert tr and te
        assert max(b.left + b.side for b in tr) <= min(b.left for b in te)
        assert not any(a.overlaps(b) for a in tr for b in te)
    # and pixel-wise: no test patch equals any training patch (flat sky/background patches come close, never equal)
    tr_img = load_patches(64, "train", max_per_class=40).images.flatten(1)
    te_img = load_patches(64, "test", max_per_class=40).images.flatten(1)
    assert float(torch.cdist(te_img, tr_img).min()) > 0.1


def test_patches_are_the_photograph_pixels():
    box = patch_layout("test", max_per_class=5)[0]
    src = _source_image(box.name)[box.top:box.top + 64, box.left:box.left + 64]
    img = load_patches(64, "test", max_per_class=5).images[0].permute(1, 2, 0).numpy()
    assert np.allclose(img, src)


def test_downsampling_is_anti_aliased_like_a_camera():
    # a 1-pixel checkerboard has no energy a 4x coarser sensor can represent: it must become flat gray
    checker = ((torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2).float().expand(1, 3, 32, 32)
    lr = downsample(checker, 8)
    assert lr.shape == (1, 3, 8, 8)
    assert float(lr.std()) < 0.02 and float(lr.mean()) == pytest.approx(0.5, abs=0.02)
    # slow content survives, and the up-sampled view keeps the HR size
    ramp = torch.linspace(0, 1, 32).expand(1, 3, 32, 32)
    assert float((low_resolution_view(ramp, 8) - ramp).abs().mean()) < 0.05
    assert low_resolution_view(ramp, 8).shape == ramp.shape
    with pytest.raises(ValueError, match="size must lie"):
        downsample(ramp, 64)


def test_lfw_face_task_is_balanced_faces_vs_background():
    train, test = load_lfw_faces(32, "train"), load_lfw_faces(32, "test")
    assert train.classes == ("non-face", "face")
    assert len(train) + len(test) == 200 and train.images.shape[1:] == (3, 32, 32)
    assert float(train.labels.float().mean()) == pytest.approx(0.5) == float(test.labels.float().mean())


def test_real_folder_loaders_name_the_folder_and_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        load_cifar(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        load_cifar(tmp_path, which="cifar10")
    with pytest.raises(FileNotFoundError, match="<class name>"):
        load_image_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="no class sub-folders"):
        load_image_folder(tmp_path)
    (tmp_path / "cats").mkdir()
    with pytest.raises(ValueError, match="cats holds no images"):
        load_image_folder(tmp_path)


def test_image_folder_reads_a_tree_and_rejects_corrupt_files(tmp_path):
    from skimage import io

    for name, value in (("cats", 40), ("dogs", 200)):
        (tmp_path / name).mkdir()
        for i in range(2):
            io.imsave(tmp_path / name / f"{i}.png", np.full((40, 50, 3), value, np.uint8), check_contrast=False)
    data = load_image_folder(tmp_path, size=16)
    assert data.classes == ("cats", "dogs") and data.images.shape == (4, 3, 16, 16)
    assert data.labels.tolist() == [0, 0, 1, 1] and float(data.images[2].mean()) == pytest.approx(200 / 255, abs=1e-3)
    (tmp_path / "dogs" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        load_image_folder(tmp_path)
