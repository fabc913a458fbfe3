"""CNN feature extractors: any torch module returning a conv feature map, and torchvision backbones from the cache.

For channel distillation the module's last convolution is split off, so that a subset of output channels is
computed by convolving only the kept filters (its weight sliced along the output dimension); the layers before it
are shared by all channels and always run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from workbench.tracking.features import FeatureExtractor
from workbench.tracking.prune import prunable, prune_plan, run_plan

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# layers that act on each channel on its own: they may follow the last convolution and still be sliced
_CHANNELWISE = (nn.ReLU, nn.LeakyReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Identity, nn.Dropout, nn.MaxPool2d, nn.AvgPool2d)


class CNNFeatures(FeatureExtractor):
    """Channels of a convolutional feature map computed by ``module`` from an RGB patch.

    ``module`` is any ``nn.Module`` mapping a ``(1, 3, H, W)`` tensor (RGB in 0..1, then normalised by ``mean``/``std``)
    to a ``(1, D, h, w)`` feature map. When it is an ``nn.Sequential`` whose last convolution is followed only by
    channel-wise layers (ReLU, pooling, BatchNorm ...), ``extract(patch, channels=...)`` convolves only the selected
    filters; otherwise all channels are computed and then selected (``subset_is_cheap`` tells which).
    ``cell_size`` is the feature map's stride; ``None`` measures it on a probe input. When the whole module is a
    flat stack of convolutions and channel-wise layers, ``prune_tolerance > 0`` also prunes the layers before the
    last convolution to the channels the kept filters draw on (approximate, see :mod:`workbench.tracking.prune`);
    ``pruned_fraction`` tells how much of the stack's multiply-adds the last subset skipped.
    """

    def __init__(
        self,
        module: nn.Module,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
        cell_size: int | None = None,
        device: str | torch.device = "cpu",
        name: str = "cnn",
        prune_tolerance: float = 0.0,
    ) -> None:
        if not isinstance(module, nn.Module):
            raise ValueError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        self.device = torch.device(device)
        self.module = module.to(self.device).eval()
        self._settings = (mean, std, device, name)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.name = name
        self._head, self._conv, self._tail = _split_last_conv(self.module)
        self.subset_is_cheap = self._conv is not None
        if not 0.0 <= prune_tolerance < 1.0:
            raise ValueError(f"prune_tolerance must lie in [0, 1), got {prune_tolerance}")
        self.prune_tolerance = float(prune_tolerance)
        layers = list(self.module.children()) if isinstance(self.module, nn.Sequential) else []
        self._layers = layers if prune_tolerance > 0 and prunable(layers) else None
        self._plans: dict[tuple[int, ...], list] = {}
        with torch.no_grad():
            probe = self.module(torch.zeros(1, 3, 64, 64, device=self.device))
        if probe.ndim != 4 or probe.shape[0] != 1:
            raise ValueError(f"module must return a (1, D, h, w) feature map, got shape {tuple(probe.shape)}")
        self.channels = int(probe.shape[1])
        self.cell_size = int(cell_size) if cell_size is not None else max(1, round(64 / probe.shape[-1]))
        self.channel_names = [f"{name}{k}" for k in range(self.channels)]

    def with_pruning(self, tolerance: float) -> CNNFeatures:
        """The same network (shared, not copied) with ``prune_tolerance=tolerance``."""
        mean, std, device, name = self._settings
        return CNNFeatures(self.module, mean, std, self.cell_size, device, f"{name}-pruned", tolerance)

    def _extract(self, patch: np.ndarray, channels: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(patch)).to(self.device).permute(2, 0, 1)[None] / 255.0
        x = (x - self.mean) / self.std
        with torch.no_grad():
            if channels.size == self.channels and np.array_equal(channels, np.arange(self.channels)):
                y = self.module(x)
            elif self._layers is not None:
                key = tuple(int(c) for c in channels)
                if key not in self._plans:
                    if len(self._plans) > 16:  # a handful of kept sets live at a time
                        self._plans.clear()
                    self._plans[key] = prune_plan(self._layers, torch.as_tensor(channels), self.prune_tolerance)
                y = run_plan(self._plans[key], x)
            elif self._conv is not None:
                index = torch.as_tensor(channels, device=self.device)
                y = self._sliced_conv(self._head(x), index)
                for layer in self._tail:
                    y = _sliced_layer(layer, index)(y)
            else:
                y = self.module(x)[:, torch.as_tensor(channels, device=self.device)]
        return y[0].permute(1, 2, 0).float().cpu().numpy()

    def _sliced_conv(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        conv = self._conv
        assert conv is not None
        bias = conv.bias[index] if conv.bias is not None else None
        return nn.functional.conv2d(
            x, conv.weight[index], bias, conv.stride, conv.padding, conv.dilation, conv.groups
        )


def _split_last_conv(module: nn.Module) -> tuple[nn.Module, nn.Conv2d | None, list[nn.Module]]:
    """``(layers before, last Conv2d, channel-wise layers after)`` of a Sequential, or ``(module, None, [])``."""
    if not isinstance(module, nn.Sequential):
        return module, None, []
    layers = list(module.children())
    for i in range(len(layers) - 1, -1, -1):
        if isinstance(layers[i], nn.Conv2d) and layers[i].groups == 1:
            tail = layers[i + 1 :]
            if all(isinstance(layer, (*_CHANNELWISE, nn.BatchNorm2d)) for layer in tail):
                return nn.Sequential(*layers[:i]), layers[i], tail
            break
    return module, None, []


def _sliced_layer(layer: nn.Module, index: torch.Tensor) -> nn.Module:
    """A channel-wise layer restricted to channels ``index`` (BatchNorm needs its statistics sliced)."""
    if not isinstance(layer, nn.BatchNorm2d):
        return layer

    def batchnorm(x: torch.Tensor) -> torch.Tensor:
        weight = layer.weight[index] if layer.weight is not None else None
        bias = layer.bias[index] if layer.bias is not None else None
        return nn.functional.batch_norm(
            x, layer.running_mean[index], layer.running_var[index], weight, bias, False, 0.0, layer.eps
        )

    return batchnorm  # type: ignore[return-value]


# checkpoint file names torchvision uses in ``<torch hub dir>/checkpoints`` for its default ImageNet weights
_TORCHVISION_FILES = {"vgg16": "vgg16-397923af.pth", "resnet18": "resnet18-f37072fd.pth"}
_VGG16_LAYERS = {"conv1_2": 3, "conv2_2": 8, "conv3_3": 15, "conv4_3": 22}  # index of the ReLU after the conv
_RESNET18_LAYERS = ("layer1", "layer2", "layer3")


def torchvision_features(name: str = "vgg16", layer: str | None = None, device: str = "cpu") -> CNNFeatures:
    """ImageNet-pretrained VGG-16 or ResNet-18 layers as a :class:`CNNFeatures`, from the local torch hub cache only.

    ``layer``: for vgg16 one of conv1_2, conv2_2, conv3_3 (default), conv4_3; for resnet18 one of layer1, layer2
    (default), layer3. Nothing is downloaded: a missing checkpoint raises ``RuntimeError`` naming the file expected.
    ResNet stages end in a residual addition, so channel subsets of them are computed in full and then selected.
    """
    import torchvision  # optional: only this function needs it

    if name not in _TORCHVISION_FILES:
        raise ValueError(f"unknown network {name!r}; expected one of {sorted(_TORCHVISION_FILES)}")
    path = Path(torch.hub.get_dir()) / "checkpoints" / _TORCHVISION_FILES[name]
    if not path.is_file():
        raise RuntimeError(
            f"pretrained {name} weights are not in the local cache: expected {path}. This package never downloads; "
            f"place the torchvision checkpoint there (or set TORCH_HOME) or use another feature extractor"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if name == "vgg16":
        layer = layer or "conv3_3"
        if layer not in _VGG16_LAYERS:
            raise ValueError(f"unknown vgg16 layer {layer!r}; expected one of {list(_VGG16_LAYERS)}")
        net = torchvision.models.vgg16()
        net.load_state_dict(state)
        stack = nn.Sequential(*list(net.features.children())[: _VGG16_LAYERS[layer] + 1])
    else:
        layer = layer or "layer2"
        if layer not in _RESNET18_LAYERS:
            raise ValueError(f"unknown resnet18 layer {layer!r}; expected one of {list(_RESNET18_LAYERS)}")
        net = torchvision.models.resnet18()
        net.load_state_dict(state)
        stages = [net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3]
        stack = nn.Sequential(*stages[: 4 + _RESNET18_LAYERS.index(layer) + 1])
    return CNNFeatures(stack, device=device, name=f"{name}.{layer}")
