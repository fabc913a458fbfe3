"""A VAE for re-label distillation at a user's image size (64-256 px), trained on their image folder (ours, issue 13).

RLD samples around an image through a VAE trained on the same domain and size; the project's cached VAEs exist only
for 16 px digits and 32 px patches. :func:`train_folder_vae` trains a :class:`~workbench.models.ConvVAE` on any
folder of images (or a tensor of images) with the project's one training loop (:func:`workbench.train.fit`, mixed
precision on CUDA), in segments of ``checkpoint_every`` steps: after each one it calls ``progress`` and writes a
checkpoint (model, optimiser, step, settings; atomically), and a second call with the same ``checkpoint_dir`` resumes
from the last checkpoint instead of starting over.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

from workbench.cache import CorruptCheckpointError, load_state, save_state
from workbench.data.patches import IMAGE_SUFFIXES, _to_square_tensor
from workbench.models.vae import ConvVAE, vae_step
from workbench.train import fit, resolve_device

#: ``progress(step, total_steps, metrics)`` after every checkpoint segment (metrics: loss, recon, kl of the segment)
Progress = Callable[[int, int, dict[str, float]], None]
CHECKPOINT = "vae_last.pt"


def load_folder_images(folder: str | Path, size: int, channels: int = 3, limit: int | None = None) -> torch.Tensor:
    """Every image under ``folder`` (any depth, sorted paths), centre-cropped to a square and resized to ``size``,
    as (N, channels, size, size) in [0, 1]; grey (``channels=1``) is the mean of R, G, B. A missing or empty folder,
    or an unreadable file, is an error naming the path."""
    from skimage import io as skio

    root = Path(folder).expanduser()
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3; got {channels!r}")
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist (expected a folder of images, any depth)")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not files:
        raise ValueError(f"image folder {root} holds no images ({', '.join(IMAGE_SUFFIXES)}), at any depth")
    images = []
    for path in files:
        try:
            img = np.asarray(skio.imread(path))
        except Exception as exc:  # truncated/corrupt file, unknown format ...
            raise ValueError(f"cannot read image {path}: {exc}") from exc
        x = _to_square_tensor(img, size, path)
        images.append(x.mean(0, keepdim=True) if channels == 1 else x)
    return torch.stack(images)


def _load_checkpoint(path: Path, settings: dict) -> dict | None:
    """The checkpoint at ``path`` if there is one for the same settings; a corrupt or foreign one is a
    ``CorruptCheckpointError`` naming the file."""
    if not path.exists():
        return None
    state = load_state(path)
    saved = state.get("settings")
    if saved != settings:
        raise CorruptCheckpointError(f"checkpoint {path} was written for other settings ({saved}, now {settings}); "
                                     "use another checkpoint_dir or delete it to start over")
    return state


def train_folder_vae(
    images: str | Path | torch.Tensor,
    image_size: int = 128,
    *,
    channels: int = 3,
    latent_dim: int = 64,
    width: int = 32,
    steps: int = 2000,
    batch_size: int = 64,
    lr: float = 1e-3,
    device: str | torch.device = "auto",
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 200,
    progress: Progress | None = None,
    seed: int = 0,
) -> ConvVAE:
    """Train a :class:`ConvVAE` for RLD on ``images`` (a folder, read by :func:`load_folder_images`, or an
    (N, C, H, W) tensor in [0, 1] at ``image_size``) for ``steps`` optimiser steps; returns it in eval mode.

    With ``checkpoint_dir``, a checkpoint is written there every ``checkpoint_every`` steps and training resumes from
    it when called again with the same settings (``steps`` may grow; a checkpoint of other settings is an error,
    never silently used).
    ``progress(step, steps, metrics)`` is called after every segment. Mixed precision on CUDA.
    """
    if isinstance(images, torch.Tensor):
        if images.dim() != 4 or tuple(images.shape[-2:]) != (image_size, image_size) or images.shape[1] != channels:
            raise ValueError(f"images must be (N, {channels}, {image_size}, {image_size}); got {tuple(images.shape)}")
        data = images.float()
    else:
        data = load_folder_images(images, image_size, channels)
    if steps < 1 or checkpoint_every < 1:
        raise ValueError(f"steps and checkpoint_every must be >= 1; got {steps}, {checkpoint_every}")
    settings = {"image_size": image_size, "channels": channels, "latent_dim": latent_dim, "width": width,
                "batch_size": batch_size, "lr": lr, "seed": seed}
    torch.manual_seed(seed)
    dev = resolve_device(device)
    vae = ConvVAE(channels, image_size, latent_dim, width).to(dev)
    data = data.to(dev) if dev.type == "cuda" else data
    opt = torch.optim.AdamW(vae.parameters(), lr=lr)
    path = None if checkpoint_dir is None else Path(checkpoint_dir).expanduser() / CHECKPOINT
    state = None if path is None else _load_checkpoint(path, settings)
    done = 0
    if state is not None:
        vae.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        done = int(state["step"])
    loader = DataLoader(TensorDataset(data), batch_size=min(batch_size, len(data)), drop_last=True,
                        sampler=RandomSampler(data, generator=torch.Generator().manual_seed(seed + done)))
    while done < steps:
        segment = min(checkpoint_every, steps - done)
        epochs = -(-segment // len(loader))
        history = fit(vae, loader, vae_step, epochs=epochs, optimizer=opt, device=device, max_steps=segment,
                      seed=None, progress=False, desc="folder VAE")
        done += segment
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_state(path, {"model": vae.state_dict(), "optimizer": opt.state_dict(), "step": done,
                                    "settings": settings})
        if progress is not None:
            progress(done, steps, history.epochs[-1] if history.epochs else {})
    return vae.eval()
