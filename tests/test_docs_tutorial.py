"""docs/plugins.md's three tutorials, followed literally: each one's pyproject and module, installed
with pip, listed and run through the CLI."""

import json
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from conftest import run_cli_fresh as run_cli

DOC = Path(__file__).parent.parent / "docs" / "plugins.md"


def tutorial(number: int) -> tuple[str, str]:
    """(pyproject.toml, module) of tutorial `number`, as the page shows them."""
    text = DOC.read_text()
    section = re.search(rf"## Tutorial {number}:.*?(?=\n## |\Z)", text, re.S).group(0)
    blocks = re.findall(r"```(\w*)\n(.*?)```", section, re.S)
    toml = next(b for lang, b in blocks if lang == "toml")
    module = next(b for lang, b in blocks if lang == "python" and "register_heads" in b)
    return textwrap.dedent(toml), textwrap.dedent(module)


@pytest.fixture
def installed(tmp_path):
    """install(number) builds and installs tutorial `number`'s package; uninstalled afterwards."""
    pip = [sys.executable, "-m", "pip", "-q"]
    names = []

    def install(number: int) -> str:
        toml, module = tutorial(number)
        meta = tomllib.loads(toml)
        name, package = meta["project"]["name"], meta["tool"]["setuptools"]["packages"][0]
        root = tmp_path / name
        (root / package).mkdir(parents=True)
        (root / "pyproject.toml").write_text(toml)
        (root / package / "__init__.py").write_text(module)
        subprocess.run([*pip, "install", "--no-deps", "--no-build-isolation", "--no-index", str(root)], check=True,
                       capture_output=True)
        names.append(name)
        return name

    yield install
    for name in names:
        subprocess.run([*pip, "uninstall", "-y", name], check=True, capture_output=True)


def test_tutorial_1_classify_head_with_an_option(installed, tmp_path, tiny_dataset, tiny_tokenizer):
    assert installed(1) == "magtask-myhead"
    row = json.loads(run_cli("list-heads", "myhead", "--json", check=True).stdout)
    assert row["package"] == "magtask-myhead" and row["task"] == "classify" and row["side_inputs"] == []
    assert [o["name"] for o in row["options"]] == ["dropout"]
    proc = run_cli("run", "classify", "myhead", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer),
                   "--epochs", "2", "-o", "dropout=0.2", "--run-dir", str(tmp_path / "run"), "--json", check=True)
    m = json.loads(proc.stdout)
    assert m["head"] == "myhead" and m["options"] == {"dropout": 0.2} and m["head_kind"] == "trained"
    assert m["epochs_trained"] == 2
    bad = run_cli("run", "classify", "myhead", "-o", "dropout=2", "--run-dir", str(tmp_path / "bad"))
    assert bad.returncode == 2 and "dropout" in bad.stderr and "[0, 0.9]" in bad.stderr


def test_tutorial_2_parameter_free_predict_head(installed, tmp_path, tiny_dataset, tiny_tokenizer):
    installed(2)
    proc = run_cli("run", "predict", "repeat-last", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer),
                   "--run-dir", str(tmp_path / "run"), "--json", check=True)
    m = json.loads(proc.stdout)
    assert m["head"] == "repeat-last" and m["head_kind"] == "parameter-free" and m["epochs_trained"] is None
    assert 0 <= m["mse"] <= 1 and m["side_inputs"] == []


def test_tutorial_3_fitted_generate_head(installed, tmp_path, tiny_dataset, tiny_tokenizer):
    installed(3)
    run_dir = tmp_path / "run"
    proc = run_cli("run", "generate", "class-mean", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer),
                   "--samples", "2", "-o", "noise=0.1", "--run-dir", str(run_dir), "--json", check=True)
    m = json.loads(proc.stdout)
    assert m["head"] == "class-mean" and m["head_kind"] == "fitted" and m["conditional"] is True
    assert m["n_samples"] == 8 and m["options"] == {"noise": 0.1}
    assert (run_dir / "head.safetensors").exists() and (run_dir / "samples.safetensors").exists()
