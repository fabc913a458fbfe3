"""Spatiotemporal dropout transformer (STDT) for deepfake video detection.

Paper: Zhang, Lin, Hua, Wang, Zeng, Ge, *Deepfake Video Detection with Spatiotemporal Dropout Transformer*, ACM MM
2022 (arXiv:2207.06612). What the paper says (abstract + a figure caption only): face frames are cut into patches, a
spatiotemporal dropout (STD) drops patches across space and time, the kept patches of all frames form one *bag of
patches* fed to a vision transformer; STD doubles as data augmentation and plugs into existing ViTs.

Our reconstruction (the paper's details are not public):

* ``SpatiotemporalDropout(spatial_ratio, temporal_ratio, seed)`` works on any token tensor (B, T, N, D): per clip it
  keeps ``round((1 - rho_t) * T)`` frames and, in each kept frame, ``round((1 - rho_s) * N)`` patch positions
  (drawn independently per kept frame), returning the kept tokens (B, K, D) and their (t, n) indices. Identity in
  eval mode. A seeded ``torch.Generator`` makes draws reproducible.
* ``BagOfPatchesViT``: a small convolutional stem, then 8x8 patches of every frame, TimeSformer-style spatial
  ``pos_embed`` + temporal ``time_embed`` added *before* STD (so a kept token still knows where and when it came
  from), joint space-time attention over the bag (pre-norm blocks whose attention weights we compute ourselves, for
  the rollout), CLS token -> 2-way head. STD only in training, or averaged over ``test_draws`` draws at test time.
* The stem is ours: two 3x3 convolutions with BatchNorm + GELU, then the patchifying convolution. ``stem="tubelet"``
  (default) convolves over ``stem_frames`` neighbouring frames as well as space (ViViT's tubelet embedding, one token
  per frame and patch so that STD still drops frames and patches); ``stem="frame"`` sees one frame at a time. Only
  the tubelet stem with BatchNorm left chance reliably on the embedded clips (measured; other stems: not always).
* ``attention_rollout`` (Abnar & Zuidema 2020): heads averaged, identity added, rows normalised, multiplied over
  layers, the CLS row scattered back to (B, T, h, w). ``time_embedding=False`` + ``stem="frame"``: order-invariant.
* ``StdtRecipe`` (presets ``STDT_SMOKE`` / ``STDT_FULL``; ``STDT_SBI``: 64 px colour self-blended clips) is the
  recipe, its ``asdict()`` the cache key of ``stdt_detector``; ``stdt_dashboard_models`` the dashboard's defaults;
  ``inspect_draw`` scores a clip with every patch and with one STD draw, and returns the draw's rollout.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from workbench.data.clips import ClipSet, load_forgery_clips
from workbench.data.face_sbi import load_sbi_clips
from workbench.train import binary_scores, cached_model, classification_step, fit, predict_proba


class SpatiotemporalDropout(nn.Module):
    """Drop a share ``temporal_ratio`` of frames and ``spatial_ratio`` of patch positions per kept frame (training).

    ``forward(tokens (B, T, N, D)) -> (kept (B, K, D), t_index (B, K), n_index (B, K))`` with
    ``K = round((1 - rho_t) T) * round((1 - rho_s) N)``; at least one frame and one patch are always kept.
    """

    def __init__(self, spatial_ratio: float = 0.25, temporal_ratio: float = 0.25, seed: int | None = None) -> None:
        super().__init__()
        for name, value in (("spatial_ratio", spatial_ratio), ("temporal_ratio", temporal_ratio)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must lie in [0, 1); got {value}")
        self.spatial_ratio = float(spatial_ratio)
        self.temporal_ratio = float(temporal_ratio)
        self.generator = torch.Generator()
        self.reseed(seed)

    def reseed(self, seed: int | None) -> None:
        """Restart the draws from ``seed`` (None: a fresh random seed)."""
        self.generator.manual_seed(int(seed) if seed is not None else int(torch.randint(0, 2**62, (1,))))

    def kept_counts(self, frames: int, patches: int) -> tuple[int, int]:
        """(kept frames, kept patches per kept frame)."""
        return (max(1, int(round((1 - self.temporal_ratio) * frames))),
                max(1, int(round((1 - self.spatial_ratio) * patches))))

    def draw(self, batch: int, frames: int, patches: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One draw of kept indices ``(t_index, n_index)``, each (batch, K), frame-major and sorted."""
        kt, kn = self.kept_counts(frames, patches)
        t_idx = torch.stack([torch.randperm(frames, generator=self.generator)[:kt].sort().values
                             for _ in range(batch)])
        n_idx = torch.stack([torch.stack([torch.randperm(patches, generator=self.generator)[:kn].sort().values
                                          for _ in range(kt)]) for _ in range(batch)])
        return t_idx[:, :, None].expand(batch, kt, kn).reshape(batch, -1), n_idx.reshape(batch, -1)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if tokens.ndim != 4:
            raise ValueError(f"tokens must be (B, T, N, D); got shape {tuple(tokens.shape)}")
        b, t, n, _ = tokens.shape
        if self.training:
            t_idx, n_idx = self.draw(b, t, n)
        else:
            t_idx = torch.arange(t).repeat_interleave(n).expand(b, -1)
            n_idx = torch.arange(n).repeat(t).expand(b, -1)
        return gather_tokens(tokens, t_idx, n_idx), t_idx.to(tokens.device), n_idx.to(tokens.device)


def gather_tokens(tokens: torch.Tensor, t_idx: torch.Tensor, n_idx: torch.Tensor) -> torch.Tensor:
    """Tokens (B, T, N, D) at the (t, n) indices (B, K) -> (B, K, D)."""
    b, _, n, d = tokens.shape
    flat = (t_idx * n + n_idx).to(tokens.device)
    return tokens.reshape(b, -1, d).gather(1, flat[:, :, None].expand(-1, -1, d))


class Block(nn.Module):
    """Pre-norm transformer block (joint space-time attention + MLP) that can return its attention weights."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, int(dim * mlp_ratio)), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(int(dim * mlp_ratio), dim))

    def forward(self, x: torch.Tensor, return_attention: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        b, k, d = x.shape
        q, kk, v = self.qkv(self.norm1(x)).reshape(b, k, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = torch.softmax(q @ kk.transpose(-2, -1) / math.sqrt(d // self.heads), dim=-1)
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(b, k, d))
        x = x + self.mlp(self.norm2(x))
        return (x, attn) if return_attention else x


class BagOfPatchesViT(nn.Module):
    """Bag-of-patches ViT with spatiotemporal dropout; ``forward(clips (B, T, C, H, W)) -> logits (B, 2)``."""

    def __init__(self, image_size: int = 32, patch_size: int = 8, frames: int = 8, dim: int = 64, depth: int = 4,
                 heads: int = 4, spatial_ratio: float = 0.25, temporal_ratio: float = 0.25, test_draws: int = 0,
                 in_channels: int = 1, num_classes: int = 2, time_embedding: bool = True, seed: int | None = None,
                 stem_width: int = 16, stem: str = "tubelet", stem_frames: int = 3) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} must be a multiple of patch_size {patch_size}")
        if dim % heads:
            raise ValueError(f"dim {dim} must be a multiple of heads {heads}")
        if stem not in ("tubelet", "frame"):
            raise ValueError(f"stem must be 'tubelet' or 'frame'; got {stem!r}")
        if stem_frames < 1 or stem_frames % 2 == 0:
            raise ValueError(f"stem_frames must be an odd number >= 1; got {stem_frames}")
        self.image_size, self.patch_size, self.frames, self.in_channels = image_size, patch_size, frames, in_channels
        self.grid = image_size // patch_size
        self.test_draws = int(test_draws)
        self.time_embedding = time_embedding
        self.stem = stem
        kt = stem_frames if stem == "tubelet" else 1  # temporal kernel: tubelet stem or per-frame stem
        self.patch_embed = nn.Sequential(  # a small convolutional stem before patchifying (hybrid ViT): tiny data
            nn.Conv3d(in_channels, stem_width, (kt, 3, 3), padding=(kt // 2, 1, 1)), nn.BatchNorm3d(stem_width),
            nn.GELU(),
            nn.Conv3d(stem_width, stem_width, (kt, 3, 3), padding=(kt // 2, 1, 1)), nn.BatchNorm3d(stem_width),
            nn.GELU(),
            nn.Conv3d(stem_width, dim, (1, patch_size, patch_size), (1, patch_size, patch_size)))
        self.pos_embed = nn.Parameter(torch.randn(1, 1, self.grid**2, dim) * 0.02)
        self.time_embed = nn.Parameter(torch.randn(1, frames, 1, dim) * 0.02, requires_grad=time_embedding)
        if not time_embedding:
            self.time_embed.data.zero_()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.std = SpatiotemporalDropout(spatial_ratio, temporal_ratio, seed)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def check_clips(self, clips: torch.Tensor) -> torch.Tensor:
        """Validate (B, T, C, H, W) clips: clear ValueError for wrong shape, empty batch, NaN/Inf."""
        if not isinstance(clips, torch.Tensor):
            raise TypeError(f"clips must be a torch.Tensor (B, T, C, H, W); got {type(clips).__name__}")
        expected = (self.frames, self.in_channels, self.image_size, self.image_size)
        if clips.ndim != 5 or tuple(clips.shape[1:]) != expected:
            raise ValueError(f"clips must be (B, {', '.join(map(str, expected))}) = (B, T, C, H, W); "
                             f"got shape {tuple(clips.shape)}")
        if clips.shape[0] == 0:
            raise ValueError("clips is an empty batch (B = 0)")
        if not torch.isfinite(clips).all():
            raise ValueError(f"clips contain {int((~torch.isfinite(clips)).sum())} NaN/Inf value(s)")
        return clips.float()

    def tokens(self, clips: torch.Tensor) -> torch.Tensor:
        """Patch tokens with spatial + temporal position embeddings, (B, T, N, D)."""
        clips = self.check_clips(clips)
        x = self.patch_embed(((clips - 0.5) / 0.25).transpose(1, 2))  # (B, D, T, h, w)
        return x.flatten(3).permute(0, 2, 3, 1) + self.pos_embed + self.time_embed

    def encode(self, tokens: torch.Tensor, return_attention: bool = False
               ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Encode a bag of tokens (B, K, D) with a CLS token prepended; optionally the per-block attention."""
        x = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], 1)
        attns = []
        for blk in self.blocks:
            if return_attention:
                x, a = blk(x, True)
                attns.append(a)
            else:
                x = blk(x)
        x = self.norm(x)
        return (x, attns) if return_attention else x

    def forward_features(self, clips: torch.Tensor, keep: tuple[torch.Tensor, torch.Tensor] | None = None
                         ) -> torch.Tensor:
        """The encoded bag (B, 1 + K, D), CLS first; STD in training, or the given ``keep = (t_idx, n_idx)``."""
        tok = self.tokens(clips)
        bag = gather_tokens(tok, *keep) if keep is not None else self.std(tok)[0]
        return self.encode(bag)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits (B, classes) from the CLS token of the encoded bag."""
        return self.head(features[:, 0])

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        if self.training or self.test_draws <= 0:
            return self.forward_head(self.forward_features(clips))
        tok = self.tokens(clips)
        b, t, n, _ = tok.shape
        logits = [self.forward_head(self.encode(gather_tokens(tok, *self.std.draw(b, t, n))))
                  for _ in range(self.test_draws)]
        return torch.stack(logits).mean(0)

    def attention_rollout(self, clips: torch.Tensor, keep: tuple[torch.Tensor, torch.Tensor] | None = None
                          ) -> torch.Tensor:
        """CLS attention rollout per patch and frame, (B, T, h, w), summing to 1 over kept patches (0 if dropped)."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                tok = self.tokens(clips)
                b, t, n, _ = tok.shape
                if keep is None:
                    keep = (torch.arange(t).repeat_interleave(n).expand(b, -1), torch.arange(n).repeat(t).expand(b, -1))
                _, attns = self.encode(gather_tokens(tok, *keep), return_attention=True)
                k = attns[0].shape[-1]
                roll = torch.eye(k, device=tok.device).expand(b, k, k)
                for a in attns:
                    a = a.mean(1) + torch.eye(k, device=tok.device)
                    roll = (a / a.sum(-1, keepdim=True)) @ roll
                cls = roll[:, 0, 1:]
                cls = cls / cls.sum(-1, keepdim=True).clamp_min(1e-12)
                out = torch.zeros(b, t * n, device=tok.device)
                out.scatter_(1, (keep[0] * n + keep[1]).to(tok.device), cls)
        finally:
            self.train(was_training)
        return out.reshape(b, t, self.grid, self.grid)


# ----------------------------------------------------------------------------------------------------- inspection
def kept_mask(keep: tuple[torch.Tensor, torch.Tensor], frames: int, grid: int) -> np.ndarray:
    """(T, grid, grid) boolean map of the kept patches of one clip's draw ``keep = (t_idx (K,), n_idx (K,))``."""
    out = np.zeros(frames * grid * grid, bool)
    out[(keep[0] * grid * grid + keep[1]).numpy()] = True
    return out.reshape(frames, grid, grid)


def dropout_draw(model: BagOfPatchesViT, spatial_ratio: float, temporal_ratio: float, seed: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """One seeded STD draw for one clip of ``model``'s shape: kept ``(t_idx, n_idx)``, each (1, K)."""
    std = SpatiotemporalDropout(spatial_ratio, temporal_ratio, seed=seed)
    return std.draw(1, model.frames, model.grid**2)


class DrawInspection(NamedTuple):
    """What one STD draw of one clip does: the video score without dropout, the draw's score, where it looks."""

    score: float  #: P(fake) of the whole bag (no dropout)
    drawn_score: float  #: P(fake) of the kept patches only
    kept: np.ndarray  #: (T, h, w) bool, the kept patches
    rollout: np.ndarray  #: (T, h, w) attention rollout over the kept patches (0 where dropped)


def inspect_draw(model: BagOfPatchesViT, clip: torch.Tensor, keep: tuple[torch.Tensor, torch.Tensor]
                 ) -> DrawInspection:
    """Score ``clip`` (1, T, C, H, W) with every patch and with the draw ``keep``; the draw's attention rollout."""
    model.eval()
    with torch.no_grad():
        tok = model.tokens(clip)
        score, drawn = (float(torch.softmax(model.forward_head(model.encode(bag)), 1)[0, 1])
                        for bag in (tok.flatten(1, 2), gather_tokens(tok, *keep)))
    rollout = model.attention_rollout(clip, keep)[0].numpy()
    return DrawInspection(score, drawn, kept_mask((keep[0][0], keep[1][0]), model.frames, model.grid), rollout)


# --------------------------------------------------------------------------------------------------------- training
def predict_video_proba(model: nn.Module, clips: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """P(fake) per clip (eval mode, on the model's device)."""
    return predict_proba(model, clips, batch_size)


def video_auc(model: nn.Module, data: ClipSet, batch_size: int = 64) -> dict[str, float]:
    """Video-level ROC AUC and accuracy (threshold 0.5) of P(fake)."""
    return binary_scores(model, data.clips, data.labels, batch_size)


#: The ``fit`` step: cross-entropy on the clip labels (the training kit's classification step).
step = classification_step


@dataclass(frozen=True)
class StdtRecipe:
    """Everything that makes a trained STDT; ``dataclasses.asdict`` of it is the cache key. Presets: ``STDT_FULL``
    (780 training clips, ~3 min on one CPU core, seconds on a GPU), ``STDT_SMOKE`` (520 clips, 8 epochs, ~40 s on one
    CPU core; held-out AUC 0.94 with STD, 0.87 without, seed 0); ``SbiStdtRecipe`` / ``STDT_SBI``: colour
    self-blended clips (64 px, 16 px patches). ``spatial_ratio = temporal_ratio = 0``: the model without dropout."""

    n_per_identity: int = 6
    epochs: int = 24
    dim: int = 32
    depth: int = 2
    heads: int = 2
    batch_size: int = 16
    size: int = 32
    frames: int = 8
    patch_size: int = 8
    stem: str = "tubelet"
    lr: float = 1e-3
    weight_decay: float = 0.05
    spatial_ratio: float = 0.25
    temporal_ratio: float = 0.25
    seed: int = 0
    data_seed: int = 0
    train_kinds: tuple[str, ...] = ("self_blend", "swap", "color", "warp")
    flicker: float = 1.0
    recipe: str = "stdt_detector"

    def __post_init__(self) -> None:  # a list given by a caller becomes a tuple: hashable, the same cache key
        object.__setattr__(self, "train_kinds", tuple(self.train_kinds))


@dataclass(frozen=True)
class SbiStdtRecipe(StdtRecipe):
    """An STDT recipe on colour self-blended clips (``load_sbi_clips``) of ``face_source`` ("" = embedded faces)."""
    face_source: str = ""
    recipe: str = "stdt_detector_sbi"


STDT_FULL = StdtRecipe()
STDT_SMOKE = StdtRecipe(n_per_identity=4, epochs=8)
STDT_SBI = SbiStdtRecipe(size=64, patch_size=16, n_per_identity=6, epochs=10,  # 2 clips x 12 epochs stayed at chance
                         train_kinds=("self_blend",))
STDT_SBI_SMOKE = dataclasses.replace(STDT_SBI, n_per_identity=1, epochs=3)


def stdt_config(std: bool = True, smoke: bool = False, seed: int = 0, data: str = "embedded", **overrides: Any
                ) -> StdtRecipe:
    """The recipe of ``stdt_detector``: the smoke or full preset of ``data`` ("embedded" or "sbi"), without dropout
    when ``std=False``, with ``seed`` and any other field changed."""
    presets = {"embedded": (STDT_FULL, STDT_SMOKE), "sbi": (STDT_SBI, STDT_SBI_SMOKE)}
    if data not in presets:
        raise ValueError(f"data must be 'embedded' or 'sbi'; got {data!r}")
    changes = {"spatial_ratio": 0.25 if std else 0.0, "temporal_ratio": 0.25 if std else 0.0, "seed": seed}
    return dataclasses.replace(presets[data][smoke], **{**changes, **overrides})  # an override wins over ``std``


def build_stdt(config: StdtRecipe) -> BagOfPatchesViT:
    """The untrained model of a recipe (weights seeded by ``config.seed``)."""
    torch.manual_seed(config.seed)
    return BagOfPatchesViT(config.size, config.patch_size, config.frames, config.dim, config.depth, config.heads,
                           config.spatial_ratio, config.temporal_ratio, seed=config.seed, stem=config.stem,
                           in_channels=3 if isinstance(config, SbiStdtRecipe) else 1)


def training_clips(config: StdtRecipe) -> tuple[ClipSet, ClipSet]:
    """(train split of ``config.train_kinds``, val split) of the embedded clips for a recipe (``data="sbi"``: the
    self-blended colour clips of ``config.face_source``, augmented train split)."""
    if isinstance(config, SbiStdtRecipe):
        source = config.face_source or None
        return tuple(load_sbi_clips(split, config.size, config.frames, config.n_per_identity, source, config.data_seed)
                     for split in ("train", "val"))
    train = load_forgery_clips("train", config.size, config.frames, config.n_per_identity, seed=config.data_seed,
                               flicker=config.flicker)
    val = load_forgery_clips("val", config.size, config.frames, config.n_per_identity, seed=config.data_seed,
                             flicker=config.flicker)
    return train.with_kinds(config.train_kinds), val


def train_stdt(model: BagOfPatchesViT, config: StdtRecipe, device: str = "auto", progress: bool = True,
               max_steps: int | None = None) -> dict[str, Any]:
    """Train on the embedded clips' train split (``config.train_kinds``) with ``fit``; validation AUC per epoch.

    Returns the per-epoch history, the last validation metrics and ``train_clips`` (clips per epoch)."""
    train, val = training_clips(config)
    hist = fit(model, train.loader(config.batch_size, seed=config.seed), step, epochs=config.epochs, lr=config.lr,
               weight_decay=config.weight_decay, device=device, progress=progress, max_steps=max_steps,
               seed=config.seed, desc="STDT" if config.spatial_ratio else "ViT (no STD)",
               evaluate=lambda m: {f"val_{k}": v for k, v in video_auc(m, val).items()})
    return {"history": hist.epochs, "train_clips": len(train),
            **{k: v for k, v in hist.epochs[-1].items() if k.startswith("val_")}}


def stdt_detector(std: bool = True, smoke: bool = False, device: str = "auto", retrain: bool = False,
                  progress: bool = True, seed: int = 0, **overrides: Any) -> BagOfPatchesViT:
    """The cached bag-of-patches ViT trained on the embedded clips, with STD (``std=True``) or without."""
    config = stdt_config(std, smoke, seed, **overrides)
    kind = "sbi_" if isinstance(config, SbiStdtRecipe) else ""
    name = f"stdt_{kind}{'std' if std else 'nostd'}{'_smoke' if smoke else ''}"
    return cached_model(name, lambda: build_stdt(config), lambda m: train_stdt(m, config, device, progress),
                        config, retrain=retrain)


def stdt_dashboard_models(smoke: bool | None = None, device: str = "auto", progress: bool = True,
                          which: tuple[str, ...] = ("STD", "no STD")) -> dict[str, BagOfPatchesViT]:
    """The STD dashboard's default models ``{"STD": ..., "no STD": ...}`` (``which`` of them): the cached
    ``stdt_detector`` recipes with / without dropout (``smoke`` None: smoke on a CPU, full on a GPU); a release
    ships exactly these weights."""
    from workbench.train import smoke_mode
    stds = {"STD": True, "no STD": False}
    return {name: stdt_detector(stds[name], smoke_mode(smoke), device, progress=progress) for name in which}
