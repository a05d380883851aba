"""Using a finished run: `magtask apply RUN_DIR INPUT...` and `magtask sample RUN_DIR` (the core side).

load_run(run_dir) gives a LoadedRun: the run's head (runs.load_head), its task, its class names (saved
with the head) and its tokenizer, found again from config.json (the path it was run with, or the
shipped checkpoint for "default"; `--tokenizer` overrides it) and always checked against the content
hash in metrics.json. read_inputs(INPUT...) reads video files (.gif, .mp4, a folder of .png frames),
folders of them and dataset files into InputVideos. What a task does with them is its own
TaskSpec.apply / TaskSpec.sample (magtask/specs.py); this module holds nothing task-specific.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from magtask.errors import MagtaskError, UsageError

DATASET_SUFFIXES = (".safetensors", ".npz", ".pt", ".pth")


@dataclass
class InputVideo:
    name: str  # what the user gave: the file's path, or FILE[i] for video i of a dataset file
    video: np.ndarray  # (T, 3, H, W) uint8
    true_class: str | None = None  # a dataset's label for it, if it has one


@dataclass
class LoadedRun:
    """What a task's apply / sample receives: a finished run, its head rebuilt, its tokenizer opened."""

    run_dir: Path
    task: Any  # TaskSpec
    head_spec: Any  # HeadSpec
    head: Any  # the head, in eval mode
    config: Any  # its BuildConfig
    run_config: dict  # config.json
    metrics: dict  # metrics.json
    tokenizer: Any  # in eval mode, on device; its hash is the run's
    device: str = "cpu"
    quiet: bool = False
    seed: int = 0  # for a task's random draws (sample: default the run's seed)

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.config.class_names)

    @property
    def frames(self) -> int:
        return int(self.config.frames)

    @property
    def size(self) -> int:
        return int(self.config.image_size)

    def check_geometry(self, videos: list[InputVideo], frames: tuple[int, ...] | None = None,
                       what: str | None = None) -> None:
        """Refuse, in one line naming it, the first video that is not `frames` (default: the run's)
        frames of the run's size. `what` says what fits, if the plain "16 frames of 64x64" would not."""
        frames = tuple(frames or (self.frames,))
        for v in videos:
            t, _, h, w = v.video.shape
            if t not in frames or (h, w) != (self.size, self.size):
                fits = what or f"{' or '.join(map(str, frames))} frames of {self.size}x{self.size}"
                raise MagtaskError(f"{v.name}: {t} frame{'s' * (t != 1)} of {w}x{h}; this {self.task.name} run "
                                   f"takes {fits} (pass --frames {frames[-1]} --size {self.size} to resample a "
                                   "video file)")

    @torch.inference_mode()
    def encode(self, videos_u8: np.ndarray, batch: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 (N, T, 3, H, W) -> (quantized latents (N, C, t, h, w) float32, indices (N, t, h, w) int64),
        encoded as the code cache encodes them."""
        from magtask.codes import encode_batch

        parts = [encode_batch(self.tokenizer, videos_u8[lo:lo + batch], self.device) for lo in range(0, len(videos_u8), batch)]
        return torch.cat([p[0].float().cpu() for p in parts]), torch.cat([p[1].long().cpu() for p in parts])

    def head_inputs(self, videos_u8: np.ndarray) -> torch.Tensor:
        """What the head consumes for these videos: latents, or token indices (HeadSpec.consumes)."""
        latents, indices = self.encode(videos_u8)
        return indices if self.head_spec.consumes == "indices" else latents


def _read_json(path: Path) -> dict:
    try:
        obj = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise MagtaskError(f"{path}: unreadable ({type(e).__name__})") from None
    if not isinstance(obj, dict):
        raise MagtaskError(f"{path}: not a JSON object")
    return obj


def load_run(run_dir: Path, command: str, tokenizer: Path | None = None, device: str = "cpu",
             quiet: bool = False, seed: int | None = None) -> LoadedRun:
    """The run in run_dir, for `command` ("apply" or "sample"), refused in one line if that task does not
    offer the command, if the run has no head or did not finish, or if the tokenizer is not the run's."""
    from magtask.registry import get_registry
    from magtask.runner import resolve_device
    from magtask.runs import load_head

    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise MagtaskError(f"{run_dir}: no such run dir")
    if not run_dir.is_dir():
        raise MagtaskError(f"{run_dir}: not a run dir (it is a file)")
    if not (run_dir / "head.safetensors").exists():
        raise MagtaskError(f"{run_dir}: holds no saved head (head.safetensors); `magtask run TASK HEAD --run-dir "
                           f"{run_dir}` makes one")
    for name in ("metrics.json", "config.json"):
        if not (run_dir / name).exists():
            raise MagtaskError(f"{run_dir}: the run did not finish (no {name})")
    metrics, run_config = _read_json(run_dir / "metrics.json"), _read_json(run_dir / "config.json")
    registry = get_registry()
    task = registry.task(str(metrics.get("task", "")))
    if getattr(task, command) is None:
        other = "sample" if command == "apply" else "apply"
        if getattr(task, other) is not None:
            how = ("draw new videos from it with `magtask sample RUN_DIR --out FILE`" if other == "sample"
                   else "use it on your videos with `magtask apply RUN_DIR INPUT...`")
            raise UsageError(f"{run_dir} is a {task.name} run; `magtask {command}` does not take it: {how}")
        raise UsageError(f"{run_dir} is a {task.name} run; task {task.name} offers neither `magtask apply` nor "
                         "`magtask sample`")
    head_spec, head, config = load_head(run_dir, registry)
    tok = open_run_tokenizer(run_dir, run_config, str(metrics.get("tokenizer", "")), tokenizer)
    device = resolve_device(device)
    if callable(getattr(head, "to", None)) and device != "cpu":
        head = head.to(device)
    return LoadedRun(run_dir=run_dir, task=task, head_spec=head_spec, head=head, config=config,
                     run_config=run_config, metrics=metrics, tokenizer=tok.to(device).eval(), device=device,
                     quiet=quiet, seed=int(metrics.get("seed", 0)) if seed is None else int(seed))


def open_run_tokenizer(run_dir: Path, run_config: dict, want_hash: str, override: Path | None = None):
    """The run's tokenizer: `override`, else the one config.json names ("default": the shipped one),
    refused unless its content hash is the run's."""
    from magtask.tokenizer.magvit2_load import is_magvit2_checkpoint
    from magtask.tokenizer.resolve import hash_of, open_tokenizer

    recorded = run_config.get("tokenizer")
    if override is not None:
        path = Path(override)
        if not path.exists():
            raise MagtaskError(f"{path}: no such tokenizer file")
    elif recorded in (None, "", "default"):
        path = None
    else:
        path = Path(recorded)
        if not path.exists():
            raise MagtaskError(f"{run_dir}: its tokenizer {path} is not there any more; pass --tokenizer FILE "
                               f"(the one with hash {want_hash[:16]})")
    config = run_config.get("tokenizer_config") if path is not None and is_magvit2_checkpoint(path) else None
    tok = open_tokenizer(path, config)
    got = hash_of(tok)
    if want_hash and got != want_hash:
        raise MagtaskError(f"{path or 'the shipped tokenizer'} has content hash {got[:16]}, but {run_dir} was "
                           f"run with tokenizer {want_hash[:16]}; pass --tokenizer with that one")
    return tok


def check_out(out: Path | None, allowed: tuple[str, ...], what: str) -> None:
    """A UsageError unless --out ends in one of `allowed` (and, for .mp4, the encoder is here)."""
    if out is None:
        return
    ext = Path(out).suffix.lower()
    if ext not in allowed:
        raise UsageError(f"--out {out}: {ext or 'no extension'} is not supported; {what} writes "
                         f"{', '.join(allowed)}")
    if Path(out).is_dir():
        raise UsageError(f"--out {out}: is a folder; give a file name ending in {', '.join(allowed)}")
    if ext == ".mp4" and importlib.util.find_spec("av") is None:
        raise MagtaskError("--out .mp4 needs PyAV (pip install av); .gif needs nothing more")


def _visible(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=lambda p: p.name)


def read_inputs(paths: list[Path], frames: int | None = None, size: int | None = None) -> list[InputVideo]:
    """INPUT... -> videos, in order. An INPUT is a video (.gif, .mp4, a folder of .png frames), a folder of
    videos (sorted by name) or a dataset file (.safetensors, .npz, .pt: every video, with its class).
    frames / size resample video files (magtask.data.video_files); dataset files are taken as they are."""
    from magtask.data.dataset import load_dataset
    from magtask.data.video_files import read_frames, video_file

    def one(p: Path) -> InputVideo:
        return InputVideo(str(p), read_frames(video_file(p), frames, size))

    out: list[InputVideo] = []
    for p in map(Path, paths):
        if not p.exists():
            raise MagtaskError(f"{p}: no such file or folder")
        if p.is_file() and p.suffix.lower() in DATASET_SUFFIXES:
            ds = load_dataset(p)
            names = ds.class_names
            videos = np.asarray(ds.videos[:])
            out.extend(InputVideo(f"{p}[{i}]", videos[i], names[int(y)] if 0 <= int(y) < len(names) else None)
                       for i, y in enumerate(ds.labels))
        elif p.is_dir():
            entries = _visible(p)
            if not entries:
                raise MagtaskError(f"{p}: an empty folder (expected videos, or the .png frames of one)")
            if any(e.is_file() and e.suffix.lower() == ".png" for e in entries):
                out.append(one(p))  # a folder of frames: one video
            else:
                out.extend(one(e) for e in entries)
        else:
            out.append(one(p))
    if not out:
        raise MagtaskError("no videos among the inputs")
    return out
