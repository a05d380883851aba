"""Streamed safetensors files: standard format, atomic, and read on demand like a numpy array."""

import numpy as np
import pytest
from safetensors.numpy import load_file

from magtask.tensorfile import TensorWriter, open_lazy, open_tensors, write_tensors


def test_written_files_are_standard_safetensors(tmp_path):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    b = np.arange(5, dtype=np.int64)
    digest = write_tensors(tmp_path / "x.safetensors", {"a": a, "b": b}, {"k": "v"})
    loaded = load_file(str(tmp_path / "x.safetensors"))
    assert np.array_equal(loaded["a"], a) and np.array_equal(loaded["b"], b)
    tensors, meta = open_tensors(tmp_path / "x.safetensors")
    assert meta["k"] == "v" and meta["content_hash"] == digest


def test_streaming_writer_checks_sizes_and_cleans_up(tmp_path):
    path = tmp_path / "y.safetensors"
    with pytest.raises(ValueError, match="wrote"):
        with TensorWriter(path, {"a": ((4, 2), np.float32)}) as w:
            w.write("a", np.zeros((3, 2), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_file_array_indexes_like_numpy(tmp_path):
    data = np.random.default_rng(0).integers(0, 255, size=(50, 3, 4, 5), dtype=np.uint8)
    write_tensors(tmp_path / "v.safetensors", {"videos": data})
    lazy = open_lazy(tmp_path / "v.safetensors", "videos")
    assert lazy.shape == data.shape and len(lazy) == 50
    for key in [3, -1, slice(5, 9), slice(0, 50, 7), np.array([9, 2, 3, 4, 49]), [1, 1, 0],
                np.arange(50) % 3 == 0, (slice(0, 4), 0, slice(None), 2), (7, 1)]:
        assert np.array_equal(lazy[key], data[key]), key
    assert np.array_equal(np.asarray(lazy), data)
    assert np.array_equal(np.stack(list(lazy)), data)
    with pytest.raises(IndexError):
        lazy[50]
