"""The 32x32 RGB patch recipes (teacher + VAE) and re-label distillation on a photograph patch with them."""

import pytest
import torch

from workbench.data import PATCH_CLASSES, load_patches
from workbench.models.pretrained import PATCHES_SIZE, patches_classifier, patches_vae
from workbench.relabel import RelabelDistillation
from workbench.train import accuracy


@pytest.fixture(scope="module")
def patch_models():
    """The smoke teacher and VAE (seconds to train on a CPU, then cached)."""
    return patches_classifier(smoke=True, progress=False), patches_vae(smoke=True, progress=False)


@pytest.fixture(scope="module")
def patch_test():
    return load_patches(PATCHES_SIZE, "test", max_per_class=10, seed=1)


def test_recipes_take_and_give_rgb_32x32_images(patch_models, patch_test):
    teacher, vae = patch_models
    x = patch_test.images[:4]
    assert x.shape == (4, 3, 32, 32)
    with torch.no_grad():
        assert teacher(x).shape == (4, len(PATCH_CLASSES))
        recon = vae.decode(vae.encode(x)[0])
    assert recon.shape == x.shape and 0 <= float(recon.min()) and float(recon.max()) <= 1
    assert {"test_acc", "history"} <= set(teacher.workbench_meta)
    assert {"test_mse", "history"} <= set(vae.workbench_meta)


def test_smoke_teacher_beats_chance_on_held_out_patches(patch_models, patch_test):
    teacher, _ = patch_models
    assert accuracy(teacher, patch_test.images, patch_test.labels) > 2 / len(PATCH_CLASSES)


def test_smoke_vae_reconstructs_better_than_the_mean_image(patch_models, patch_test):
    _, vae = patch_models
    x = patch_test.images
    with torch.no_grad():
        mse = float(((vae.decode(vae.encode(x)[0]) - x) ** 2).mean())
    assert mse < float(((x - x.mean(0)) ** 2).mean())


def test_relabel_explains_a_photograph_patch(patch_models, patch_test):
    teacher, vae = patch_models
    explanation = RelabelDistillation(teacher, vae, n_samples=200, residual=True).explain(patch_test.images[0])
    assert explanation.attribution.shape == (3, 32, 32)
    assert explanation.map2d.shape == (32, 32)
    assert torch.isfinite(explanation.attribution).all()
    assert explanation.status in {"ok", "out_of_band", "below_majority"}  # a fitted student (flagged if weak)
    assert float(explanation.attribution.abs().sum()) > 0


def test_benchmark_runs_on_patches_with_its_own_region_and_output(patch_models, tmp_path, monkeypatch,
                                                                 load_benchmark):
    import dataclasses
    import warnings

    import pandas as pd

    bench = load_benchmark("relabel")
    teacher, vae = patch_models
    patches = dataclasses.replace(bench.DATASETS["patches"], teacher=lambda: teacher, vae=lambda: vae)
    monkeypatch.setitem(bench.DATASETS, "patches", patches)
    assert patches.region == (8, 8, 16, 16) and bench.DATASETS["digits"].region == (4, 4, 8, 8)
    out = tmp_path / "relabel_patches"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bench.main(["--dataset", "patches", "--n-images", "3", "--n-samples", "20", "--timing-images", "1",
                    "--metric-step", "64", "--out", str(out)])
    table = pd.read_csv(out.with_suffix(".csv"))
    assert len(table) == 2 * len(bench.RLD_CONFIGS) + len(bench.BASELINES) and (table["images"] == 3).all()
    report = out.with_suffix(".md").read_text()
    assert "photograph patches" in report and "central 16x16 box" in report and "4x4-pixel grid cells" in report
