"""What a whitening detector shows: IFFD's channel maps, Grad-CAM for comparison, the channel gallery's statistics.

A channel map is the layer's channel after a sigmoid, up-sampled bilinearly to the image and min-max normalised per
image (the explanation of the group's public IFFD code); ``channel_gallery`` summarises every channel over a set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F

from workbench.data.faces import region_mask
from workbench.runtime import model_device
from workbench.validation import check_images
from workbench.whitening.model import WhiteningDetector


def _minmax(maps: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each map over its last two (spatial) axes."""
    flat = maps.flatten(-2)
    lo, hi = flat.min(-1, keepdim=True).values, flat.max(-1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp(min=1e-8)).view_as(maps)


def sigmoid_maps(fmap: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, C, h, w) channel activations -> (B, C, *size) maps: sigmoid, bilinear up-sampling, min-max per map."""
    up = F.interpolate(torch.sigmoid(fmap.float()), size=size, mode="bilinear", align_corners=False)
    return _minmax(up)


def _layer_output(model: WhiteningDetector, images: torch.Tensor, value_range: tuple[float, float] | None = (0, 1)
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(validated images, the layer's channel maps (B, C, h, w) on the CPU), eval mode, no gradients."""
    x = check_images(images, "images", channels=model.in_channels, value_range=value_range)
    model.eval()
    with torch.no_grad():
        return x, model.whitened_features(x.to(model_device(model))).float().cpu()


def all_channel_maps(model: WhiteningDetector, images: torch.Tensor) -> torch.Tensor:
    """IFFD's map of every channel of the layer -> (B, C, H, W) in [0, 1]."""
    x, fmap = _layer_output(model, images)
    return sigmoid_maps(fmap, tuple(x.shape[-2:]))


def channel_maps(model: WhiteningDetector, images: torch.Tensor, channel: int) -> torch.Tensor:
    """IFFD's explanation: channel ``channel`` of the layer, sigmoid, min-max per image, upsampled -> (B, H, W)."""
    x = check_images(images, "images", channels=model.in_channels, value_range=(0, 1))
    n_channels = model.norm_layer.num_features
    if not 0 <= channel < n_channels:
        raise ValueError(f"channel must lie in [0, {n_channels - 1}]; got {channel}")
    x, fmap = _layer_output(model, x)
    return sigmoid_maps(fmap[:, channel:channel + 1], tuple(x.shape[-2:]))[:, 0]


def gradcam_maps(model: WhiteningDetector, images: torch.Tensor, target: int = 1) -> torch.Tensor:
    """Grad-CAM (Captum ``LayerGradCam`` on the last conv block) for class ``target``, ReLU, min-max -> (B, H, W)."""
    from captum.attr import LayerAttribution, LayerGradCam

    x = check_images(images, "images", channels=model.in_channels, value_range=(0, 1))
    model.eval()
    cam = LayerGradCam(model, model.gradcam_layer).attribute(x.to(model_device(model)), target=target,
                                                             relu_attributions=True)
    up = LayerAttribution.interpolate(cam.detach(), tuple(x.shape[-2:]), interpolate_mode="bilinear")
    return _minmax(up[:, 0].float()).cpu()


def channel_region_scores(model: WhiteningDetector, images: torch.Tensor,
                          regions: Sequence[str] = ("eyes", "nose", "mouth")) -> torch.Tensor:
    """(C, R) mean activation of each layer channel inside each facial region, z-scored per channel over regions.

    Drawn by the channel gallery: which facial region each channel answers to.
    """
    x, fmap = _layer_output(model, images, value_range=None)
    h = fmap.shape[-1]
    scores = []
    for name in regions:
        weights = F.adaptive_avg_pool2d(torch.from_numpy(region_mask(name, x.shape[-1]))[None, None], (h, h))[0, 0]
        scores.append((fmap * weights).sum((2, 3)).mean(0) / weights.sum())
    table = torch.stack(scores, 1)
    return (table - table.mean(1, keepdim=True)) / table.std(1, keepdim=True).clamp(min=1e-8)


class ChannelGallery(NamedTuple):
    """Every channel of the layer over a set of faces: its mean map and the facial region it fires most on."""

    mean_maps: torch.Tensor  #: (C, h, w) mean channel activation
    best_regions: tuple[str, ...]  #: per channel, the region of ``regions`` with the highest z-score


def channel_gallery(model: WhiteningDetector, images: torch.Tensor,
                    regions: Sequence[str] = ("eyes", "nose", "mouth")) -> ChannelGallery:
    """The channel gallery's numbers: mean channel maps over ``images`` and each channel's best facial region."""
    _, fmap = _layer_output(model, images, value_range=None)
    scores = channel_region_scores(model, images, regions)
    return ChannelGallery(fmap.mean(0), tuple(regions[int(row.argmax())] for row in scores))
