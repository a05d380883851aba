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
