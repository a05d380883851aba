"""`magtask run classify mlp --tokenizer their.pt --tokenizer-config seed-2026-01` runs end to end."""

import json
from pathlib import Path

from magtask.data.generate import generate_dataset

from conftest import run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "magvit2"


def test_seed_checkpoint_runs_classify_through_the_cli(tmp_path):
    data = tmp_path / "d.safetensors"
    generate_dataset(data, per_class=3, seed=1, frames=4)  # the seed model is slow on CPU: few, short clips
    ckpt = FIXTURES / "seed_handwritten.pt"
    proc = run_cli("run", "classify", "mlp", "--data", str(data), "--tokenizer", str(ckpt),
                   "--tokenizer-config", "seed-2026-01", "--epochs", "1", "--run-dir", str(tmp_path / "r"), "--json",
                   check=True)
    metrics = json.loads(proc.stdout)
    assert metrics["n_test"] == 4 and len(metrics["tokenizer"]) == 64
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["tokenizer_config"] == "seed-2026-01"
    # the same config on our own checkpoint is a usage error
    proc = run_cli("codes", "extract", "--data", str(data), "--tokenizer-config", "seed-2026-01")
    assert proc.returncode == 2 and "applies only to magvit2-pytorch" in proc.stderr


def test_tokenizer_eval_accepts_the_pt_directly(tmp_path):
    data = tmp_path / "d.safetensors"
    generate_dataset(data, per_class=3, seed=2, frames=4)
    proc = run_cli("tokenizer", "eval", "--data", str(data), "--tokenizer", str(FIXTURES / "seed_handwritten.pt"),
                   "--tokenizer-config", "seed-2026-01", "--json", check=True)
    res = json.loads(proc.stdout)
    assert res["n_videos"] == 4 and res["psnr"] > 0 and len(res["tokenizer"]) == 64
