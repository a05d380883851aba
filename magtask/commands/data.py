"""`magtask data generate|import|info|show`: make, import, describe and look at trajectory datasets."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from magtask.console import err, out, progress_bar
from magtask.data.dataset import load_dataset
from magtask.data.generate import generate_dataset
from magtask.data.splits import SPLIT_NAMES
from magtask.data.styles import STYLES
from magtask.errors import MagtaskError, UsageError
from magtask.data.trajectories import CLASS_NAMES

app = typer.Typer(help="Generate, import, describe and look at trajectory-video datasets.", no_args_is_help=True)


@app.command()
def generate(
    out_path: Path = typer.Option(..., "--out", help="Dataset file to write (.safetensors)."),
    per_class: int = typer.Option(500, "--per-class", min=1, help="Videos per class (4 classes)."),
    seed: int = typer.Option(0, "--seed", help="Everything (paths, cameras, styles, splits) follows from it."),
    frames: int = typer.Option(16, "--frames", min=2, help="Frames per video."),
    size: int = typer.Option(64, "--size", min=24, help="Frame height and width in pixels."),
    style: str = typer.Option("seed", "--style", help="seed: the seed project's look; varied: random dot "
                              "radius 3-7 px, colours, outline and noise per video; looks: five look families "
                              "(light, dark, colour, gradient, soft) for training tokenizers; bright, mist and "
                              "blob: three looks that 'looks' never draws (an outlined saturated disc on "
                              "white; a soft-edged dot on a light background; a dot of radius 8.5-11 px), "
                              "for held-out scores."),
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


@app.command("import")
def import_(
    folder: Path = typer.Argument(..., metavar="DIR", help="DIR/<class name>/<video>: .gif, .mp4 or a folder of numbered "
                                  ".png frames. Classes: the folder names, sorted; at least 2, with at least 3 "
                                  "videos each."),
    out_path: Path = typer.Option(..., "--out", help="Dataset file to write (.safetensors)."),
    frames: Optional[int] = typer.Option(None, "--frames", min=2, help="Resample every video to T frames "
                                         "(default: videos must have 16, what the shipped tokenizer takes)."),
    size: Optional[int] = typer.Option(None, "--size", min=8, help="Resize every frame to S x S pixels "
                                       "(default: frames must be 64x64)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing file."),
) -> None:
    """Import your own videos as a dataset with a stratified train/val/test split (duplicates dropped)."""
    from magtask.data.folder_import import import_folder

    if out_path.exists() and not overwrite:
        raise MagtaskError(f"{out_path}: exists; pass --overwrite to replace it")
    if out_path.is_dir():
        raise MagtaskError(f"{out_path}: is a directory; --out names the dataset file to write")
    t0 = time.perf_counter()
    done = import_folder(folder, out_path, frames=frames or 16, size=size or 64, resample_frames=frames is not None,
                         resample_size=size is not None, bar=progress_bar)
    if done.duplicates:
        dropped, kept = done.duplicates[0]
        more = f" (and {len(done.duplicates) - 1} more)" if len(done.duplicates) > 1 else ""
        err.print(f"dropped {len(done.duplicates)} duplicate video{'s' * (len(done.duplicates) != 1)}: "
                  f"{dropped} repeats {kept}{more}", soft_wrap=True)
    per_class = ", ".join(f"{c} {n}" for c, n in zip(done.class_names, done.counts))
    err.print(f"wrote {done.n} videos ({frames or 16}x3x{size or 64}x{size or 64}) in {len(done.class_names)} "
              f"classes ({', '.join(done.class_names)}; {per_class}) to {out_path} in "
              f"{time.perf_counter() - t0:.1f} s; content hash {done.hash[:16]}", soft_wrap=True)


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
            "class_names": list(ds.class_names), "counts": ds.counts(), "has_ground_truth": ds.centres is not None}
    if as_json:
        print(json.dumps(info, indent=2))
        return
    out.print(f"[bold]{path}[/bold]  {info['format']}  {len(ds)} videos  shape {tuple(ds.videos.shape)} uint8  "
              f"hash {ds.hash[:16]}", soft_wrap=True)
    table = Table()
    table.add_column("class")
    for s in SPLIT_NAMES:
        table.add_column(s, justify="right")
    for c in ds.class_names:
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
