import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from magtask.data.dataset import load_dataset
from magtask.data.generate import generate_dataset
from magtask.errors import MagtaskError
from magtask.tensorfile import write_tensors
from magtask.tokenizer.io import load_tokenizer, load_training_state, save_tokenizer, tokenizer_hash
from magtask.tokenizer.model import VideoTokenizer
from magtask.tokenizer.train import train_tokenizer

TINY = {"width": 8, "enc_blocks": 1, "mid_blocks": 1, "dec_blocks": 1}
OPTS = {"eval_every": 2, "eval_videos": 4, "warmup": 2, "clip_frames": 4}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "tiny.safetensors"
    generate_dataset(path, per_class=3, seed=5, frames=8, size=32)
    return path


@pytest.fixture(scope="module")
def tiny_tok(tmp_path_factory):
    torch.manual_seed(0)
    m = VideoTokenizer({**TINY, "frames": 8, "size": 32}).eval()
    path = tmp_path_factory.mktemp("tok") / "tok.safetensors"
    save_tokenizer(m, path, {"note": "tiny"})
    return m, path


def test_round_trip(tiny_tok):
    m, path = tiny_tok
    m2 = load_tokenizer(path)
    x = torch.rand(2, 8, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(m.decode(m.quantize(m.encode(x))[0]), m2.decode(m2.quantize(m2.encode(x))[0]))
    assert m2.card == {"note": "tiny"} and m2.config == m.config
    assert tokenizer_hash(m) == tokenizer_hash(path) == tokenizer_hash(m2)
    assert tokenizer_hash(VideoTokenizer({**TINY, "frames": 8, "size": 32})) != tokenizer_hash(m)


def test_truncated(tiny_tok, tmp_path):
    _, path = tiny_tok
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(MagtaskError, match="cut.safetensors.*truncated"):
        load_tokenizer(bad)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a file at all")
    with pytest.raises(MagtaskError, match="junk.safetensors"):
        load_tokenizer(junk)
    with pytest.raises(MagtaskError, match="no such file"):
        load_tokenizer(tmp_path / "missing.safetensors")


def test_not_a_tokenizer(tiny_data, tmp_path):
    with pytest.raises(MagtaskError, match=r"tiny.safetensors: not a magtask-tokenizer"):
        load_tokenizer(tiny_data)
    plain = tmp_path / "plain.safetensors"
    write_tensors(plain, {"w": np.zeros(3, np.float32)})
    with pytest.raises(MagtaskError, match="plain.safetensors: not a magtask-tokenizer"):
        load_tokenizer(plain)


def test_config_weights_mismatch(tiny_tok, tmp_path):
    m, _ = tiny_tok
    sd = {k: v.numpy() for k, v in m.state_dict().items()}
    meta = {"format": "magtask-tokenizer", "config": json.dumps({**m.config, "width": 16})}
    wrong = tmp_path / "wrong.safetensors"
    write_tensors(wrong, sd, meta)
    with pytest.raises(MagtaskError, match="wrong.safetensors: config does not match the weights: shape mismatch"):
        load_tokenizer(wrong)
    sd2 = dict(sd)
    sd2.pop("enc_in.weight")
    sd2["extra.weight"] = np.zeros(2, np.float32)
    write_tensors(wrong, sd2, {"format": "magtask-tokenizer", "config": json.dumps(m.config)})
    with pytest.raises(MagtaskError, match="missing enc_in.weight; unexpected extra.weight"):
        load_tokenizer(wrong)
    write_tensors(wrong, sd, {"format": "magtask-tokenizer", "config": "{not json"})
    with pytest.raises(MagtaskError, match="config missing or unreadable"):
        load_tokenizer(wrong)


def test_resume_equals_uninterrupted(tiny_data, tmp_path):
    kw = dict(steps=6, seed=3, config=TINY, batch_size=2, options=OPTS, progress=False)
    full, card = train_tokenizer(tiny_data, tmp_path / "full.safetensors", **kw)
    ck = tmp_path / "state.safetensors"
    _, part = train_tokenizer(tiny_data, None, checkpoint=ck, stop_after=3, **kw)
    assert part["steps_done"] == 3 and load_training_state(ck)["step"] == 3
    resumed, card2 = train_tokenizer(tiny_data, tmp_path / "resumed.safetensors", resume=ck, progress=False)
    assert card2["steps_done"] == 6 and [h["step"] for h in card2["history"]] == [2, 4, 6]
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), k
    loaded = load_tokenizer(tmp_path / "resumed.safetensors")
    assert loaded.card["steps_done"] == 6
    # the same seed gives the same weights
    again, _ = train_tokenizer(tiny_data, None, **kw)
    assert tokenizer_hash(again) == tokenizer_hash(full)
    with pytest.raises(MagtaskError, match="not a magtask-tokenizer-train-state"):
        train_tokenizer(tiny_data, None, resume=tmp_path / "full.safetensors", progress=False)


def test_cli_eval_and_info_json(tiny_data, tiny_tok):
    pytest.importorskip("magtask.cli")
    _, tok = tiny_tok
    r = subprocess.run([sys.executable, "-m", "magtask", "tokenizer", "eval", "--data", str(tiny_data),
                        "--tokenizer", str(tok), "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    for k in ("psnr", "blank_psnr", "centre_error_px", "one_dot_fraction", "codebook_fraction_used",
              "perplexity", "compression_ratio", "n_videos", "foreground_psnr", "background_psnr",
              "foreground_blank_psnr", "foreground_fraction"):
        assert k in res
    # the whole-video error is the two regions' errors weighted by their sizes: its PSNR lies between
    lo, hi = sorted((res["foreground_psnr"], res["background_psnr"]))
    assert lo - 1e-6 <= res["psnr"] <= hi + 1e-6 and 0 < res["foreground_fraction"] < 0.5
    assert res["n_videos"] == len(load_dataset(tiny_data).indices("test"))
    r = subprocess.run([sys.executable, "-m", "magtask", "tokenizer", "info", "--tokenizer", str(tok), "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["hash"] == tokenizer_hash(tok) and info["latent_shape"] == [4, 4, 8, 8]
    r = subprocess.run([sys.executable, "-m", "magtask", "tokenizer", "eval", "--data", str(tiny_data),
                        "--tokenizer", str(tiny_data)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "not a magtask-tokenizer" in r.stderr and "Traceback" not in r.stderr
