"""--device auto|cpu|cuda on every command that computes: the CPU path, and one clear line when cuda is missing."""

import json

import pytest
import torch

from conftest import run_cli

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


def _commands(data, tok, tmp_path):
    return {
        "tokenizer train": ["tokenizer", "train", "--data", str(data), "--out", str(tmp_path / "t.safetensors"),
                            "--steps", "1", "--width", "8", "--batch-size", "2"],
        "tokenizer eval": ["tokenizer", "eval", "--data", str(data), "--tokenizer", str(tok)],
        "codes extract": ["codes", "extract", "--data", str(data), "--tokenizer", str(tok)],
        "run": ["run", "classify", "mlp", "--data", str(data), "--tokenizer", str(tok), "--epochs", "1",
                "--run-dir", str(tmp_path / "run")],
    }


@no_cuda
@pytest.mark.parametrize("command", ["tokenizer train", "tokenizer eval", "codes extract", "run"])
def test_cuda_unavailable_is_one_line(command, tiny_dataset, tiny_tokenizer, tmp_path):
    r = run_cli(*_commands(tiny_dataset, tiny_tokenizer, tmp_path)[command], "--device", "cuda")
    assert r.returncode == 1, r.stderr
    assert "--device cuda: no CUDA device is available here" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "t.safetensors").exists() and not (tmp_path / "run").exists()


def test_bad_device_is_a_usage_error(tiny_dataset, tiny_tokenizer, tmp_path):
    r = run_cli(*_commands(tiny_dataset, tiny_tokenizer, tmp_path)["tokenizer eval"], "--device", "tpu")
    assert r.returncode == 2 and "--device must be cpu, cuda or auto" in r.stderr


def test_cpu_and_auto_give_the_same_eval(tiny_dataset, tiny_tokenizer, tmp_path):
    cmd = _commands(tiny_dataset, tiny_tokenizer, tmp_path)["tokenizer eval"] + ["--json"]
    cpu = json.loads(run_cli(*cmd, "--device", "cpu", check=True).stdout)
    if torch.cuda.is_available():
        return
    auto = json.loads(run_cli(*cmd, "--device", "auto", check=True).stdout)
    assert cpu["psnr"] == auto["psnr"] and cpu["n_videos"] == auto["n_videos"]


def test_train_records_the_device(tiny_dataset, tmp_path):
    from magtask.tokenizer.io import load_tokenizer

    cmd = _commands(tiny_dataset, None, tmp_path)["tokenizer train"]
    run_cli(*cmd, "--device", "auto", check=True)
    card = load_tokenizer(tmp_path / "t.safetensors").card
    assert card["device"] == ("cuda" if torch.cuda.is_available() else "cpu") and card["world_size"] == 1
