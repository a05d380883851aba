"""`magtask data generate|info|show`: make, describe and look at trajectory datasets."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.table import Table

from magtask.console import err, out, progress_bar
from magtask.data.dataset import load_dataset
from magtask.data.generate import generate_dataset
from magtask.data.splits import SPLIT_NAMES
from magtask.data.styles import STYLES
from magtask.errors import MagtaskError, UsageError
from magtask.specs import CLASS_NAMES

app = typer.Typer(help="Generate, describe and look at trajectory-video datasets.", no_args_is_help=True)


@app.command()
def generate(
    out_path: Path = typer.Option(..., "--out", help="Dataset file to write (.safetensors)."),
    per_class: int = typer.Option(500, "--per-class", min=1, help="Videos per class (4 classes)."),
    seed: int = typer.Option(0, "--seed", help="Everything (paths, cameras, styles, splits) follows from it."),
    frames: int = typer.Option(16, "--frames", min=2, help="Frames per video."),
    size: int = typer.Option(64, "--size", min=24, help="Frame height and width in pixels."),
    style: str = typer.Option("seed", "--style", help="seed: the seed project's look; varied: random dot "
                              "radius 3-7 px, colours, outline and noise per video."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing file."),
) -> None:
    """Render linear, circular, helical and parabolic dot videos with their ground truth."""
    if style not in STYLES:
        raise UsageError(f"--style must be one of {', '.join(STYLES)}, not {style!r}")
    if out_path.suffix != ".safetensors":
        raise UsageError(f"--out must name a .safetensors file (the format written), got {out_path}")
    if out_path.exists() and not overwrite:
        raise MagtaskError(f"{out_path}: exists; pass --overwrite to replace it")
    n = per_class * len(CLASS_NAMES)
    t0 = time.perf_counter()
    with progress_bar("rendering", n) as tick:
        digest = generate_dataset(out_path, per_class=per_class, seed=seed, frames=frames, size=size, style=style,
                                  progress=lambda done, total: tick(completed=done))
    err.print(f"wrote {n} videos ({frames}x3x{size}x{size}, style {style}) to {out_path} in "
              f"{time.perf_counter() - t0:.1f} s; content hash {digest[:16]}", soft_wrap=True)


@app.command()
def info(
    path: Path = typer.Argument(..., help="A dataset: ours (.safetensors) or the seed project's (.npz, .pt)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Counts per class and split, shapes, and the content hash."""
    ds = load_dataset(path)
    info = {"path": str(path), "format": ds.meta.get("format", ""), "n_videos": len(ds),
            "videos_shape": list(ds.videos.shape), "dtype": str(ds.videos.dtype), "hash": ds.hash,
            "style": ds.meta.get("style"), "seed": ds.meta.get("seed"), "generator_version": ds.meta.get("generator_version"),
            "counts": ds.counts(), "has_ground_truth": ds.centres is not None}
    if as_json:
        print(json.dumps(info, indent=2))
        return
    out.print(f"[bold]{path}[/bold]  {info['format']}  {len(ds)} videos  shape {tuple(ds.videos.shape)} uint8  "
              f"hash {ds.hash[:16]}", soft_wrap=True)
    table = Table()
    table.add_column("class")
    for s in SPLIT_NAMES:
        table.add_column(s, justify="right")
    for c in CLASS_NAMES:
        table.add_row(c, *(str(info["counts"][s][c]) for s in SPLIT_NAMES))
    out.print(table)


@app.command()
def show(
    path: Path = typer.Argument(..., help="A dataset file."),
    out_path: Path = typer.Option(..., "--out", help="PNG contact sheet to write."),
    per_class: int = typer.Option(6, "--per-class", min=1, max=32, help="Tiles per class row."),
    split: str = typer.Option("test", "--split", help="Which split to draw from: train, val or test."),
) -> None:
    """A contact sheet: a row per class, each tile the dot's path over all frames (blue early, red late)."""
    from magtask.render import trail_sheet, write_image

    if split not in SPLIT_NAMES:
        raise UsageError(f"--split must be one of {', '.join(SPLIT_NAMES)}")
    if out_path.suffix.lower() != ".png":
        raise UsageError("--out must name a .png file")
    ds = load_dataset(path)
    write_image(out_path, trail_sheet(ds, per_class=per_class, split=split))
    err.print(f"wrote {out_path}")
