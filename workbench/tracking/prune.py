"""Pruning a flat convolution stack back from the kept output channels (channel distillation's deep features).

Slicing the last convolution to the kept filters saves only that layer; the layers before it feed every kept
filter. :func:`prune_plan` walks back from the kept channels through a flat ``nn.Sequential`` of convolutions
separated only by channel-wise layers (BatchNorm, ReLU, pooling): at each convolution it keeps the input channels
that carry at least ``1 - tolerance`` of the kept filters' weight energy (each input channel's share: the squared
norm of its weights in the kept filters times the squared scale of its activation, its BatchNorm's
``gamma^2 + beta^2``), and those become the output channels the convolution before needs. ``tolerance = 0`` is
exact (only input channels with all-zero weights are dropped, so only the last convolution is sliced); a positive
tolerance approximates the kept channels by dropping the weakest contributions, and the benchmark measures what it
costs in accuracy. :func:`run_plan` runs the sliced stack.
"""

from __future__ import annotations

import torch
from torch import nn

#: layers that act on each channel on its own (BatchNorm is sliced, the others pass through)
CHANNELWISE = (nn.ReLU, nn.LeakyReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Identity, nn.Dropout, nn.MaxPool2d,
               nn.AvgPool2d, nn.BatchNorm2d)

#: per layer: kind ("conv", "bn" or "layer"), the layer, and its sliced tensors
Plan = list[tuple[str, nn.Module, tuple]]


def prunable(layers: list[nn.Module]) -> bool:
    """Whether ``layers`` is a stack of plain convolutions (groups 1) and channel-wise layers, ending channel-wise
    or in a convolution, that :func:`prune_plan` can slice."""
    return any(isinstance(layer, nn.Conv2d) for layer in layers) and all(
        (isinstance(layer, nn.Conv2d) and layer.groups == 1) or isinstance(layer, CHANNELWISE) for layer in layers
    )


def _activation_scale(layers: list[nn.Module], conv_at: int, channels: int) -> torch.Tensor:
    """Typical magnitude of each input channel of the convolution at ``conv_at``: its BatchNorm's
    ``sqrt(gamma^2 + beta^2)`` when one precedes it, else 1."""
    for layer in reversed(layers[:conv_at]):
        if isinstance(layer, nn.Conv2d):
            break
        if isinstance(layer, nn.BatchNorm2d) and layer.weight is not None and layer.bias is not None:
            return torch.sqrt(layer.weight.detach() ** 2 + layer.bias.detach() ** 2)
    return torch.ones(channels)


def prune_plan(layers: list[nn.Module], kept: torch.Tensor, tolerance: float) -> Plan:
    """The sliced stack computing the ``kept`` output channels of the stack's last convolution: per layer its kind,
    the layer and its weights (and BatchNorm statistics) sliced to the channels needed."""
    convs = [i for i, layer in enumerate(layers) if isinstance(layer, nn.Conv2d)]
    out_index: dict[int, torch.Tensor] = {convs[-1]: kept}
    for position in range(len(convs) - 1, 0, -1):
        at = convs[position]
        weight = layers[at].weight.detach()[out_index[at]]
        scale = _activation_scale(layers, at, weight.shape[1])
        share = (weight**2).sum(dim=(0, 2, 3)) * scale**2
        order = torch.argsort(share, descending=True)
        cumulative = torch.cumsum(share[order], 0) / share.sum().clamp_min(1e-30)
        count = int(torch.searchsorted(cumulative, torch.tensor(1.0 - tolerance)).item()) + 1
        count = min(max(count, 1), len(order)) if tolerance > 0 else int((share > 0).sum().clamp_min(1))
        out_index[convs[position - 1]] = torch.sort(order[:count]).values
    plan: Plan = []
    current: torch.Tensor | None = None  # channels flowing between layers (None: all)
    for i, layer in enumerate(layers):
        if isinstance(layer, nn.Conv2d):
            received, current = current, out_index.get(i)
            weight = layer.weight.detach()
            weight = weight if current is None else weight[current]
            weight = weight if received is None else weight[:, received]
            bias = None if layer.bias is None else layer.bias.detach()
            bias = bias if bias is None or current is None else bias[current]
            plan.append(("conv", layer, (weight.contiguous(), bias)))
        elif isinstance(layer, nn.BatchNorm2d) and current is not None:
            pick = current
            stats = [None if t is None else t.detach()[pick]
                     for t in (layer.running_mean, layer.running_var, layer.weight, layer.bias)]
            plan.append(("bn", layer, tuple(stats)))
        else:
            plan.append(("layer", layer, ()))
    return plan


def run_plan(plan: Plan, x: torch.Tensor) -> torch.Tensor:
    """Run the sliced stack on ``x``."""
    for kind, layer, tensors in plan:
        if kind == "conv":
            x = nn.functional.conv2d(x, tensors[0], tensors[1], layer.stride, layer.padding, layer.dilation)
        elif kind == "bn":
            mean, var, weight, bias = tensors
            x = nn.functional.batch_norm(x, mean, var, weight, bias, False, 0.0, layer.eps)
        else:
            x = layer(x)
    return x
