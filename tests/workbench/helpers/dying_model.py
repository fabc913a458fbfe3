"""A model whose process dies the first time it sees a batch (a crashing Ray worker), for tests/workbench/test_batch.

The first forward of more than one image, while the file named by ``$WB_DIE_MARKER`` does not exist, creates it and
ends the process at once (``os._exit``): what a segfault or an out-of-memory kill does to a worker.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn


class DiesOnce(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(256, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        marker = os.environ.get("WB_DIE_MARKER")
        if marker and x.shape[0] > 1 and not Path(marker).exists():
            Path(marker).touch()
            os._exit(1)
        return self.net(x)
