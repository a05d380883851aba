"""magtask works installed from its wheel, outside the checkout: the shipped tokenizer travels with it.

The wheel is built from a copy of the source tree (`pip wheel --no-deps --no-build-isolation`) and
installed into a fresh venv under a temporary directory. The venv's own site-packages holds only
magtask (from the wheel); torch and the other dependencies are reused from the environment running
the tests through a .pth file (what `--system-site-packages` does for a system Python; a full install
of torch from local disk takes about a minute more on 2 cores). Every command runs with its working
directory outside the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHECKPOINT_FILES = ("magtask-tokenizer-v3.safetensors", "magtask-tokenizer-v3.json")
_IGNORE_ANYWHERE = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc", "*.tmp")
_IGNORE_TOP = {".git", ".venv", "build", "dist", "runs", "data", "out", ".pytest_cache", ".magtask-cache"}


def _ignore(directory: str, names: list[str]) -> set[str]:
    """What .gitignore keeps out of the checkout (build outputs, venvs, caches), nothing of the package."""
    top = {n for n in names if n in _IGNORE_TOP} if Path(directory) == REPO else set()
    return top | _IGNORE_ANYWHERE(directory, names)

pytestmark = pytest.mark.wheel


def _offline_build_possible() -> bool:
    """pip builds offline without isolation only where setuptools is installed (the dev extra has it)."""
    try:
        import setuptools  # noqa: F401
    except ImportError:
        return False
    return True


def _run(cmd: list[str], cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def source_copy(tmp_path_factory) -> Path:
    if not _offline_build_possible():
        pytest.skip("setuptools is not installed: pip cannot build the wheel offline (install the dev extra)")
    src = tmp_path_factory.mktemp("src") / "magtask"
    shutil.copytree(REPO, src, ignore=_ignore)
    return src


@pytest.fixture(scope="module")
def wheel_venv(source_copy, tmp_path_factory) -> Path:
    """A fresh venv outside the checkout with magtask installed from the wheel built here."""
    work = tmp_path_factory.mktemp("wheel")
    dist = work / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(dist), str(source_copy)], cwd=work)
    (wheel,) = dist.glob("magtask-*.whl")
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=work)
    py = venv / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], cwd=work)
    # reuse this environment's torch, numpy, ... (but not its magtask: the venv's own copy comes first)
    own = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=work).stdout.strip())
    (own / "zz_reuse_test_env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return venv


def _env(tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update({"MAGTASK_CACHE_DIR": str(tmp / "cache"), "COLUMNS": "200"})
    return env


def test_wheel_and_sdist_hold_the_shipped_checkpoint(source_copy, wheel_venv, tmp_path):
    import zipfile

    (wheel,) = (wheel_venv.parent / "dist").glob("magtask-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for f in CHECKPOINT_FILES:
        assert any(n.endswith(f"/{f}") for n in names), f"{f} missing from the wheel"
    _run([sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_sdist({str(tmp_path)!r})"],
         cwd=source_copy)
    (sdist,) = tmp_path.glob("magtask-*.tar.gz")
    with tarfile.open(sdist) as t:
        members = t.getnames()
    for f in CHECKPOINT_FILES:
        assert any(m.endswith(f"/checkpoints/{f}") for m in members), f"{f} missing from the sdist"


def test_wheel_holds_every_package_of_the_checkout(wheel_venv):
    """Every folder with an __init__.py under magtask/ and plugins/magtask_plugins/ is in the wheel
    (pyproject.toml lists the packages one by one: a new subpackage must be added there)."""
    import zipfile

    (wheel,) = (wheel_venv.parent / "dist").glob("magtask-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for root, installed in (("magtask", "magtask"), ("plugins/magtask_plugins", "magtask_plugins")):
        for init in sorted((REPO / root).rglob("__init__.py")):
            rel = init.relative_to(REPO / root).as_posix()
            assert f"{installed}/{rel}" in names, f"{root}/{rel} is not in the wheel"


def test_installed_wheel_runs_outside_the_checkout(wheel_venv, tmp_path):
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = _env(tmp_path)
    py, magtask = wheel_venv / "bin" / "python", wheel_venv / "bin" / "magtask"
    where = json.loads(_run([str(py), "-c", "import json, magtask, magtask_plugins\n"
                             "from magtask.tokenizer.io import default_tokenizer_path\n"
                             "print(json.dumps([magtask.__file__, magtask_plugins.__file__, str(default_tokenizer_path())]))"],
                            cwd=cwd, env=env).stdout)
    for p in where:
        assert Path(p).resolve().is_relative_to(wheel_venv.resolve()), f"{p} is not inside the wheel's venv"
        assert not Path(p).resolve().is_relative_to(REPO), p

    info = json.loads(_run([str(magtask), "tokenizer", "info", "--json"], cwd=cwd, env=env).stdout)
    assert Path(info["path"]).resolve().is_relative_to(wheel_venv.resolve())
    assert info["card"], "the shipped tokenizer's card is missing"

    data = tmp_path / "tiny.safetensors"
    _run([str(magtask), "data", "generate", "--out", str(data), "--per-class", "8", "--seed", "1"], cwd=cwd, env=env)
    run_dir = tmp_path / "run"
    proc = _run([str(magtask), "run", "classify", "mlp", "--data", str(data), "--epochs", "1",
                 "--run-dir", str(run_dir), "--json"], cwd=cwd, env=env)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics == json.loads(proc.stdout)
    assert metrics["task"] == "classify" and metrics["head"] == "mlp-classifier"
    assert metrics["tokenizer"] == info["hash"] and 0.0 <= metrics["accuracy"] <= 1.0
