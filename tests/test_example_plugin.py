"""The example third-party package installs with pip and runs through the CLI like a built-in."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli_fresh as run_cli

EXAMPLE = Path(__file__).parent.parent / "examples" / "magtask-knn"


@pytest.fixture(scope="module")
def knn_installed(tmp_path_factory):
    src = tmp_path_factory.mktemp("knn") / "magtask-knn"
    shutil.copytree(EXAMPLE, src)
    subprocess.run([sys.executable, "-m", "pip", "-q", "install", "--no-deps", "--no-build-isolation", "--no-index",
                    str(src)], check=True, capture_output=True)
    yield
    subprocess.run([sys.executable, "-m", "pip", "-q", "uninstall", "-y", "magtask-knn"], check=True,
                   capture_output=True)


def test_example_head_is_listed_and_runs(knn_installed, tiny_dataset, tiny_tokenizer, tmp_path):
    rows = {r["name"]: r for r in json.loads(run_cli("list-heads", "--json", check=True).stdout)}
    assert rows["knn-classifier"]["package"] == "magtask-knn" and rows["knn-classifier"]["aliases"] == ["knn"]
    proc = run_cli("run", "classify", "knn", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer),
                   "-o", "k=3", "--run-dir", str(tmp_path / "r"), "--json", check=True)
    metrics = json.loads(proc.stdout)
    assert metrics["head"] == "knn-classifier" and metrics["n_test"] == 12
    assert metrics["epochs_trained"] is None and metrics["head_kind"] == "fitted"
    assert metrics["options"] == {"k": 3} and metrics["side_inputs"] == []


def test_example_package_own_tests(knn_installed):
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
