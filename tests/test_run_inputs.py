"""A head's inputs are read from the code cache with plain reads: the rows, in order, and no mapped
pages left resident (a memory map would count the whole cache in RSS on top of the copy)."""

import sys
from types import SimpleNamespace

import numpy as np
import pytest

from magtask import codes as cache
from magtask.runs import RunContext
from magtask.tensorfile import write_tensors


def _ctx(codes, consumes):
    return RunContext(task=None, head=SimpleNamespace(consumes=consumes), dataset=None, tokenizer=None,
                      tokenizer_hash="", codes=codes, run_dir=None)


def _codes(tmp_path, n=64, row=(4, 8, 16, 16)):
    rng = np.random.default_rng(0)
    lat = rng.standard_normal((n, *row)).astype(np.float32)
    idx = rng.integers(0, 1000, (n, *row[1:])).astype(np.int32)
    path = tmp_path / "codes.safetensors"
    write_tensors(path, {"labels": np.zeros(n, np.int64), "split": np.zeros(n, np.uint8), "latents": lat,
                         "indices": idx}, {"format": "magtask-codes",
                                                   "latent_shape": ",".join(map(str, row))})
    return cache.open_codes(path), lat, idx


def test_inputs_are_the_rows_in_order(tmp_path):
    codes, lat, idx = _codes(tmp_path)
    order = np.array([5, 0, 63, 5, 17])
    x = _ctx(codes, "latents").inputs(order)
    assert x.dtype.is_floating_point and np.array_equal(x.numpy(), lat[order])
    t = _ctx(codes, "indices").inputs(order)
    assert str(t.dtype) == "torch.int64" and np.array_equal(t.numpy(), idx[order])
    assert len(_ctx(codes, "latents").inputs(np.array([], dtype=np.int64))) == 0


def _rss_file_kb() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    pytest.skip("no RssFile in /proc/self/status")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_inputs_leave_no_mapped_pages_resident(tmp_path):
    codes, lat, _ = _codes(tmp_path, n=1024)  # 32 MB of latents
    before = _rss_file_kb()
    x = _ctx(codes, "latents").inputs(np.arange(1024))
    assert np.array_equal(x[-1].numpy(), lat[-1])
    assert _rss_file_kb() - before < 8 * 1024  # a memory map would add ~32 MB here
