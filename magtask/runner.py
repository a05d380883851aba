"""What `magtask run` does, as a function: resolve data and tokenizer, load codes, run the task."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from magtask.codes import load_codes
from magtask.data.dataset import load_dataset
from magtask.errors import MagtaskError, UsageError
from magtask.runs import RunContext, check_run_dir, staged_run_dir, write_json
from magtask.specs import HeadSpec, TaskSpec


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise UsageError(f"--device must be cpu, cuda or auto, not {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise MagtaskError("--device cuda: no CUDA device is available here")
    return device


def execute(task: TaskSpec, head: HeadSpec, data: Path | None = None, tokenizer_path: Path | None = None,
            seed: int = 0, epochs: int | None = None, run_dir: Path | None = None, overwrite: bool = False,
            options: dict | None = None, batch_size: int = 16, device: str = "cpu", quiet: bool = False,
            started: float | None = None, tokenizer_config: str | None = None,
            head_options: dict | None = None, precision: str | None = None) -> dict:
    """Run `task` with `head`; options and head_options are already validated (specs.resolve_options);
    precision (None: the head's train_defaults) goes to the shared loop's TrainConfig.
    Returns the metrics written to RUN_DIR/metrics.json."""
    from magtask.data.defaults import default_dataset_path
    from magtask.tokenizer.resolve import hash_of, open_tokenizer

    started = time.perf_counter() if started is None else started
    device = resolve_device(device)
    dataset = load_dataset(data if data is not None else default_dataset_path(quiet=quiet))
    dataset.require("train", "test")
    tok = open_tokenizer(tokenizer_path, tokenizer_config).to(device).eval()
    tok_hash = hash_of(tok)
    tok.latent_shape(dataset.frames, dataset.size)  # a clear error if the videos do not fit the tokenizer
    final = check_run_dir(run_dir, task.name, head.name, overwrite, inputs=(dataset.path, tokenizer_path))
    codes = load_codes(dataset, tok, tok_hash, batch_size=batch_size, device=device, quiet=quiet)
    with staged_run_dir(final, overwrite) as tmp:  # tasks write into tmp; renamed to `final` on success
        ctx = RunContext(task=task, head=head, dataset=dataset, tokenizer=tok, tokenizer_hash=tok_hash, codes=codes,
                         run_dir=tmp, seed=seed, epochs=epochs, options=dict(options or {}), device=device,
                         quiet=quiet, head_options=dict(head_options or {}), precision=precision)
        config = {"task": task.name, "head": head.name, "head_package": f"{head.package} {head.version}",
                  "data": str(dataset.path),
                  "tokenizer": str(Path(tokenizer_path).resolve()) if tokenizer_path else "default",
                  "tokenizer_config": tokenizer_config, "seed": seed,
                  "epochs": epochs, "precision": precision, "options": ctx.options, "head_options": ctx.head_options,
                  "side_inputs": list(head.side_inputs), "device": device}
        write_json(tmp / "config.json", config)
        result = task.run(ctx)
        metrics = {"task": task.name, "head": head.name, "tokenizer": tok_hash, "data": dataset.hash, "seed": seed,
                   "seconds": round(time.perf_counter() - started, 3), "side_inputs": list(head.side_inputs),
                   "options": ctx.head_options, "task_options": ctx.options, **result, "run_dir": str(final)}
        write_json(tmp / "metrics.json", metrics)
    return metrics
