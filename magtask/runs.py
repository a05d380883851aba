"""Run directories and what a task gets to work with (the RunContext).

A run dir holds config.json (what was run), the head's weights (head.safetensors, its config in the
metadata), the task's pictures and samples, and metrics.json, written last and atomically: a run
that was interrupted has no metrics.json.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from magtask.errors import MagtaskError
from magtask.specs import HeadSpec, TaskSpec


def write_json(path: Path, obj: Any) -> None:
    """Atomic JSON write (temp file + rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_jsonable) + "\n")
    os.replace(tmp, path)


def _jsonable(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.ndarray, torch.Tensor)):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def prepare_run_dir(run_dir: Path | None, task: str, head: str, overwrite: bool) -> Path:
    if run_dir is None:
        run_dir = Path("runs") / f"{task}-{head}-{time.strftime('%Y%m%d-%H%M%S')}"
    if run_dir.exists():
        if not overwrite:
            raise MagtaskError(f"{run_dir}: run dir exists; pass --overwrite to replace it")
        if not run_dir.is_dir():
            raise MagtaskError(f"{run_dir}: exists and is not a directory")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    return run_dir


@dataclass
class RunContext:
    """Everything a task's run(ctx) may use."""

    task: TaskSpec
    head: HeadSpec
    dataset: Any  # magtask.data.dataset.Dataset
    tokenizer: Any  # magtask.tokenizer.model.VideoTokenizer (eval mode)
    tokenizer_hash: str
    codes: Any  # magtask.codes.Codes
    run_dir: Path
    seed: int = 0
    epochs: int | None = None  # None: the task's / head's default
    options: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    quiet: bool = False

    def inputs(self, index: np.ndarray) -> torch.Tensor:
        """The head's inputs for these videos: quantized latents (float) or token indices (long).

        Rows are read with plain file reads, not through the memory map: touching a map's pages
        counts them in RSS on top of the copy (2.5 GB instead of 1.4 GB for 30 000 videos)."""
        from magtask.tensorfile import open_lazy

        index = np.asarray(index, dtype=np.int64)
        if self.head.consumes == "indices":
            return torch.from_numpy(open_lazy(self.codes.path, "indices")[index].astype(np.int64))
        return torch.from_numpy(np.asarray(open_lazy(self.codes.path, "latents")[index], dtype=np.float32))

    def save_head(self, model: torch.nn.Module, config: dict) -> Path:
        """head.safetensors: the weights, with the head's name and build config in the metadata."""
        from safetensors.torch import save_file

        path = self.run_dir / "head.safetensors"
        tmp = path.with_name(".head.safetensors.tmp")
        state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(state, str(tmp), metadata={"format": "magtask-head", "head": self.head.name,
                                             "package": self.head.package, "config": json.dumps(config)})
        os.replace(tmp, path)
        return path
