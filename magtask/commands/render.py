"""`magtask render RUN_DIR --out gif|mp4|png [--path FILE]`: a run's samples as a labelled grid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from magtask.console import err
from magtask.errors import MagtaskError, UsageError


def load_samples(run_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, list[str]]:
    """(videos, labels, truth or None, class names) from RUN_DIR/samples.safetensors (layout in render.py)."""
    from magtask.render import SAMPLES_FILE
    from magtask.tensorfile import open_tensors

    if not run_dir.exists():
        raise MagtaskError(f"{run_dir}: no such run dir")
    if not run_dir.is_dir():
        raise MagtaskError(f"{run_dir}: not a run dir (it is a file)")
    path = run_dir / SAMPLES_FILE
    if not path.exists():
        raise MagtaskError(f"{run_dir}: holds no samples ({SAMPLES_FILE}); `magtask run generate ...` or "
                           "`magtask run predict ...` writes them")
    tensors, meta = open_tensors(path)
    videos = tensors.get("videos")
    if videos is None or videos.ndim != 5 or videos.shape[2] != 3 or videos.dtype != np.uint8:
        raise MagtaskError(f"{path}: needs `videos` uint8 (N, T, 3, H, W)")
    labels = tensors.get("labels")
    labels = np.full(len(videos), -1, np.int64) if labels is None else np.asarray(labels, np.int64)
    if labels.shape != (len(videos),):
        raise MagtaskError(f"{path}: `labels` must have shape ({len(videos)},), has {labels.shape}")
    truth = tensors.get("truth")
    if truth is not None and (truth.shape != videos.shape or truth.dtype != np.uint8):
        raise MagtaskError(f"{path}: `truth` must be uint8 with the shape of `videos` {videos.shape}")
    if len(videos) == 0:
        raise MagtaskError(f"{path}: holds no samples (0 videos)")
    try:
        names = json.loads(meta.get("class_names", "[]"))
    except json.JSONDecodeError:
        raise MagtaskError(f"{path}: its class_names metadata is not a JSON list") from None
    return videos, labels, truth, names


def render(
    run_dir: Path = typer.Argument(..., help="A run dir that holds samples.safetensors (generate or predict)."),
    out: str = typer.Option("gif", "--out", help="gif (looping animation), mp4 (H.264, through PyAV) or png "
                                                 "(each sample's dot track as one still)."),
    path: Optional[Path] = typer.Option(None, "--path", help="File to write. Default: RUN_DIR/samples.FORMAT."),
    per_class: int = typer.Option(8, "--per-class", min=1, help="Samples shown per row (class)."),
    scale: int = typer.Option(3, "--scale", min=1, max=16, help="Pixels per video pixel."),
    fps: float = typer.Option(8.0, "--fps", min=0.5, max=60, help="Frames per second (gif, mp4)."),
) -> None:
    """Draw a run's samples as a grid, a row per class, scaled up and labelled.

    Predict runs (samples with `truth`) show truth beside each prediction. Example:
    `magtask run generate maskgit --run-dir runs/g && magtask render runs/g --out gif`.
    """
    from magtask.render import RENDER_FORMATS, sample_frames, sample_trails, write_animation, write_image

    fmt = out.lower().lstrip(".")
    if fmt not in RENDER_FORMATS:
        raise UsageError(f"--out {out!r} is not supported; choose one of {', '.join(RENDER_FORMATS)}")
    videos, labels, truth, names = load_samples(run_dir)
    target = path if path is not None else run_dir / f"samples.{fmt}"
    if target.suffix.lower() != f".{fmt}":
        raise UsageError(f"--path {target} does not end in .{fmt} (the format --out {fmt} writes)")
    if fmt == "png":
        write_image(target, sample_trails(videos, labels, truth, names, per_row=per_class, scale=scale))
    else:
        write_animation(target, sample_frames(videos, labels, truth, names, per_row=per_class, scale=scale), fps=fps)
    err.print(f"wrote {target}", soft_wrap=True, highlight=False)
