"""Run directories and what a task gets to work with (the RunContext).

A run dir holds a `.magtask-run` marker, config.json (what was run), the head's weights
(head.safetensors, its config in the metadata), the task's pictures and samples, and metrics.json.
A run is built in a hidden sibling temp dir (`.NAME.tmp-PID`) and renamed into place only when it
succeeds: a failed or interrupted run leaves nothing, and the run it was to replace is untouched.
`--overwrite` replaces only a dir holding the marker, never `.`, `/`, the home dir, or a dir that
holds the working dir or the run's input files.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from magtask.errors import MagtaskError
from magtask.pids import alive
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


MARKER = ".magtask-run"


def check_run_dir(run_dir: Path | None, task: str, head: str, overwrite: bool, inputs=()) -> Path:
    """The run dir to write (default runs/TASK-HEAD-TIMESTAMP), checked before anything is written:
    an existing one only with `overwrite`, and only if magtask wrote it and it holds no input."""
    if run_dir is None:
        run_dir = Path("runs") / f"{task}-{head}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not (run_dir.exists() or run_dir.is_symlink()):
        return run_dir
    if not overwrite:
        raise MagtaskError(f"{run_dir}: run dir exists; pass --overwrite to replace it")
    if run_dir.is_symlink() or not run_dir.is_dir():
        raise MagtaskError(f"{run_dir}: refusing to replace it: not a directory (or a symbolic link)")
    real = run_dir.resolve()
    guarded = {Path("/").resolve(): "the root dir", Path.home().resolve(): "the home dir"}
    guarded.update({p: "a dir holding the working dir" for p in (Path.cwd().resolve(), *Path.cwd().resolve().parents)})
    for f in inputs:
        if f is not None:
            guarded.update({p: f"a dir holding {f}" for p in Path(f).resolve().parents})
    if real in guarded:
        raise MagtaskError(f"{run_dir}: refusing to replace {guarded[real]}")
    if not _is_run_dir(run_dir):
        raise MagtaskError(f"{run_dir}: not a magtask run dir (no {MARKER}); refusing to replace it "
                           "(remove it yourself or pick another --run-dir)")
    return run_dir


def _is_run_dir(d: Path) -> bool:
    """Holds the marker, or is a run dir from before the marker (config.json naming task, head, package)."""
    if (d / MARKER).is_file():
        return True
    try:
        config = json.loads((d / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and {"task", "head", "head_package"} <= set(config)


def _remove_stale(parent: Path, name: str) -> None:
    """Temp dirs of runs into `name` whose process is gone (killed, not interrupted)."""
    for d in parent.glob(f".{name}.*-*"):
        kind, _, pid = d.name[len(name) + 2:].rpartition("-")
        if kind in ("tmp", "old") and pid.isdigit() and not alive(int(pid)) and (d / MARKER).is_file():
            shutil.rmtree(d, ignore_errors=True)


@contextmanager
def staged_run_dir(final: Path, overwrite: bool):
    """Yield a fresh temp dir beside `final`; on success rename it to `final` (replacing the old run
    only then), on any failure or interrupt remove it and any parent dirs made for it."""
    made = [p for p in (final.parent, *final.parent.parents) if not p.exists()]
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(final.parent, final.name)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        (tmp / MARKER).write_text(json.dumps({"format": "magtask-run"}) + "\n")
        yield tmp
        if final.exists() and not (overwrite and _is_run_dir(final)):
            raise MagtaskError(f"{final}: appeared while the run was going; not replaced (nothing written)")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for p in made:
            try:
                p.rmdir()
            except OSError:
                break
        raise
    if final.exists():
        old = final.parent / f".{final.name}.old-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


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
