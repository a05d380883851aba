"""`magtask run TASK HEAD`: generic over every registered task and head."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List, Optional

import typer

from magtask.console import err
from magtask.contracts import check_side_inputs
from magtask.errors import UsageError
from magtask.specs import resolve_options

def parse_pairs(pairs: list[str], flag: str) -> dict[str, str]:
    """['k=v', ...] -> {k: v} (values stay strings: each option parses its own type)."""
    out = {}
    for p in pairs:
        if "=" not in p:
            raise UsageError(f"{flag} takes KEY=VALUE, got {p!r}")
        k, v = p.split("=", 1)
        out[k.strip()] = v
    return out


def run(
    task: str = typer.Argument(..., help="classify, generate, predict, or a plugin's task."),
    head: str = typer.Argument(..., help="A head name or alias of that task (see `magtask list-heads`)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset file (ours, or the seed project's "
                                        ".npz/.pt). Default: the default dataset, generated on first use."),
    tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help="Tokenizer checkpoint. Default: the "
                                             "shipped checkpoints/magtask-tokenizer-v3.safetensors."),
    tokenizer_config: Optional[str] = typer.Option(None, "--tokenizer-config", help="For a magvit2-pytorch "
                                                   "checkpoint without a config: a preset (seed-2026-01) or a JSON file."),
    seed: int = typer.Option(0, "--seed", help="Seeds the head's initialisation and data order."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Training epochs (default: the head's)."),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Where to write metrics.json, weights and "
                                           "pictures. Default: runs/TASK-HEAD-TIMESTAMP."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run dir."),
    as_json: bool = typer.Option(False, "--json", help="Print only the metrics JSON on stdout."),
    train_per_class: Optional[int] = typer.Option(None, "--train-per-class",
                                                  help="classify: labelled training videos per class."),
    samples: Optional[int] = typer.Option(None, "--samples", help="generate: samples per class."),
    class_name: Optional[str] = typer.Option(None, "--class", help="generate: only this class."),
    past: Optional[int] = typer.Option(None, "--past", help="predict: past frames given to the head."),
    future: Optional[int] = typer.Option(None, "--future", help="predict: future frames to predict."),
    sets: List[str] = typer.Option([], "--set", help="KEY=VALUE option of the task (repeatable): "
                                   "a plugin task's own options, or the flags above by name."),
    head_options: List[str] = typer.Option([], "-o", "--option", help="KEY=VALUE option of the head (repeatable), "
                                           "e.g. -o hidden=64; `magtask list-heads HEAD` lists them."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Videos per encoding batch (16 is fastest on 2 CPU cores)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
    precision: Optional[str] = typer.Option(None, "--precision", help="Training steps in fp32 or bf16 (bfloat16 "
                                            "autocast; weights and scores stay float32; only where the device "
                                            "computes bf16 natively, else fp32). Default: the head's; "
                                            "metrics.json says which ran (train_precision)."),
) -> None:
    """Train or fit a head on a task's codes, evaluate it on the held-out test split, write a run dir.

    Example: `magtask run classify mlp` (default dataset, shipped tokenizer): prints test accuracy,
    per-class accuracy and the confusion matrix beside chance, in a few seconds once codes are cached.
    `magtask run classify mlp -o hidden=64` sets a head option (`magtask list-heads mlp` lists them);
    metrics.json records the options and the head's side inputs (what it used beyond the codes).
    """
    from magtask.loop import PRECISIONS
    from magtask.registry import get_registry
    from magtask.runner import execute

    registry = get_registry()
    for failure in registry.failures:
        err.print(f"[yellow]warning:[/yellow] {failure.line()}", soft_wrap=True, highlight=False, markup=True)
    task_spec = registry.task(task)
    head_spec = registry.head(task, head)
    given = {k: v for k, v in dict(train_per_class=train_per_class, samples=samples, class_name=class_name,
                                   past=past, future=future).items() if v is not None}
    declared = {o.name for o in task_spec.options}
    unknown = [k for k in given if k not in declared]
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        takes = ", ".join("--" + o.name.replace("_", "-") for o in task_spec.options) or "none"
        raise UsageError(f"{flags} does not apply to task {task!r} (it takes: {takes})")
    given.update(parse_pairs(sets, "--set"))
    options = resolve_options(task_spec.options, given, f"task {task_spec.name}", flags=True)
    head_opts = resolve_options(head_spec.options, parse_pairs(head_options, "-o"), f"head {head_spec.name}")
    check_side_inputs(head_spec, task_spec)
    if precision is not None and precision not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    t0 = time.perf_counter()
    metrics = execute(task_spec, head_spec, data=data, tokenizer_path=tokenizer, seed=seed, epochs=epochs,
                      run_dir=run_dir, overwrite=overwrite, options=options, head_options=head_opts,
                      batch_size=batch_size,
                      device=device, quiet=as_json, started=t0,
                      tokenizer_config=tokenizer_config, precision=precision)
    if as_json:
        print(json.dumps(metrics, indent=2))
    else:
        err.print(f"[dim]run dir: {metrics['run_dir']}  ({metrics['seconds']:.1f} s)[/dim]", soft_wrap=True)
