"""One validation path: --set values like their flags, training options and tokenizer configs
checked before any work, output paths that match their format. Every refusal: one line, exit 2."""

import json

import numpy as np
import pytest

from magtask.errors import MagtaskError
from magtask.tensorfile import open_tensors, write_tensors
from magtask.tokenizer.io import load_tokenizer, save_tokenizer
from magtask.tokenizer.model import VideoTokenizer

from conftest import run_cli


def _usage_error(proc):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


@pytest.mark.parametrize("value, says", [("-3", "must be an int >= 1, got -3"), ("abc", "takes an int >= 1, got 'abc'"),
                                         ("2.5", "takes an int >= 1, got '2.5'")])
def test_set_is_validated_like_the_flag(value, says, tiny_dataset, tiny_tokenizer, tmp_path):
    base = ("run", "classify", "mlp", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer),
            "--run-dir", str(tmp_path / "r"))
    by_set = _usage_error(run_cli(*base, "--set", f"train-per-class={value}"))
    by_flag = _usage_error(run_cli(*base, "--train-per-class", value)) if value == "-3" else by_set
    assert says in by_set and by_set == by_flag and "--train-per-class" in by_set
    assert not (tmp_path / "r").exists()


def test_set_value_is_typed_into_the_config(tiny_dataset, tiny_tokenizer, tmp_path):
    run_cli("run", "classify", "mlp", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer), "--epochs", "1",
            "--run-dir", str(tmp_path / "r"), "--set", "train_per_class=3", check=True)
    assert json.loads((tmp_path / "r" / "config.json").read_text())["options"]["train_per_class"] == 3


@pytest.mark.parametrize("args, says", [
    (["--lr", "nan"], "--lr must be a finite number"),
    (["--lr", "0"], "--lr must be a finite number > 0"),
    (["--temporal-stride", "3"], "multiple of the temporal stride 3"),
    (["--temporal-stride", "64"], "temporal_stride must be an integer in 1..8"),
    (["--width", "3000"], "width must be an integer in 4..1024"),
    (["--levels", "16,1"], "levels must be 1-8 integers in 2..64"),
    (["--levels", "8,x"], "--levels must be comma-separated integers"),
    (["--batch-size", "0"], "--batch-size must be an integer >= 1"),
    (["--crop", "-1"], "--crop must be an integer >= 0"),
    (["--out", "tok.pt"], "--out must name a .safetensors file"),
])
def test_tokenizer_train_options_are_checked_before_work(args, says, tmp_path):
    out = ["--out", str(tmp_path / "tok.safetensors")] if "--out" not in args else []
    # no --data: the default dataset would be generated if the check came after loading data
    proc = run_cli("tokenizer", "train", "--steps", "1", *out, *args, env={"MAGTASK_CACHE_DIR": str(tmp_path / "c")})
    assert says in _usage_error(proc)
    assert not (tmp_path / "c").exists()


def test_tokenizer_file_with_an_absurd_config_is_refused_before_building(tmp_path):
    model = VideoTokenizer({"width": 8, "enc_blocks": 1, "mid_blocks": 1, "dec_blocks": 1})
    path = tmp_path / "tok.safetensors"
    save_tokenizer(model, path)
    tensors, meta = open_tensors(path)
    meta["config"] = json.dumps({**json.loads(meta["config"]), "width": 3000})
    write_tensors(path, {k: np.array(v) for k, v in tensors.items()}, meta)
    with pytest.raises(MagtaskError, match="width must be an integer in 4..1024"):
        load_tokenizer(path)


@pytest.mark.parametrize("name", ["gen.npz", "gen.pt", "gen"])
def test_data_generate_refuses_a_suffix_of_another_format(name, tmp_path):
    proc = run_cli("data", "generate", "--out", str(tmp_path / name), "--per-class", "1")
    assert ".safetensors" in _usage_error(proc) and not (tmp_path / name).exists()


def test_tokenizer_convert_refuses_a_suffix_of_another_format(tmp_path):
    proc = run_cli("tokenizer", "convert", str(tmp_path / "their.pt"), "--out", str(tmp_path / "mine.pt"))
    assert ".safetensors" in _usage_error(proc) and not (tmp_path / "mine.pt").exists()


def test_tokenizer_train_levels_set_the_code_grid(tiny_dataset, tmp_path):
    out = tmp_path / "tok.safetensors"
    run_cli("tokenizer", "train", "--data", str(tiny_dataset), "--out", str(out), "--steps", "1", "--width", "8",
            "--batch-size", "2", "--levels", "4,4,6", check=True)
    model = load_tokenizer(out)
    assert model.config["levels"] == [4, 4, 6] and model.codebook_size == 96 and list(model.grid.levels) == [4, 4, 6]
