"""A dataset is known by its content (never by the hash its metadata claims) and validated on open."""

import numpy as np
import pytest
import torch

from magtask import checksums
from magtask import codes as cache
from magtask.data.dataset import load_dataset
from magtask.errors import MagtaskError
from magtask.tensorfile import open_tensors, write_tensors
from magtask.tokenizer.io import tokenizer_hash

from conftest import run_cli


def _arrays(path):
    tensors, meta = open_tensors(path)
    return {k: np.array(v) for k, v in tensors.items()}, meta


def _one_line_error(proc, code=1):
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_relabelled_copy_with_old_metadata_is_a_new_dataset(tiny_dataset, tiny_tokenizer, tmp_path):
    arrays, meta = _arrays(tiny_dataset)
    assert "content_hash" in meta  # the copy keeps the original's claim
    arrays["labels"] = (arrays["labels"] + 1) % 4
    copy = tmp_path / "relabelled.safetensors"
    write_tensors(copy, arrays, meta)
    assert open_tensors(copy)[1]["content_hash"] == meta["content_hash"]
    assert load_dataset(copy).hash != load_dataset(tiny_dataset).hash
    args = ("codes", "extract", "--tokenizer", str(tiny_tokenizer))
    run_cli(*args, "--data", str(tiny_dataset), check=True)
    proc = run_cli(*args, "--data", str(copy), check=True)
    assert "already cached" not in proc.stderr
    c = cache.open_codes(cache.cache_path(tokenizer_hash(tiny_tokenizer), load_dataset(copy).hash))
    assert np.array_equal(c.labels, arrays["labels"])


def test_a_file_edited_in_place_is_hashed_again(tiny_dataset, tmp_path):
    path = tmp_path / "edited.safetensors"
    path.write_bytes(tiny_dataset.read_bytes())
    before = load_dataset(path).hash
    arrays, meta = _arrays(path)
    off = open_tensors(path)[0]["labels"].offset
    with open(path, "r+b") as f:  # swap the first two labels, in place: same size, same path
        f.seek(off)
        f.write(np.array([arrays["labels"][1], arrays["labels"][0]], np.int64).tobytes())
    after = load_dataset(path)
    assert after.hash != before and after.labels[0] == arrays["labels"][1]


def test_reopening_an_unchanged_file_does_not_hash_it_again(tiny_dataset, tmp_path, monkeypatch):
    path = tmp_path / "same.safetensors"
    path.write_bytes(tiny_dataset.read_bytes())
    calls = []
    real = checksums.stream_sha256
    monkeypatch.setattr(checksums, "stream_sha256", lambda *a: calls.append(a) or real(*a))
    first = load_dataset(path).hash
    assert load_dataset(path).hash == first and len(calls) == 1


def _variant(tiny_dataset, tmp_path, name, **change):
    arrays, meta = _arrays(tiny_dataset)
    arrays.update(change)
    path = tmp_path / f"{name}.safetensors"
    write_tensors(path, arrays, meta)
    return path


def test_emptied_dataset_with_stale_metadata_is_refused(tiny_dataset, tiny_tokenizer, tmp_path):
    arrays, _ = _arrays(tiny_dataset)
    empty = _variant(tiny_dataset, tmp_path, "empty", **{k: v[:0] for k, v in arrays.items()})
    line = _one_line_error(run_cli("run", "classify", "mlp", "--data", str(empty), "--tokenizer", str(tiny_tokenizer),
                                   "--run-dir", str(tmp_path / "r")))
    assert "no videos" in line and not (tmp_path / "r").exists()


def test_labels_cut_short_are_refused(tiny_dataset, tiny_tokenizer, tmp_path):
    arrays, _ = _arrays(tiny_dataset)
    cut = _variant(tiny_dataset, tmp_path, "cut", labels=arrays["labels"][:5])
    line = _one_line_error(run_cli("codes", "extract", "--data", str(cut), "--tokenizer", str(tiny_tokenizer)))
    assert "labels must be 80 integers" in line


def test_float64_videos_in_our_format_are_refused(tiny_dataset, tiny_tokenizer, tmp_path):
    arrays, _ = _arrays(tiny_dataset)
    f64 = _variant(tiny_dataset, tmp_path, "f64", videos=arrays["videos"].astype(np.float64) / 255)
    assert "videos must be uint8, got float64" in _one_line_error(run_cli("data", "info", str(f64)))
    _one_line_error(run_cli("run", "classify", "mlp", "--data", str(f64), "--tokenizer", str(tiny_tokenizer),
                            "--run-dir", str(tmp_path / "r")))


def test_out_of_range_labels_and_split_are_refused(tiny_dataset, tmp_path):
    arrays, _ = _arrays(tiny_dataset)
    bad = _variant(tiny_dataset, tmp_path, "badlabel", labels=arrays["labels"] * -7138829062844985130)
    with pytest.raises(MagtaskError, match="labels must be in 0..3"):
        load_dataset(bad)
    bad = _variant(tiny_dataset, tmp_path, "badsplit", split=arrays["split"] + 3)
    with pytest.raises(MagtaskError, match="split values must be in 0..2"):
        load_dataset(bad)


def test_non_square_seed_videos_fail_before_encoding(tiny_tokenizer, tmp_path):
    path = tmp_path / "wide.pt"
    torch.save({"videos": torch.rand(8, 16, 3, 64, 32), "labels": torch.arange(8) % 4}, path)
    proc = run_cli("run", "classify", "mlp", "--data", str(path), "--tokenizer", str(tiny_tokenizer),
                   "--run-dir", str(tmp_path / "r"))
    assert "must be square" in _one_line_error(proc) and "encoding" not in proc.stderr
