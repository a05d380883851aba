"""The code cache: what is cached equals a direct encode, keyed by tokenizer and data, atomic."""

import json

import numpy as np
import pytest
import torch

from magtask import codes as cache
from magtask.data.dataset import load_dataset
from magtask.tokenizer.io import load_tokenizer, save_tokenizer, tokenizer_hash

from conftest import run_cli


def test_extract_matches_direct_encoding_and_is_memory_mapped(tiny_dataset, tiny_tokenizer):
    ds = load_dataset(tiny_dataset)
    tok = load_tokenizer(tiny_tokenizer).eval()
    path = cache.extract(ds, tok, tokenizer_hash(tok), batch_size=7, quiet=True)
    c = cache.open_codes(path)
    assert isinstance(c.latents, np.memmap)
    with torch.no_grad():
        codes, idx = tok.quantize(tok.encode(torch.from_numpy(np.array(ds.videos[:5])).float() / 255))
    assert np.array_equal(c.latents[:5], codes.numpy())
    assert np.array_equal(c.indices[:5], idx.numpy())
    assert np.array_equal(c.labels, ds.labels) and np.array_equal(c.split, ds.split)
    assert c.latents.shape[1:] == tok.latent_shape(16, 64)


def test_changed_tokenizer_gets_its_own_cache(tiny_dataset, tiny_tokenizer, tmp_path):
    ds = load_dataset(tiny_dataset)
    tok = load_tokenizer(tiny_tokenizer)
    with torch.no_grad():
        next(tok.parameters()).add_(0.01)
    changed = tmp_path / "changed.safetensors"
    save_tokenizer(tok, changed)
    assert tokenizer_hash(changed) != tokenizer_hash(tiny_tokenizer)
    assert cache.cache_path(tokenizer_hash(changed), ds.hash) != cache.cache_path(tokenizer_hash(tiny_tokenizer), ds.hash)


def test_interrupted_extraction_leaves_no_file(tiny_dataset, tiny_tokenizer, monkeypatch):
    ds = load_dataset(tiny_dataset)
    tok = load_tokenizer(tiny_tokenizer)
    digest = "interrupted" + tokenizer_hash(tok)
    calls = {"n": 0}
    real = cache.encode_batch

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(cache, "encode_batch", flaky)
    with pytest.raises(KeyboardInterrupt):
        cache.extract(ds, tok, digest, batch_size=8, quiet=True)
    assert not cache.cache_path(digest, ds.hash).exists()
    assert not list(cache.codes_dir().glob(".*.tmp"))


def test_codes_cli_extract_info_clear(tiny_dataset, tiny_tokenizer):
    proc = run_cli("codes", "extract", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer), check=True)
    assert "cached" in proc.stderr
    again = run_cli("codes", "extract", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer), check=True)
    assert "already cached" in again.stderr
    info = json.loads(run_cli("codes", "info", "--json", check=True).stdout)
    mine = [f for f in info["files"] if f["data_hash"] == load_dataset(tiny_dataset).hash]
    assert mine and mine[0]["n"] == 80
    run_cli("codes", "clear", check=True)
    assert json.loads(run_cli("codes", "info", "--json", check=True).stdout)["files"] == []
