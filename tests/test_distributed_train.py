"""torchrun with 2 CPU processes (gloo): DDP tokenizer training follows the single-process loss curve."""

import os
import subprocess
import sys

import numpy as np
import torch

from magtask.tokenizer.io import load_tokenizer

from conftest import run_cli_fresh as run_cli

ARGS = ["tokenizer", "train", "--steps", "6", "--batch-size", "4", "--lr", "0.1", "--width", "8",
        "--clip-frames", "4", "--crop", "32", "--eval-every", "1", "--seed", "1"]


def test_two_process_training_matches_single_process(tiny_dataset, tmp_path):
    single, multi = tmp_path / "single.safetensors", tmp_path / "multi" / "multi.safetensors"
    multi.parent.mkdir()
    run_cli(*ARGS, "--data", str(tiny_dataset), "--out", str(single), check=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "magtask", *ARGS, "--data", str(tiny_dataset), "--out", str(multi)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("wrote ") == 1  # only rank 0 reports and writes
    assert sorted(p.name for p in multi.parent.iterdir()) == ["multi.safetensors", "multi.state.safetensors"]
    a, b = load_tokenizer(single), load_tokenizer(multi)  # the written tokenizer loads
    ha, hb = a.card["history"], b.card["history"]
    assert [h["step"] for h in ha] == [h["step"] for h in hb] == list(range(1, 7))
    la, lb = np.array([h["loss"] for h in ha]), np.array([h["loss"] for h in hb])
    assert la[-1] < la[0]  # it does learn, so the curves compared are not flat
    np.testing.assert_allclose(lb, la, rtol=1e-3)  # same global batch -> the same curve, up to float noise
    np.testing.assert_allclose([h["val_psnr"] for h in hb], [h["val_psnr"] for h in ha], atol=0.01)
    assert b.card["world_size"] == 2 and a.card["world_size"] == 1
    for (k, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(pa, pb, atol=1e-3), k
