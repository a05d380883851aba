"""docs/plugins.md's tutorial, followed literally: its pyproject and module, installed with pip, run."""

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import run_cli

DOC = Path(__file__).parent.parent / "docs" / "plugins.md"


def test_tutorial_head_installs_lists_and_runs(tmp_path, tiny_dataset, tiny_tokenizer):
    blocks = re.findall(r"```(\w*)\n(.*?)```", DOC.read_text(), re.S)
    toml = next(b for lang, b in blocks if lang == "toml")
    module = next(b for lang, b in blocks if lang == "python" and "register_heads" in b and "class " in b)
    pkg = tmp_path / "magtask-myhead"
    (pkg / "magtask_myhead").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(textwrap.dedent(toml))
    (pkg / "magtask_myhead" / "__init__.py").write_text(textwrap.dedent(module))
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run([*pip, "install", "--no-deps", "--no-build-isolation", "--no-index", str(pkg)], check=True,
                   capture_output=True)
    try:
        rows = {r["name"]: r for r in json.loads(run_cli("list-heads", "--json", check=True).stdout)}
        assert rows["myhead"]["package"] == "magtask-myhead" and rows["myhead"]["task"] == "classify"
        proc = run_cli("run", "classify", "myhead", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer),
                       "--epochs", "2", "--run-dir", str(tmp_path / "run"), "--json", check=True)
        assert json.loads(proc.stdout)["head"] == "myhead"
    finally:
        subprocess.run([*pip, "uninstall", "-y", "magtask-myhead"], check=True, capture_output=True)
