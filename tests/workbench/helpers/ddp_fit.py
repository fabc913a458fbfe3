"""Run by tests/workbench/test_distributed.py under ``torchrun --nproc-per-node=2``: one ``fit`` on a toy set."""

from __future__ import annotations

import json
import sys

import torch
from torch import nn

from workbench.distributed import context
from workbench.train import classification_step, fit, one_thread


def toy_problem(seed: int = 0) -> tuple[nn.Module, torch.utils.data.DataLoader]:
    """A small MLP and a 256-row two-class set, batches of 32 in a fixed order (identical in every process)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 4, generator=g)
    y = (x[:, 0] * x[:, 1] > 0).long()
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=False)
    return model, loader


def train(model: nn.Module, loader) -> list[dict[str, float]]:
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    with one_thread():
        history = fit(model, loader, classification_step, epochs=3, optimizer=opt, device="cpu", progress=False)
    return history.epochs


if __name__ == "__main__":
    out = sys.argv[1]
    model, loader = toy_problem()
    epochs = train(model, loader)
    ctx = context()
    if ctx.is_main:
        torch.save({"state": model.state_dict(), "epochs": epochs, "world": ctx.world_size}, out)
        print(json.dumps({"world": ctx.world_size, "last": epochs[-1]}))
