"""The shipped tokenizer: loads with nothing trained here, matches its card, and keeps the dot."""

import json
import math

import numpy as np
import torch

from magtask.data.dataset import load_dataset
from magtask.data.generate import generate_dataset
from magtask.trajectory_eval import dot_centroids
from magtask.tokenizer.io import default_tokenizer_path, load_tokenizer, tokenizer_hash


def test_shipped_tokenizer_loads_and_matches_its_card():
    path = default_tokenizer_path()
    card = json.loads(path.with_suffix(".json").read_text())
    tok = load_tokenizer(None)
    assert tokenizer_hash(tok) == card["tokenizer_hash"]
    assert path.stat().st_size < 5_000_000  # a few MB at most
    assert card["eval_default"]["psnr"] >= 40 and card["eval_default"]["psnr"] > card["eval_default"]["blank_psnr"] + 20


def test_shipped_tokenizer_reconstructs_unseen_videos_with_the_dot_in_place(tmp_path):
    generate_dataset(tmp_path / "d.safetensors", per_class=2, seed=12345)  # videos it never trained on
    x = torch.from_numpy(np.asarray(load_dataset(tmp_path / "d.safetensors").videos)).float() / 255
    tok = load_tokenizer(None)
    with torch.no_grad():
        r = tok.decode(tok.quantize(tok.encode(x))[0]).clamp(0, 1)
    psnr = 10 * math.log10(1 / float(((r - x) ** 2).mean()))
    assert psnr >= 38, psnr  # 8 videos; the 300-video test split gives 43 dB (card)
    err = np.linalg.norm(dot_centroids(r) - dot_centroids(x), axis=-1)
    assert np.nanmax(err) < 1.0 and not np.isnan(err).any()


def test_shipped_card_names_its_held_out_looks_and_training_never_drew_them():
    from magtask.data.styles import HELD_OUT

    card = json.loads(default_tokenizer_path().with_suffix(".json").read_text())
    assert card["held_out_looks"] == HELD_OUT  # name -> what it is
    trained_on = {d["style"] for d in card["data"]}
    assert trained_on.isdisjoint(HELD_OUT) and "looks" in trained_on
    for look in HELD_OUT:  # each held-out look measured, beside its blank video, on its own test split
        res = card[f"eval_{look}"]
        assert res["split"] == "test" and res["psnr"] > res["blank_psnr"] + 5 and res["centre_error_px"] < 0.3


def test_shipped_tokenizer_keeps_colour_on_looks_it_was_not_fitted_to(tmp_path):
    generate_dataset(tmp_path / "l.safetensors", per_class=2, seed=12345, style="looks")  # unseen videos, many looks
    x = torch.from_numpy(np.asarray(load_dataset(tmp_path / "l.safetensors").videos)).float() / 255
    tok = load_tokenizer(None)
    with torch.no_grad():
        r = tok.decode(tok.quantize(tok.encode(x))[0]).clamp(0, 1)
    psnr = 10 * math.log10(1 / float(((r - x) ** 2).mean()))
    colour_error = float((r.mean((1, 3, 4)) - x.mean((1, 3, 4))).abs().max())  # per video and channel
    assert psnr >= 28 and colour_error < 0.05, (psnr, colour_error)  # v2: 17 dB on these looks
