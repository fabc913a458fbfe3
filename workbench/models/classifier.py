"""A small CNN classifier with timm-style ``forward_features`` / ``forward_head``."""

from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    """Conv-BN-ReLU blocks (each halving the size after the first) + global average pool + linear head.

    ``forward(x)`` returns logits; ``forward_features(x)`` the last feature map (B, width*2**(depth-1), h, w);
    ``forward_head(f, pre_logits=True)`` the pooled embedding. ``gradcam_layer`` names the last conv block for
    Grad-CAM-style explainers.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 32, depth: int = 3,
                 dropout: float = 0.1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for i in range(depth):
            c_out = width * 2**i
            layers.append(nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.Conv2d(c_out, c_out, 3, padding=1, stride=1 if i == 0 else 2, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.num_features = c_in
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(c_in, num_classes)

    @property
    def gradcam_layer(self) -> nn.Module:
        return self.features[-1]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = features.mean(dim=(2, 3))
        return pooled if pre_logits else self.head(self.drop(pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
