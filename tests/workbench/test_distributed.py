"""``fit`` under torchrun: two CPU processes (gloo) train the same model as one process on the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HELPER = Path(__file__).parent / "helpers" / "ddp_fit.py"
REPO = Path(__file__).resolve().parents[2]


def test_two_gloo_processes_match_one_process(tmp_path):
    sys.path.insert(0, str(HELPER.parent))
    try:
        from ddp_fit import toy_problem, train
    finally:
        sys.path.remove(str(HELPER.parent))
    out = tmp_path / "ddp.pt"
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH")))))
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           str(HELPER), str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    ddp = torch.load(out, weights_only=True)
    assert ddp["world"] == 2

    model, loader = toy_problem()
    single = train(model, loader)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(ddp["state"][name], tensor, atol=1e-5, rtol=1e-4, msg=f"parameter {name}")
    assert ddp["epochs"][-1]["loss"] == pytest.approx(single[-1]["loss"], rel=1e-4)
    assert single[-1]["loss"] < single[0]["loss"]  # it did learn


def test_shard_loader_refuses_a_global_batch_that_does_not_split():
    from workbench.distributed import DistContext, shard_loader

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(10, 1)), batch_size=5)
    with pytest.raises(ValueError, match="divisible by the number of processes 2"):
        shard_loader(loader, DistContext(rank=0, world_size=2), seed=0)
    with pytest.raises(TypeError, match="needs a torch DataLoader"):
        shard_loader([torch.zeros(2)], DistContext(rank=0, world_size=2))
