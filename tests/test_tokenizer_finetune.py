"""`magtask tokenizer finetune`: starts from a tokenizer, trains on the train split of the user's data,
measures val PSNR before and after, keeps the best weights, writes them with a card; Ctrl-C stops
cleanly with the best weights so far; bad input is refused in one line before any work."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from magtask.tokenizer.io import load_tokenizer, tokenizer_hash

from conftest import run_cli, sigint_default


def test_finetune_writes_the_best_weights_with_their_card(tiny_dataset, tiny_tokenizer, tmp_path):
    out = tmp_path / "ft.safetensors"
    proc = run_cli("tokenizer", "finetune", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer),
                   "--out", str(out), "--steps", "4", "--eval-every", "2", "--batch-size", "2", "--json", check=True)
    res = json.loads(proc.stdout)
    model = load_tokenizer(out)
    assert res["hash"] == tokenizer_hash(model) != tokenizer_hash(load_tokenizer(tiny_tokenizer))
    card = model.card
    assert card["finetuned_from"]["hash"] == tokenizer_hash(load_tokenizer(tiny_tokenizer))
    assert card["command"].startswith("magtask tokenizer finetune --data")
    assert card["data"][0]["n_train"] > 0 and card["steps_done"] == 4
    # the kept weights are the best val PSNR seen (the starting weights count), so never worse than before
    assert res["after"]["psnr"] >= res["before"]["psnr"] - 0.05
    assert card["val_after"]["psnr"] == res["after"]["psnr"] and card["kept"]["step"] in (0, 2, 4)
    for k in ("foreground_psnr", "background_psnr", "centre_error_px"):
        assert k in res["before"] and k in res["after"]
    text = run_cli("tokenizer", "finetune", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer),
                   "--out", str(out), "--steps", "1")
    assert text.returncode == 1 and "exists; pass --overwrite" in text.stderr


def test_finetune_stops_cleanly_on_ctrl_c(tiny_dataset, tiny_tokenizer, tmp_path):
    out = tmp_path / "ft.safetensors"
    proc = subprocess.Popen([sys.executable, "-m", "magtask", "tokenizer", "finetune", "--data", str(tiny_dataset),
                             "--tokenizer", str(tiny_tokenizer), "--out", str(out), "--steps", "100000",
                             "--eval-every", "1", "--batch-size", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default)
    deadline = time.time() + 240
    for line in proc.stderr:  # one line per evaluation when stderr is not a terminal
        if line.startswith("step 1/") or time.time() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    assert "stopped by Ctrl-C at step" in err
    card = load_tokenizer(out).card
    assert 1 <= card["interrupted_at"] < 100000 and card["kept"]["step"] <= card["interrupted_at"]


def test_finetune_refuses_bad_input_before_any_work(tiny_dataset, tmp_path):
    from pathlib import Path

    fixture = Path(__file__).parent / "fixtures" / "magvit2" / "lfq_small.pt"
    cases = [
        (["--tokenizer", str(fixture)], 2, "magvit2-pytorch checkpoint"),
        (["--steps", "0"], 2, "--steps must be an integer >= 1"),
        (["--out", str(tmp_path / "x.pt")], 2, "must name a .safetensors"),
    ]
    for extra, code, needle in cases:
        args = ["tokenizer", "finetune", "--data", str(tiny_dataset), "--out", str(tmp_path / "o.safetensors"), *extra]
        proc = run_cli(*args)
        assert proc.returncode == code and needle in proc.stderr, (extra, proc.stderr)
        assert not (tmp_path / "o.safetensors").exists()


def test_finetune_within_a_time_budget_stops_there_with_the_best_weights(tiny_dataset, tiny_tokenizer, tmp_path):
    out = tmp_path / "ft.safetensors"
    proc = run_cli("tokenizer", "finetune", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer),
                   "--out", str(out), "--steps", "100000", "--max-seconds", "4", "--eval-every", "3",
                   "--batch-size", "2", "--json", check=True)
    res = json.loads(proc.stdout)
    card = load_tokenizer(out).card
    assert 1 <= card["steps_done"] < 100000 and card["time_limit"]["stopped_at_step"] == card["steps_done"]
    assert card["time_limit"]["seconds"] == 4 and res["stopped_at_time_limit"] == card["steps_done"]
    assert res["after"]["psnr"] >= res["before"]["psnr"] - 0.05
    # the learning-rate decay runs on whichever ends first, the steps or the time
    from magtask.tokenizer.train import lr_at
    assert lr_at(60, 110, 1.0, 10, time_frac=0.5) == lr_at(60, 110, 1.0, 10) == lr_at(10, 110, 1.0, 10, time_frac=0.5)
    assert lr_at(10, 110, 1.0, 10, time_frac=1.0) == pytest.approx(0.02) and lr_at(10, 110, 1.0, 10) == 1.0
    bad = run_cli("tokenizer", "finetune", "--data", str(tiny_dataset), "--out", str(tmp_path / "b.safetensors"),
                  "--max-seconds", "0")
    assert bad.returncode == 2 and "--max-seconds" in bad.stderr and not (tmp_path / "b.safetensors").exists()
