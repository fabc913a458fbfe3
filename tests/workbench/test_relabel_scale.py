"""RLD at real image sizes: bounded-memory chunking gives the same maps, and a VAE for a user's image folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import io as skio

from workbench.cache import CorruptCheckpointError
from workbench.models import ConvVAE
from workbench.relabel import RelabelDistillation
from workbench.relabel.folder_vae import CHECKPOINT, load_folder_images, train_folder_vae


class _MeanTeacher(torch.nn.Module):
    """Two classes: is the top-left quarter's mean above 0.7 (so only a quarter of the pixels matter)?"""

    largest_batch = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.largest_batch = max(self.largest_batch, x.shape[0])
        h, w = x.shape[-2:]
        score = x[..., : h // 2, : w // 2].mean((1, 2, 3)) - 0.7
        return torch.stack([score, -score], 1) * 200


@pytest.fixture(scope="module")
def vae() -> ConvVAE:
    torch.manual_seed(0)
    return ConvVAE(3, 32, latent_dim=8, width=8).eval()


def test_chunked_images_and_samples_give_the_same_maps(vae: ConvVAE) -> None:
    x = torch.rand(3, 3, 32, 32) * 0.2
    x[:, :, :16, :16] += 0.8  # a bright top-left: decoded cells there (about 0.5) can flip the label
    kw = dict(n_samples=60, sigma=1.0, residual=False)
    whole = RelabelDistillation(_MeanTeacher(), vae, batch_size=8192, max_batch=16, **kw)
    chunked = RelabelDistillation(_MeanTeacher(), vae, batch_size=16, max_batch=1, **kw)
    a, b = whole.attribute(x), chunked.attribute(x)
    assert chunked.forward_func.largest_batch <= 16 < whole.forward_func.largest_batch  # the batch bounded it
    assert a.abs().sum() > 0 and not {"no_flip", "all_flip"} & set(whole.last_status)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert whole.last_status == chunked.last_status


def test_explain_still_returns_every_sample(vae: ConvVAE) -> None:
    x = torch.rand(3, 32, 32) * 0.2
    x[:, :16, :16] += 0.8
    expl = RelabelDistillation(_MeanTeacher(), vae, n_samples=40, sigma=1.0, residual=False, batch_size=16).explain(x)
    assert expl.samples.shape == (40, 3, 32, 32) and expl.keep.shape[0] == 40


@pytest.mark.parametrize("bad", [0, -1, 2.5, "big"])
def test_a_bad_max_batch_is_refused(vae: ConvVAE, bad: object) -> None:
    with pytest.raises(ValueError, match="max_batch"):
        RelabelDistillation(_MeanTeacher(), vae, max_batch=bad)


def _folder(tmp_path, n: int = 6):
    rng = np.random.default_rng(0)
    for i in range(n):
        sub = tmp_path / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        skio.imsave(sub / f"img{i}.png", (rng.random((40, 50, 3)) * 255).astype(np.uint8), check_contrast=False)
    return tmp_path


def test_folder_images_are_read_at_any_depth_and_resized(tmp_path) -> None:
    images = load_folder_images(_folder(tmp_path), 16)
    assert images.shape == (6, 3, 16, 16) and 0 <= images.min() and images.max() <= 1
    assert load_folder_images(tmp_path, 16, channels=1).shape == (6, 1, 16, 16)


def test_an_empty_or_unreadable_folder_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        train_folder_vae(tmp_path / "nope", 16)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="holds no images"):
        train_folder_vae(tmp_path, 16)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        train_folder_vae(tmp_path, 16)


def test_training_reports_progress_checkpoints_and_resumes(tmp_path) -> None:
    folder = _folder(tmp_path / "imgs")
    seen: list[tuple[int, int]] = []
    kw = dict(latent_dim=4, width=4, batch_size=4, checkpoint_dir=tmp_path / "ckpt", checkpoint_every=2, device="cpu")
    vae = train_folder_vae(folder, 16, steps=4, progress=lambda s, t, m: seen.append((s, t)), **kw)
    assert seen == [(2, 4), (4, 4)] and (tmp_path / "ckpt" / CHECKPOINT).exists()
    assert not vae.training and vae.decode(torch.zeros(1, 4)).shape == (1, 3, 16, 16)
    seen.clear()
    resumed = train_folder_vae(folder, 16, steps=6, progress=lambda s, t, m: seen.append((s, t)), **kw)
    assert seen == [(6, 6)]  # only the two missing steps ran
    assert not torch.equal(resumed.fc_mu.weight, vae.fc_mu.weight)
    with pytest.raises(CorruptCheckpointError, match="other settings"):
        train_folder_vae(folder, 16, steps=6, **{**kw, "latent_dim": 8})
    (tmp_path / "ckpt" / CHECKPOINT).write_bytes(b"not a checkpoint")  # a half-copied file: named, never unpickled
    with pytest.raises(CorruptCheckpointError, match=CHECKPOINT):
        train_folder_vae(folder, 16, steps=6, **kw)
    assert not list((tmp_path / "ckpt").glob("*.tmp"))  # the atomic writes left no temp file behind
