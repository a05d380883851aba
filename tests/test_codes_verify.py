"""Code caches verify themselves: a corrupt, truncated or stale file is reported in one line and
rebuilt, never used; `codes clear` and a running extraction do not break each other."""

import os

import numpy as np
import pytest

from magtask import codes as cache
from magtask.data.dataset import load_dataset
from magtask.errors import MagtaskError
from magtask.tensorfile import open_tensors
from magtask.tokenizer.io import load_tokenizer, tokenizer_hash

from conftest import run_cli


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """A cache dir of this test's own (the CLI subprocesses inherit it)."""
    d = tmp_path / "cache"
    monkeypatch.setenv("MAGTASK_CACHE_DIR", str(d))
    return d


def _extract(tiny_dataset, tiny_tokenizer):
    return run_cli("codes", "extract", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer), check=True)


def _cache_file(tiny_dataset, tiny_tokenizer):
    return cache.cache_path(tokenizer_hash(tiny_tokenizer), load_dataset(tiny_dataset).hash)


def _corrupt(path, how):
    tensors, _ = open_tensors(path)
    lat, labels = tensors["latents"], tensors["labels"]
    if how == "truncated":
        os.truncate(path, path.stat().st_size - 1000)
        return
    offset, nbytes = (labels.offset, labels.nbytes) if how == "labels" else (lat.offset, lat.nbytes)
    rng = np.random.default_rng(0)
    data = np.zeros(nbytes, np.uint8) if how == "zeroed" else rng.integers(0, 256, nbytes, dtype=np.uint8)
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data.tobytes())


@pytest.mark.parametrize("how", ["random", "zeroed", "labels", "truncated"])
def test_corrupt_cache_is_reported_and_rebuilt_by_extract(how, own_cache, tiny_dataset, tiny_tokenizer):
    _extract(tiny_dataset, tiny_tokenizer)
    path = _cache_file(tiny_dataset, tiny_tokenizer)
    good = {k: np.array(v) for k, v in open_tensors(path)[0].items()}
    _corrupt(path, how)
    proc = _extract(tiny_dataset, tiny_tokenizer)
    assert "already cached" not in proc.stderr and "rebuilding the code cache" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    c = cache.open_codes(path, load_dataset(tiny_dataset))
    assert np.array_equal(c.latents, good["latents"]) and np.array_equal(c.labels, good["labels"])
    assert "already cached (verified)" in _extract(tiny_dataset, tiny_tokenizer).stderr


def test_corrupt_cache_is_never_used_by_a_run(own_cache, tiny_dataset, tiny_tokenizer, tmp_path):
    _extract(tiny_dataset, tiny_tokenizer)
    path = _cache_file(tiny_dataset, tiny_tokenizer)
    _corrupt(path, "labels")
    proc = run_cli("run", "classify", "mlp", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer),
                   "--epochs", "1", "--run-dir", str(tmp_path / "r"), "--json")
    assert proc.returncode == 0 and "corrupt code cache (checksum mismatch)" in proc.stderr, proc.stderr
    cache.open_codes(path, load_dataset(tiny_dataset))  # rebuilt: verifies


def test_open_refuses_a_bad_cache_in_one_line(own_cache, tiny_dataset, tiny_tokenizer):
    _extract(tiny_dataset, tiny_tokenizer)
    path = _cache_file(tiny_dataset, tiny_tokenizer)
    _corrupt(path, "zeroed")
    with pytest.raises(MagtaskError, match="checksum mismatch"):
        cache.open_codes(path)


def _slow_extract_with(monkeypatch, during):
    """Extract with `during()` called while the temp file is being written (after the 2nd batch)."""
    calls = {"n": 0}
    real = cache.encode_batch

    def encode(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            during()
        return real(*a, **k)

    monkeypatch.setattr(cache, "encode_batch", encode)


def test_clear_during_extract_leaves_the_extract_alone(own_cache, tiny_dataset, tiny_tokenizer, monkeypatch):
    ds, tok = load_dataset(tiny_dataset), load_tokenizer(tiny_tokenizer)
    digest = tokenizer_hash(tok)
    seen = {}

    def clear_in_another_process():
        seen["tmp"] = list(cache.codes_dir().glob(".*.tmp"))
        seen["clear"] = run_cli("codes", "clear", check=True)

    _slow_extract_with(monkeypatch, clear_in_another_process)
    path = cache.extract(ds, tok, digest, batch_size=8, quiet=True)
    assert seen["tmp"] and "removed 0 file(s)" in seen["clear"].stderr
    cache.open_codes(path, ds)


def test_temp_file_removed_under_the_writer_is_a_clear_error(own_cache, tiny_dataset, tiny_tokenizer, monkeypatch):
    ds, tok = load_dataset(tiny_dataset), load_tokenizer(tiny_tokenizer)
    _slow_extract_with(monkeypatch, lambda: [f.unlink() for f in cache.codes_dir().glob(".*.tmp")])
    with pytest.raises(MagtaskError, match="removed while it was written"):
        cache.extract(ds, tok, tokenizer_hash(tok), batch_size=8, quiet=True)


def test_stale_temp_files_of_killed_extracts_are_cleaned(own_cache, tiny_dataset, tiny_tokenizer):
    d = cache.codes_dir()
    d.mkdir(parents=True)
    stale = d / ".tok-0_data-0.safetensors.999999999.tmp"  # a PID above the kernel's maximum: dead
    stale.write_bytes(b"half a cache")
    _extract(tiny_dataset, tiny_tokenizer)
    assert not stale.exists()
    stale.write_bytes(b"half a cache")
    assert "removed 2 file(s)" in run_cli("codes", "clear", check=True).stderr
    assert not stale.exists()
