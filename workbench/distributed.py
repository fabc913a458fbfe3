"""Data-parallel training under ``torchrun``: one process per GPU (or CPU process with gloo), the same global batch.

``workbench.train.fit`` calls these helpers; a user never needs to. Launch any recipe with
``torchrun --nproc-per-node=N -m workbench train RECIPE``: torchrun sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` and
``fit`` then

* shards the loader with a ``DistributedSampler`` (``set_epoch`` every epoch), each rank taking
  ``batch_size / world_size`` rows of every global batch, so the global batch is the one the recipe names;
* averages the gradients of every step across ranks before the optimiser step — what DDP computes. We all-reduce one
  flattened gradient buffer ourselves instead of wrapping the model in ``DistributedDataParallel`` because several
  recipes' steps call sub-modules (``forward_features``/``forward_head``, three streams in HORKD), whose calls
  DDP's forward hook would not see; the maths is the same, without DDP's communication/computation overlap;
* shows progress, and writes checkpoints, on rank 0 only; epoch metrics are averaged over ranks.

BatchNorm running statistics stay per rank (rank 0's are saved), as with DDP without ``SyncBatchNorm``.
"""

from __future__ import annotations

import atexit
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def context() -> DistContext:
    """The process group this process is in: initialised from torchrun's environment on first use (nccl when CUDA is
    present, else gloo); a single process (world size 1) when not launched by torchrun."""
    if dist.is_available() and dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available():
        return DistContext()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    atexit.register(_close_group)
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def _close_group() -> None:
    """Tear the group down before the interpreter exits. Left to static destructors, a gloo rank that finished first
    aborted with 'terminate called without an active exception' (seen once in CI, torch 2.14) and torchrun failed the
    whole run although every rank had finished its work (the gloo threads still held tensors while the interpreter
    was being torn down). Only on a clean exit: a rank leaving on an uncaught exception (``sys.last_value`` is set
    before exit handlers run) must not wait on ranks blocked in a collective; torchrun stops those."""
    if dist.is_available() and dist.is_initialized() and not hasattr(sys, "last_value"):
        dist.destroy_process_group()


def is_main_process() -> bool:
    """True on rank 0 or outside a process group (where checkpoints are written and progress is shown)."""
    return context().is_main


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def shard_loader(loader: torch.utils.data.DataLoader, ctx: DistContext, seed: int = 0
                 ) -> torch.utils.data.DataLoader:
    """The same data set, batches of ``loader.batch_size / world_size`` rows drawn by a ``DistributedSampler``
    (shuffled when ``loader`` shuffles)."""
    if not isinstance(loader, torch.utils.data.DataLoader) or loader.batch_size is None:
        raise TypeError("under torchrun, fit needs a torch DataLoader with a batch_size (it shards it across ranks); "
                        f"got {type(loader).__name__}")
    if loader.batch_size % ctx.world_size:
        raise ValueError(f"the global batch size {loader.batch_size} must be divisible by the number of processes "
                         f"{ctx.world_size}")
    shuffle = isinstance(loader.sampler, torch.utils.data.RandomSampler)
    sampler = torch.utils.data.DistributedSampler(loader.dataset, num_replicas=ctx.world_size, rank=ctx.rank,
                                                  shuffle=shuffle, seed=seed, drop_last=loader.drop_last)
    return torch.utils.data.DataLoader(loader.dataset, batch_size=loader.batch_size // ctx.world_size,
                                       sampler=sampler, collate_fn=loader.collate_fn, drop_last=loader.drop_last,
                                       num_workers=loader.num_workers)


def broadcast_parameters(model: torch.nn.Module) -> None:
    """Start every rank from rank 0's weights and buffers."""
    for tensor in list(model.parameters()) + list(model.buffers()):
        dist.broadcast(tensor.data, src=0)


def average_gradients(model: torch.nn.Module, world_size: int) -> None:
    """Replace each parameter's gradient by its mean over ranks (one all-reduce of a flattened buffer)."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def mean_over_ranks(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Average a dict of floats over ranks (keys must match on every rank)."""
    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    tensor /= dist.get_world_size()
    return dict(zip(keys, tensor.tolist(), strict=True))
