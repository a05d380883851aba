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
