"""Run directories and what a task gets to work with (the RunContext).

A run dir holds a `.magtask-run` marker, config.json (what was run), the head (head.safetensors: its
state and BuildConfig; load_head rebuilds it), the task's pictures and samples, and metrics.json.
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
    options: dict[str, Any] = field(default_factory=dict)  # the task's options
    device: str = "cpu"
    quiet: bool = False
    head_options: dict[str, Any] = field(default_factory=dict)  # the head's options, validated
    precision: str | None = None  # the training steps' precision; None: the head's train_defaults

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.dataset.class_names)

    def inputs(self, index: np.ndarray) -> torch.Tensor:
        """The head's inputs for these videos: quantized latents (float) or token indices (long).

        Rows are read with plain file reads, not through the memory map: touching a map's pages
        counts them in RSS on top of the copy (2.5 GB instead of 1.4 GB for 30 000 videos)."""
        from magtask.tensorfile import open_lazy

        index = np.asarray(index, dtype=np.int64)
        if self.head.consumes == "indices":
            return torch.from_numpy(open_lazy(self.codes.path, "indices")[index].astype(np.int64))
        return torch.from_numpy(np.asarray(open_lazy(self.codes.path, "latents")[index], dtype=np.float32))

    def build_config(self, in_shape, task_config: dict | None = None):
        """The BuildConfig every task hands its head (magtask/contracts.py)."""
        from magtask.contracts import BuildConfig

        grid = self.tokenizer.grid
        return BuildConfig(task=self.task.name, in_shape=tuple(int(s) for s in in_shape),
                           class_names=self.class_names, codebook_size=int(grid.codebook_size or 0),
                           levels=grid.fsq_levels, grid=grid,
                           frames=int(self.dataset.frames), image_size=int(self.dataset.size),
                           options=dict(self.head_options), task_config=dict(task_config or {}))

    def build_head(self, config):
        """spec.build(config), seeded by the run's seed."""
        torch.manual_seed(self.seed)
        return self.head.build(config)

    def train_config(self, head):
        """The shared loop's settings: the head's train_defaults, the run's seed, --epochs and --precision."""
        from magtask.loop import TrainConfig

        defaults = dict(getattr(head, "train_defaults", {}) or {})
        return TrainConfig(**{**defaults, "seed": self.seed, "quiet": self.quiet,
                              **({"epochs": self.epochs} if self.epochs else {}),
                              **({"precision": self.precision} if self.precision else {})})

    def side_inputs(self, providers: dict):
        """The head's declared side inputs, each computed on first use by providers[name]()."""
        from magtask.contracts import SideInputs

        return SideInputs(self.head.name, self.head.side_inputs, providers)

    def save_head(self, model, config) -> Path:
        """head.safetensors: the head's state (if it has a state_dict), with its name, package and
        BuildConfig in the metadata; load_head(run_dir) rebuilds it."""
        return save_head(self.run_dir / "head.safetensors", self.head, model, config)


def save_head(path: Path, spec: HeadSpec, model, config) -> Path:
    from safetensors.torch import save_file

    tmp = path.with_name(f".{path.name}.tmp")
    state = model.state_dict() if callable(getattr(model, "state_dict", None)) else {}
    state = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    save_file(state, str(tmp), metadata={"format": "magtask-head", "head": spec.name, "task": spec.task,
                                         "package": spec.package, "config": json.dumps(config.to_json())})
    os.replace(tmp, path)
    return path


def load_head(run_dir: Path, registry=None):
    """Rebuild the head a run saved: (HeadSpec, head in eval mode, BuildConfig).

    The head's plugin must be installed (it is looked up by name); its weights are loaded strictly."""
    from safetensors import safe_open

    from magtask.contracts import BuildConfig
    from magtask.registry import get_registry
    from magtask.tensorfile import read_header

    path = Path(run_dir) / "head.safetensors"
    if not path.exists():
        raise MagtaskError(f"{run_dir}: holds no saved head (head.safetensors)")
    header, _ = read_header(path)
    meta = header.get("__metadata__") or {}
    if meta.get("format") != "magtask-head":
        raise MagtaskError(f"{path}: not a magtask head file")
    registry = registry or get_registry()
    spec = registry.head(meta.get("task", ""), meta.get("head", ""))
    try:
        config = BuildConfig.from_json(json.loads(meta["config"]))
    except (KeyError, TypeError, ValueError) as e:
        raise MagtaskError(f"{path}: its build config is unreadable ({e})") from None
    head = spec.build(config)
    with safe_open(str(path), framework="pt") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}
    if state or callable(getattr(head, "load_state_dict", None)):
        if not callable(getattr(head, "load_state_dict", None)):
            raise MagtaskError(f"{path}: holds weights, but head {spec.name} cannot load them")
        head.load_state_dict(state)
    if callable(getattr(head, "eval", None)):
        head.eval()
    return spec, head, config
