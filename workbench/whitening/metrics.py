"""How good and how interpretable a whitening detector is: decorrelation, the pointing game, P(fake) and AUC.

P(fake), accuracy and AUC are the training kit's (:func:`workbench.train.predict_proba`,
:func:`workbench.train.binary_scores`), the same as every other forgery detector of the workbench.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from workbench.data.faces import ForgerySet
from workbench.evaluation.localisation import pointing_hits
from workbench.train import binary_scores, model_device, predict_proba
from workbench.validation import check_images
from workbench.whitening.maps import all_channel_maps
from workbench.whitening.model import WhiteningDetector
from workbench.whitening.reading import reader_sentence, reading_domain, reading_input


def pointing_game(maps: torch.Tensor, masks: torch.Tensor, threshold: float = 0.3) -> float:
    """Fraction of images whose map maximum lies inside the true mask (soft mask > ``threshold``); the rule is
    :func:`workbench.evaluation.localisation.pointing_hits`, the scorecard's PointingGame."""
    if maps.shape[0] == 0:
        raise ValueError("pointing_game needs at least one map")
    masks = masks.reshape(maps.shape)
    return float(pointing_hits(maps.flatten(1), masks.flatten(1) > threshold).mean())


def pointing_per_channel(model: WhiteningDetector, images: torch.Tensor, masks: torch.Tensor,
                         threshold: float = 0.3) -> np.ndarray:
    """Pointing game of the map of every channel of the layer, (C,)."""
    maps = all_channel_maps(model, images)
    return np.array([pointing_game(maps[:, c], masks, threshold) for c in range(maps.shape[1])])


def channel_correlation(features: torch.Tensor) -> torch.Tensor:
    """Pearson correlation (C, C) of a layer's channels over all positions and images (constant channels: 0)."""
    c = features.shape[1]
    flat = features.detach().float().transpose(0, 1).reshape(c, -1)
    flat = flat - flat.mean(1, keepdim=True)
    std = flat.pow(2).mean(1).sqrt()
    corr = (flat @ flat.T) / flat.shape[1] / (std[:, None] * std[None, :]).clamp(min=1e-12)
    alive = std > 1e-6
    corr = corr * (alive[:, None] & alive[None, :])
    return corr.fill_diagonal_(1.0)


def mean_abs_offdiagonal(corr: torch.Tensor) -> float:
    """Mean |off-diagonal entry| of a (C, C) correlation matrix (0 = fully decorrelated)."""
    c = corr.shape[0]
    return float((corr.abs().sum() - corr.diagonal().abs().sum()) / max(c * (c - 1), 1))


def mean_offdiag_correlation(features: torch.Tensor) -> float:
    """Decorrelation measure: mean |off-diagonal correlation| of a layer's channels (0 = fully decorrelated)."""
    return mean_abs_offdiagonal(channel_correlation(features))


def layer_correlations(model: WhiteningDetector, images: torch.Tensor, batch_size: int = 256
                       ) -> dict[str, torch.Tensor]:
    """Channel correlation of the layer's input (``"before"``) and output (``"after"``), eval mode, over ``images``."""
    x = check_images(images, "images", channels=model.in_channels)
    dev = model_device(model)
    model.eval()
    pre, post = [], []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out = model.forward_internals(x[i:i + batch_size].to(dev))
            pre.append(out.pre_norm.float().cpu())
            post.append(out.norm.float().cpu())
    return {"before": channel_correlation(torch.cat(pre)), "after": channel_correlation(torch.cat(post))}


def predict_fake_proba(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """P(fake) for each image (eval mode, on the model's device)."""
    return predict_proba(model, images, batch_size)


class FaceReading(NamedTuple):
    """What one detector says about one face: P(fake), the map of every channel of its layer, the input domain the
    face was read in (:func:`workbench.whitening.reading.reading_domain`) and which model read it, trained on what
    (:func:`~workbench.whitening.reading.reader_sentence`)."""

    p_fake: float
    maps: torch.Tensor  #: (C, H, W) in [0, 1], ``all_channel_maps``
    domain: str = "as_given"
    reader: str = ""


def read_face(models: Mapping[str, WhiteningDetector], face: torch.Tensor) -> dict[str, FaceReading]:
    """P(fake) and the channel maps of one (C, H, W) face (e.g. ``workbench.inputs.load_face``) for every named
    detector, each fed the face in its training domain (``reading_input``: the shipped SBI colour detectors read it
    as tinted grey): what the dashboard shows for a user's photo."""
    if face.ndim != 3:
        raise ValueError(f"expected one face of shape (C, H, W); got shape {tuple(face.shape)}")
    readings = {}
    for name, model in models.items():
        x = reading_input(model, face[None])
        readings[name] = FaceReading(float(predict_fake_proba(model, x)[0]), all_channel_maps(model, x)[0],
                                     reading_domain(model), reader_sentence(model, name))
    return readings


def evaluate_detector(model: nn.Module, data: ForgerySet, batch_size: int = 512) -> dict[str, float]:
    """Frame-level accuracy (threshold 0.5) and ROC AUC of P(fake) on ``data``."""
    scores = binary_scores(model, data.images, data.labels, batch_size)
    return {"acc": scores["acc"], "auc": scores["auc"]}
