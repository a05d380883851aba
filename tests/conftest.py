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


def run_cli(*args: str, env: dict | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run `python -m magtask ARGS` in a fresh process, exactly as a user would."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "magtask", *args], capture_output=True, text=True, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"magtask {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
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
