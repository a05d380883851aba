"""Training precision: the shared loop's bf16 autocast, and `magtask run --precision`."""

import json

import pytest
import torch

from magtask.errors import MagtaskError
from magtask.loop import TrainConfig, effective_precision, native_bf16, train

from conftest import run_cli


def _fit(precision: str):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    x = torch.randn(64, 8)
    y = x[:, :1] * 2 - x[:, 1:2]
    seen = []

    def loss_fn(m, batch):
        out = m(batch[0])
        seen.append(out.dtype)
        return ((out.float() - batch[1]) ** 2).mean()

    hist = train(model, (x, y), loss_fn, TrainConfig(epochs=40, batch_size=16, lr=1e-2, precision=precision, quiet=True))
    return model, hist, seen


def test_bf16_steps_run_under_autocast_where_native_and_weights_stay_float32():
    model, hist, seen = _fit("bf16")
    want = torch.bfloat16 if native_bf16("cpu") else torch.float32
    assert hist.precision == ("bf16" if native_bf16("cpu") else "fp32")
    assert set(seen) == {want}  # every training step's forward ran in it
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert hist.train_loss[-1] < 0.2 * hist.train_loss[0]  # it still learns


def test_fp32_is_the_default_and_unknown_precisions_are_refused():
    _, hist, seen = _fit("fp32")
    assert hist.precision == "fp32" and set(seen) == {torch.float32}
    assert TrainConfig().precision == "fp32"
    with pytest.raises(MagtaskError, match="precision must be one of fp32, bf16"):
        effective_precision("fp16", "cpu")


def test_run_records_the_precision_it_trained_in(tiny_dataset, tiny_tokenizer, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli("run", "classify", "mlp", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer),
                   "--epochs", "2", "--precision", "bf16", "--run-dir", str(run_dir), "--json", check=True)
    metrics = json.loads(proc.stdout)
    assert metrics["train_precision"] == effective_precision("bf16", "cpu")
    assert json.loads((run_dir / "config.json").read_text())["precision"] == "bf16"
    proc = run_cli("run", "classify", "mlp", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer),
                   "--epochs", "1", "--run-dir", str(tmp_path / "r2"), "--json", check=True)
    assert json.loads(proc.stdout)["train_precision"] == "fp32"  # mlp-classifier's default


def test_unknown_precision_is_a_usage_error_before_work(tiny_dataset, tiny_tokenizer, tmp_path):
    proc = run_cli("run", "classify", "mlp", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer),
                   "--precision", "fp16", "--run-dir", str(tmp_path / "run"))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--precision must be one of fp32, bf16" in proc.stderr
    assert not (tmp_path / "run").exists()


def test_cpu_bf16_counts_as_native_only_with_avx512_bf16_or_amx_on_x86(monkeypatch):
    """oneDNN reports bf16 support on any AVX512 CPU, where it is emulated and slower than fp32
    (benchmarks/predict.md, 2026-12-04): on x86 the loop takes bf16 only with AVX512-BF16 or AMX."""
    import magtask.loop as loop

    monkeypatch.setattr(loop, "mkldnn_bf16", lambda: True)
    monkeypatch.setattr(loop.platform, "machine", lambda: "x86_64")
    for avx, amx, native in ((False, False, False), (True, False, True), (False, True, True)):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        assert native_bf16("cpu") is native
        assert effective_precision("bf16", "cpu") == ("bf16" if native else "fp32")
    monkeypatch.setattr(loop, "mkldnn_bf16", lambda: False)
    assert native_bf16("cpu") is False
    monkeypatch.setattr(loop, "mkldnn_bf16", lambda: True)
    monkeypatch.setattr(loop.platform, "machine", lambda: "aarch64")  # no x86 flags to read: oneDNN's word
    assert native_bf16("cpu") is True


DENORMALS_LEFT = """
import sys, torch
{setup}
torch.set_num_threads(2)
x = torch.full((2 ** 22,), 1e-40)  # a denormal float32, in chunks over both threads
print(int(((x * 1.0) != 0).sum()))
"""


@pytest.mark.parametrize("setup,flushed", [
    ("", False),  # the control: without it denormals survive (in every thread)
    ("from magtask.loop import flush_denormals; flush_denormals()", True),
    ("from magtask.cli import main\ntry:\n    main(['list-heads'])\nexcept SystemExit:\n    pass", True),
])
def test_denormals_are_flushed_in_every_thread_of_a_magtask_process(setup, flushed):
    """Denormal floats slow CPU kernels late in training (benchmarks/predict.md). flush_denormals()
    (which the CLI calls first) sets it before torch's thread pool exists, so the pool's threads
    inherit it: no denormal survives a product computed on two threads."""
    import os
    import subprocess
    import sys

    if not torch.set_flush_denormal(True):  # what the CLI does to its own process anyway
        pytest.skip("this CPU cannot flush denormals")

    out = subprocess.run([sys.executable, "-c", DENORMALS_LEFT.format(setup=setup)], capture_output=True,
                         text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "2"})
    left = int(out.stdout.strip().splitlines()[-1])
    assert (left == 0) == flushed, left
