"""`magtask apply RUN_DIR INPUT...` and `magtask sample RUN_DIR --out FILE`: use a finished run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from magtask.errors import UsageError

TOKENIZER_HELP = ("Tokenizer checkpoint, instead of the one config.json names (the shipped one for "
                  "\"default\"); refused unless its content hash is the run's.")


def apply(
    run_dir: Path = typer.Argument(..., help="A finished classify or predict run (`magtask run ... --run-dir DIR`)."),
    inputs: List[Path] = typer.Argument(..., metavar="INPUT...", help="Videos (.gif, .mp4, a folder of numbered "
                                        ".png frames), folders of videos, or dataset files (.safetensors, .npz, .pt)."),
    out: Optional[Path] = typer.Option(None, "--out", help="classify: a .json of the results (optional); predict: "
                                       ".gif or .mp4 (predicted frames framed in red, past in grey) or .safetensors "
                                       "(required)."),
    as_json: bool = typer.Option(False, "--json", help="Print only the results as JSON on stdout."),
    tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help=TOKENIZER_HELP),
    frames: Optional[int] = typer.Option(None, "--frames", min=1, help="Resample each video file to T frames "
                                         "(default: it must have the run's number)."),
    size: Optional[int] = typer.Option(None, "--size", min=1, help="Resize each video file's frames to S x S "
                                       "(default: they must be the run's size)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
) -> None:
    """Use a run's head on new videos.

    classify: each input's class and class probabilities (a table; --json for JSON). Probabilities are
    the softmax of the head's logits; a head whose scores are votes or weights (e.g. a k-NN's neighbours
    per class) has them divided by their sum, and one that returns probabilities is used as it is.
    predict: each input's past frames (the run's past, e.g. the first 12 of 16) and the predicted
    future, written to --out. Inputs must have the run's geometry (or pass --frames/--size).
    Generate runs: `magtask sample`. Example: `magtask apply runs/mine new.gif`.
    """
    from magtask.apply import check_out, load_run, read_inputs

    run = load_run(run_dir, "apply", tokenizer=tokenizer, device=device, quiet=as_json)
    check_out(out, run.task.apply_outputs, f"`magtask apply` on a {run.task.name} run")
    videos = read_inputs(inputs, frames, size)
    result = run.task.apply(run, videos, out)
    if as_json:
        print(json.dumps(result, indent=2))


def sample(
    run_dir: Path = typer.Argument(..., help="A finished generate run (`magtask run generate HEAD --run-dir DIR`)."),
    out: Path = typer.Option(..., "--out", help=".gif or .mp4 (a labelled grid, a row per class) or .safetensors "
                             "(videos, labels, codes, indices)."),
    class_name: Optional[str] = typer.Option(None, "--class", help="Only this class (a conditional head)."),
    n: int = typer.Option(4, "--n", min=1, help="Samples per class (with --class: of that class; an "
                          "unconditional head: as many as a conditional one would draw)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seeds the draws (default: the run's seed, which "
                                       "draws the run's own samples first)."),
    as_json: bool = typer.Option(False, "--json", help="Print only a JSON summary on stdout."),
    tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help=TOKENIZER_HELP),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
) -> None:
    """Draw new videos from a generate run's head and decode them with the run's tokenizer.

    Example: `magtask sample runs/gen --class circular --n 8 --out circular.gif`.
    """
    from magtask.apply import check_out, load_run

    run = load_run(run_dir, "sample", tokenizer=tokenizer, device=device, quiet=as_json, seed=seed)
    check_out(out, run.task.sample_outputs, f"`magtask sample` on a {run.task.name} run")
    if class_name is not None and class_name not in run.class_names:
        raise UsageError(f"--class {class_name!r}: {run_dir} has no such class; its classes: "
                         f"{', '.join(run.class_names)}")
    result = run.task.sample(run, class_name, n, out)
    if as_json:
        print(json.dumps(result, indent=2))
