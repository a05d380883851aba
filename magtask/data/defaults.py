"""The default dataset: 500 videos per class in the seed project's look, seed 0, generated on first use."""

from __future__ import annotations

from pathlib import Path

from magtask.console import err, progress_bar
from magtask.data.generate import generate_dataset
from magtask.data.trajectories import GENERATOR_VERSION
from magtask.paths import cache_dir

DEFAULT = {"per_class": 500, "seed": 0, "frames": 16, "size": 64, "style": "seed"}
# what `magtask data generate` must be given to write the same file
DEFAULT_COMMAND = "magtask data generate --out FILE --per-class 500 --seed 0"


def default_dataset_path(quiet: bool = False) -> Path:
    path = cache_dir() / "datasets" / f"default-g{GENERATOR_VERSION}-seed0-500.safetensors"
    if not path.exists():
        if not quiet:
            err.print(f"[dim]generating the default dataset once ({DEFAULT_COMMAND}) into {path}[/dim]")
        with progress_bar("generating", DEFAULT["per_class"] * 4, disable=quiet) as tick:
            generate_dataset(path, progress=lambda done, total: tick(completed=done), **DEFAULT)
    return path
