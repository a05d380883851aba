"""Shared fixtures: tiny datasets, an isolated cache dir, and a helper to run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from magtask.data.generate import generate_dataset


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Keep every test's generated data and code caches out of the user's cache dir."""
    d = tmp_path_factory.mktemp("magtask-cache")
    old = os.environ.get("MAGTASK_CACHE_DIR")
    os.environ["MAGTASK_CACHE_DIR"] = str(d)
    yield d
    if old is None:
        os.environ.pop("MAGTASK_CACHE_DIR", None)
    else:
        os.environ["MAGTASK_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """20 videos per class in the seed look: 16 frames of 64x64."""
    path = tmp_path_factory.mktemp("data") / "tiny.safetensors"
    generate_dataset(path, per_class=20, seed=3)
    return path


def sigint_default() -> None:
    """preexec_fn for a child that a test interrupts: SIGINT back to its default disposition, so the
    child's Python installs its Ctrl-C handler even when the suite itself was started with SIGINT
    ignored (a background job of a non-interactive shell: nohup ... &)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli_fresh(*args: str, env: dict | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run `python -m magtask ARGS` in a fresh process, exactly as a user would (for what needs one:
    plugins installed since the registry was loaded, signals, the entry point itself)."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "magtask", *args], capture_output=True, text=True, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"magtask {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_cli(*args: str, env: dict | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run the CLI's own entry (magtask.cli.main) in this process, with stdout / stderr captured and
    exit codes as a process would see them: what a fresh process gives, less the ~3 s torch import.
    An exception that escapes main() (a bug: the CLI must turn every one into an exit code) fails the
    test with its traceback."""
    import contextlib
    import io

    from magtask import console, interrupt
    from magtask.cli import main

    saved_env = {k: os.environ.get(k) for k in {"COLUMNS", *(env or {})}}
    os.environ.update({"COLUMNS": "200", **{k: str(v) for k, v in (env or {}).items()}})
    widths = console.out.width, console.err.width
    console.out.width = console.err.width = 200
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([str(a) for a in args])
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        console.out.width, console.err.width = widths
        interrupt._kept.clear()
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    proc = subprocess.CompletedProcess(["magtask", *map(str, args)], code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"magtask {' '.join(map(str, args))} exited {code}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory) -> Path:
    """A small, untrained (randomly initialised, seeded) tokenizer: real code paths, seconds to run."""
    import torch

    from magtask.tokenizer.io import save_tokenizer
    from magtask.tokenizer.model import VideoTokenizer

    torch.manual_seed(0)
    model = VideoTokenizer({"width": 8, "enc_blocks": 1, "mid_blocks": 1, "dec_blocks": 1})
    path = tmp_path_factory.mktemp("tok") / "tiny-tokenizer.safetensors"
    save_tokenizer(model, path)
    return path


def assert_head_reloads(run_dir: Path, data: Path, tokenizer: Path) -> None:
    """The head a run saved, rebuilt by magtask.runs.load_head, gives the run's own outputs again:
    classify its confusion matrix, generate its samples' token indices, predict its predicted codes."""
    import json

    import numpy as np
    import torch

    from magtask.codes import load_codes
    from magtask.data.dataset import load_dataset
    from magtask.runs import load_head
    from magtask.tensorfile import open_tensors
    from magtask.tokenizer.resolve import hash_of, open_tokenizer

    metrics = json.loads((run_dir / "metrics.json").read_text())
    spec, head, config = load_head(run_dir)
    assert spec.name == metrics["head"] and config.options == metrics["options"]
    tok = open_tokenizer(tokenizer).eval()
    if metrics["task"] == "classify":
        ds = load_dataset(data)
        codes = load_codes(ds, tok, hash_of(tok), quiet=True)
        test = codes.subset(2)
        with torch.no_grad():
            pred = head(torch.from_numpy(np.asarray(codes.latents[test], dtype=np.float32))).argmax(1).numpy()
        m = np.zeros((config.n_classes,) * 2, np.int64)
        np.add.at(m, (codes.labels[test], pred), 1)
        assert m.tolist() == metrics["confusion_matrix"]
        return
    samples, _ = open_tensors(run_dir / "samples.safetensors")
    if metrics["task"] == "generate":
        s = head.sample(torch.from_numpy(np.asarray(samples["labels"])), generator=torch.Generator().manual_seed(
            metrics["seed"] + 1))
        idx = tok.grid.snap(s)[1] if s.dtype.is_floating_point else s
        assert torch.equal(idx.to(torch.int32), torch.from_numpy(np.asarray(samples["indices"])))
        return
    from magtask_plugins.tasks.predict.codes import encode_frames

    past = encode_frames(tok, np.asarray(samples["truth"])[:, :metrics["n_past"]])
    with torch.no_grad():
        fut = head.predict(past, metrics["n_future_steps"])
    assert torch.equal(fut, torch.from_numpy(np.asarray(samples["codes"]))[:, :, metrics["n_past_steps"]:])
