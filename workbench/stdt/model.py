"""The STDT model: spatiotemporal dropout over a token tensor and the bag-of-patches ViT (see ``workbench.stdt``)."""

from __future__ import annotations

import math

import torch
from torch import nn


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
                 stem_width: int = 16, stem: str = "tubelet", stem_frames: int = 3, mask_head: bool = False) -> None:
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
        #: per-token manipulation logit (``mask_head=True``; trained by a recipe's ``mask_weight``), else None
        self.mask_head = nn.Linear(dim, 1) if mask_head else None

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

    def patch_mask_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Per-patch manipulation logits (B, K) of the encoded bag's patch tokens (a model built with ``mask_head``)."""
        if self.mask_head is None:
            raise ValueError("this model has no mask head: build it with mask_head=True")
        return self.mask_head(features[:, 1:]).squeeze(-1)

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
