"""torch.distributed for `torchrun`: which process am I, and a process group when there are several.

Under `torchrun --nproc-per-node N -m magtask ...` every process runs the same command; the
environment (RANK, WORLD_SIZE, MASTER_ADDR, ...) tells each its place. gloo on CPU, nccl on GPU.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def init(device: str = "cpu") -> tuple[int, int]:
    """Join the process group if launched by torchrun with more than one process."""
    rank, size = world()
    if size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
        if device == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    return world()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def is_main() -> bool:
    return world()[0] == 0


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """The sum of `t` over every process (in place); `t` itself with one process."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def data_parallel(model: torch.nn.Module, device: str = "cpu") -> torch.nn.Module:
    """`model` wrapped in DistributedDataParallel when there are several processes (gradients are
    averaged across them in backward), else `model` itself."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.cuda.current_device()] if device == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def rank_slice(n: int, rank: int, size: int) -> slice:
    """The contiguous part of 0..n-1 that process `rank` of `size` takes (sizes differ by at most 1)."""
    lo, extra = divmod(n, size)
    start = rank * lo + min(rank, extra)
    return slice(start, start + lo + (rank < extra))
