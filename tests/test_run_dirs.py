"""Run dirs: --overwrite replaces only what magtask wrote, a run appears only when it succeeds."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from magtask import TaskSpec
from magtask.errors import MagtaskError
from magtask.registry import get_registry
from magtask.runner import execute

from conftest import run_cli, sigint_default


def _run(tiny_dataset, tiny_tokenizer, run_dir, *extra, cwd=None):
    args = ["run", "classify", "mlp", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer),
            "--epochs", "1", "--run-dir", str(run_dir), "--json", *extra]
    if cwd is None:
        return run_cli(*args)
    return subprocess.run([sys.executable, "-m", "magtask", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "COLUMNS": "200"})


def test_overwrite_refuses_a_dir_magtask_did_not_write(tiny_dataset, tiny_tokenizer, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "thesis.txt").write_text("years of work")
    proc = _run(tiny_dataset, tiny_tokenizer, victim, "--overwrite")
    assert proc.returncode == 1 and "not a magtask run dir" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert (victim / "thesis.txt").read_text() == "years of work"


def test_overwrite_refuses_cwd_and_parents_of_the_data(tiny_dataset, tiny_tokenizer, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    data = work / "data.safetensors"
    data.write_bytes(tiny_dataset.read_bytes())
    (work / "metrics.json").write_text(json.dumps({"task": "classify", "head": "mlp-classifier"}))
    for target in (".", str(work), str(tmp_path), "/", os.path.expanduser("~")):
        proc = _run(data, tiny_tokenizer, target, "--overwrite", cwd=work)
        assert proc.returncode == 1, (target, proc.stderr)
        assert "refusing to replace" in proc.stderr, proc.stderr
    assert data.exists() and (work / "metrics.json").exists()


def _failing_task(ctx):
    (ctx.run_dir / "half.txt").write_text("half a run")
    raise MagtaskError("the task failed half-way")


def test_failing_overwrite_keeps_the_old_run_and_leaves_no_debris(tiny_dataset, tiny_tokenizer, tmp_path):
    run_dir = tmp_path / "run"
    _run(tiny_dataset, tiny_tokenizer, run_dir).check_returncode()
    before = (run_dir / "metrics.json").read_text()
    head = get_registry().head("classify", "mlp")
    with pytest.raises(MagtaskError, match="half-way"):
        execute(TaskSpec(name="boom", run=_failing_task), head, data=tiny_dataset, tokenizer_path=tiny_tokenizer,
                run_dir=run_dir, overwrite=True, quiet=True)
    assert (run_dir / "metrics.json").read_text() == before and not (run_dir / "half.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    _run(tiny_dataset, tiny_tokenizer, run_dir, "--overwrite").check_returncode()
    assert json.loads((run_dir / "metrics.json").read_text())["run_dir"] == str(run_dir)


def test_failed_run_leaves_nothing_so_the_retry_works(tiny_dataset, tiny_tokenizer, tmp_path):
    run_dir = tmp_path / "runs" / "fresh"
    head = get_registry().head("classify", "mlp")
    with pytest.raises(MagtaskError):
        execute(TaskSpec(name="boom", run=_failing_task), head, data=tiny_dataset, tokenizer_path=tiny_tokenizer,
                run_dir=run_dir, quiet=True)
    assert list(tmp_path.iterdir()) == []
    _run(tiny_dataset, tiny_tokenizer, run_dir).check_returncode()
    assert (run_dir / "metrics.json").exists() and (run_dir / "head.safetensors").exists()
    assert (run_dir / ".magtask-run").exists()


def test_ctrl_c_says_nothing_was_written_and_exits_130(tiny_dataset, tiny_tokenizer, tmp_path):
    run_dir = tmp_path / "run"
    # a head whose training cannot end on its own first: lstm-predictor stops early only after 1000 flat epochs
    args = [sys.executable, "-m", "magtask", "run", "predict", "lstm", "-o", "width=4", "--data", str(tiny_dataset),
            "--tokenizer", str(tiny_tokenizer), "--epochs", "100000", "--run-dir", str(run_dir)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200"}, preexec_fn=sigint_default)
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.name.startswith(".run.tmp-") for p in tmp_path.iterdir()):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].endswith("interrupted: nothing written"), err
    assert list(tmp_path.iterdir()) == []
