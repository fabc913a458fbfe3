"""The whitening detector: ``SmallCNN`` with a ``WhiteningBlock`` at a chosen depth, or its plain BatchNorm baseline.

Its internals (the layer's input and output, the features, the logits) are reachable without hooks through
``forward_internals``; ``concept_weights`` says which samples and positions show a concept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from workbench.data.faces import FACE_REGIONS, region_mask
from workbench.models.classifier import SmallCNN
from workbench.runtime import model_device
from workbench.whitening.layers import batchnorm_layers, batchnorm_or_whitening_layers, replace_batchnorm

#: Default concepts of the rotation: channel 0 answers to manipulated pixels, 1..3 to facial regions.
DEFAULT_CONCEPTS: tuple[str, ...] = ("manipulated", "eyes", "nose", "mouth")
CLASS_CONCEPTS: dict[str, int] = {"real": 0, "fake": 1}


def _run_capturing(seq: nn.Module, x: torch.Tensor, parts: Sequence[str]
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run a chain of nested ``nn.Sequential``; return (output, input of, output of) the module at ``parts``."""
    pre = post = None
    for name, child in seq.named_children():
        if name == parts[0]:
            if len(parts) > 1:
                x, pre, post = _run_capturing(child, x, parts[1:])
            else:
                pre = x
                x = child(x)
                post = x
        else:
            x = child(x)
    if pre is None or post is None:
        raise ValueError(f"module {parts[0]!r} not found in {type(seq).__name__}")
    return x, pre, post


class DetectorInternals(NamedTuple):
    """One forward pass of a ``WhiteningDetector`` seen from inside (``forward_internals``).

    Ours, not timm's ``forward_intermediates`` (which returns the final features and a list of block outputs): the
    four tensors the dashboards and metrics need, by name.
    """

    pre_norm: torch.Tensor  #: the whitening (or BatchNorm) layer's input (B, C, h, w)
    norm: torch.Tensor  #: its output: the whitened, rotated channel maps (B, C, h, w)
    features: torch.Tensor  #: the backbone's last feature map
    logits: torch.Tensor  #: (B, 2), index 1 = fake


class WhiteningDetector(nn.Module):
    """Real/fake face detector: ``SmallCNN`` with a ``WhiteningBlock`` (``whiten=True``) or its BatchNorm at ``layer``.

    ``forward(x)`` -> logits (B, 2) (index 1 = fake); ``forward_features(x)`` -> last feature map;
    ``forward_internals(x)`` -> ``DetectorInternals`` with ``pre_norm`` (the layer's input), ``norm`` (its output:
    the whitened, rotated channel maps), ``features`` and ``logits``; ``whitened_features(x)`` -> ``norm``.
    ``concepts[k]`` names what channel k of the layer is aligned with (whitened detector only); ``in_channels``
    (1 grey, 3 colour) and ``image_size`` record the input it was built for (the network itself is size-agnostic).
    """

    def __init__(self, in_channels: int = 1, width: int = 16, depth: int = 3, whiten: bool = True,
                 layer: str = "features.2.4", num_groups: int = 1, T: int = 5, momentum: float = 0.1,
                 concepts: Sequence[str] = DEFAULT_CONCEPTS, dropout: float = 0.1, image_size: int = 32) -> None:
        super().__init__()
        self.backbone = SmallCNN(in_channels, 2, width, depth, dropout)
        for module in self.backbone.modules():  # captured maps must not be overwritten by an in-place ReLU
            if isinstance(module, nn.ReLU):
                module.inplace = False
        if not layer.startswith("features."):
            raise ValueError(f"layer must be a path inside backbone.features, e.g. 'features.2.4'; got {layer!r}; "
                             f"BatchNorm2d layers: {batchnorm_layers(self.backbone)}")
        self.layer, self.whiten, self.in_channels, self.image_size = layer, whiten, in_channels, image_size
        if whiten:
            for name in concepts:
                _check_concept(name)
            self.concepts = tuple(concepts)
            block = replace_batchnorm(self.backbone, layer, num_groups=num_groups, T=T, momentum=momentum)
            if len(self.concepts) > block.num_features:
                raise ValueError(f"{len(self.concepts)} concepts but the layer has {block.num_features} channels")
        else:
            self.concepts = ()
            if not isinstance(self.backbone.get_submodule(layer), nn.BatchNorm2d):
                raise ValueError(f"{layer!r} is not a BatchNorm2d; choose one of {batchnorm_layers(self.backbone)}")

    @property
    def norm_layer(self) -> nn.Module:
        """The layer the dashboards look into (a ``WhiteningBlock`` or the baseline's ``BatchNorm2d``)."""
        return self.backbone.get_submodule(self.layer)

    @property
    def gradcam_layer(self) -> nn.Module:
        return self.backbone.gradcam_layer

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward_internals(self, x: torch.Tensor) -> DetectorInternals:
        """Everything the dashboards show of one forward pass, without hooks."""
        parts = self.layer.split(".")[1:]
        features, pre, post = _run_capturing(self.backbone.features, x, parts)
        return DetectorInternals(pre, post, features, self.backbone.forward_head(features))

    def whitened_features(self, x: torch.Tensor) -> torch.Tensor:
        """The channel maps (B, C, h, w) at the whitening layer (the BatchNorm output for the baseline)."""
        return self.forward_internals(x).norm

    @torch.no_grad()
    def align_concepts(self, images: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor) -> None:
        """One rotation update: accumulate every concept on this batch (its qualifying samples), then update R."""
        if not self.whiten:
            raise RuntimeError("the plain (BatchNorm) detector has no concept rotation")
        block = self.norm_layer
        was_training = self.training
        self.eval()
        try:
            pre = self.forward_internals(images).pre_norm
            for k, name in enumerate(self.concepts):
                keep, weights = concept_weights(name, images, labels, masks)
                if keep.any():
                    block.accumulate_concept(pre[keep], k, weights[keep])
            block.rotation.update()
        finally:
            self.train(was_training)


    @torch.no_grad()
    def calibrate(self, images: torch.Tensor, labels: torch.Tensor | None = None, T: int | None = None,
                  batch_size: int = 512) -> None:
        """Recompute the layer's running statistics over ``images`` (whitening: with ``T`` iterations; baseline:
        the BatchNorm's mean / variance), then, given ``labels``, ``refit_head``. Ours, not the paper's; applied to
        both detectors so that the comparison is fair."""
        dev = model_device(self)
        self.eval()
        pre = torch.cat([self.forward_internals(images[i:i + batch_size].to(dev)).pre_norm.float()
                         for i in range(0, len(images), batch_size)])
        if self.whiten:
            self.norm_layer.whiten.calibrate(pre, T)
        else:
            bn = self.norm_layer
            bn.running_mean.copy_(pre.mean(dim=(0, 2, 3)))
            bn.running_var.copy_(pre.var(dim=(0, 2, 3)))
        if labels is not None:
            self.refit_head(images, labels, batch_size)

    @torch.no_grad()
    def refit_head(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512) -> None:
        """When the layer is the backbone's last normalisation, refit the linear head as a logistic regression on
        the pooled features of ``images`` (ours: after the layer's statistics or its rotation changed)."""
        if self.layer != batchnorm_or_whitening_layers(self.backbone)[-1]:
            return
        from sklearn.linear_model import LogisticRegression

        dev = model_device(self)
        self.eval()
        pooled = torch.cat([self.backbone.forward_head(self.forward_features(images[i:i + batch_size].to(dev)),
                                                       pre_logits=True).float().cpu()
                            for i in range(0, len(images), batch_size)]).numpy()
        clf = LogisticRegression(C=1.0, max_iter=2000).fit(pooled, labels.numpy())
        w = torch.as_tensor(clf.coef_[0], dtype=torch.float32)
        b = float(clf.intercept_[0])
        head = self.backbone.head
        head.weight.copy_(torch.stack([-w / 2, w / 2]).to(head.weight))
        head.bias.copy_(torch.tensor([-b / 2, b / 2]).to(head.bias))


def _check_concept(name: str) -> None:
    if name not in FACE_REGIONS and name not in CLASS_CONCEPTS and name != "manipulated":
        raise ValueError(f"unknown concept {name!r}; choose facial regions {sorted(FACE_REGIONS)}, 'manipulated', "
                         "'real' or 'fake'")


def concept_weights(name: str, images: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(samples that show concept ``name``, (B, 1, H, W) position weights) for one batch.

    Facial region: real faces, weighted by the region's mask; ``"manipulated"``: fakes, weighted by their true
    mask; ``"real"`` / ``"fake"``: whole images of that class.
    """
    _check_concept(name)
    b, _, h, w = images.shape
    if name == "manipulated":
        return (labels == 1) & (masks.flatten(1).sum(1) > 0), masks.float()
    if name in CLASS_CONCEPTS:
        return labels == CLASS_CONCEPTS[name], torch.ones(b, 1, h, w, device=images.device)
    region = torch.from_numpy(region_mask(name, h)).to(images.device)
    return labels == 0, region.expand(b, 1, h, w)

