"""`magtask data generate|info|show` through the real command line, and its usage errors."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli


def test_generate_info_show(tmp_path):
    out = tmp_path / "d.safetensors"
    run_cli("data", "generate", "--out", str(out), "--per-class", "3", "--seed", "5", "--frames", "8",
            "--size", "32", check=True)
    info = json.loads(run_cli("data", "info", str(out), "--json", check=True).stdout)
    assert info["n_videos"] == 12 and info["videos_shape"] == [12, 8, 3, 32, 32]
    assert info["hash"] and info["seed"] == "5"
    assert sum(sum(c.values()) for c in info["counts"].values()) == 12
    table = run_cli("data", "info", str(out), check=True).stdout
    assert "parabolic" in table and "train" in table
    sheet = tmp_path / "sheet.png"
    run_cli("data", "show", str(out), "--out", str(sheet), "--split", "train", check=True)
    img = np.asarray(Image.open(sheet))
    assert img.ndim == 3 and img.shape[0] > 4 * 32  # four labelled rows of scaled-up tiles
    proc = run_cli("data", "generate", "--out", str(out), "--per-class", "3")
    assert proc.returncode == 1 and "--overwrite" in proc.stderr


@pytest.mark.parametrize("args", [
    ["bogus-command"],
    ["data", "generate", "--out", "x.safetensors", "--no-such-option"],
    ["data", "generate", "--out", "x.safetensors", "--per-class", "0"],
    ["data", "generate", "--out", "x.safetensors", "--frames", "1"],
    ["data", "generate", "--out", "x.safetensors", "--size", "-5"],
    ["data", "generate", "--out", "x.safetensors", "--style", "weird"],
    ["run"],
])
def test_usage_errors_exit_2(tmp_path, args):
    proc = run_cli(*args)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert not (tmp_path / "x.safetensors").exists()


def test_help_teaches():
    proc = run_cli("--help", check=True)
    for word in ("run", "list-heads", "data", "tokenizer", "codes"):
        assert word in proc.stdout
    proc = run_cli("data", "generate", "--help", check=True)
    assert "--per-class" in proc.stdout and "--style" in proc.stdout
