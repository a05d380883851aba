"""What knowing datasets by content and self-verifying caches cost: hashing speed, and opening a
dataset / a code cache the first time (hashed) and again (remembered), against plain opening.

    python benchmarks/bench_verify.py [--per-class 500] [--repeat 20]

Works in a temp MAGTASK_CACHE_DIR: generates a dataset (`--per-class` x 4 videos, 16x3x64x64 uint8)
and writes a code cache of the shipped tokenizer's shape for it (latents 4x8x16x16 float32, indices
int32; random values: only sizes matter here). The file is in the page cache for every number
(written just before). "plain open" is the open without any verification (open_tensors + the
format check, as open_codes was before); times are the median of --repeat runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-class", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        os.environ["MAGTASK_CACHE_DIR"] = str(Path(d) / "cache")
        from magtask import checksums, codes
        from magtask.data.dataset import load_dataset
        from magtask.data.generate import generate_dataset
        from magtask.tensorfile import open_lazy, open_tensors, read_header, write_tensors

        data = Path(d) / "data.safetensors"
        generate_dataset(data, per_class=args.per_class)
        n = 4 * args.per_class
        header, start = read_header(data)
        end = start + max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
        mb = (end - start) / 1e6
        t0 = time.perf_counter()
        checksums.stream_sha256(data, start, end)
        hash_s = time.perf_counter() - t0
        print(f"dataset: {n} videos, {mb:.0f} MB of tensors; streamed SHA-256 {hash_s:.2f} s = {mb / hash_s:.0f} MB/s "
              f"(30 000 videos, 5 900 MB: ~{5900 / (mb / hash_s):.1f} s once per file version)")
        checksums.forget(data)
        t0 = time.perf_counter()
        ds = load_dataset(data)
        first = time.perf_counter() - t0
        again = median_ms(lambda: load_dataset(data), args.repeat)
        plain = median_ms(lambda: open_tensors(data), args.repeat)
        print(f"load_dataset: first open {first * 1e3:.0f} ms (hashes), again {again:.2f} ms "
              f"(plain open_tensors {plain:.2f} ms)")

        rng = np.random.default_rng(0)
        lat = rng.standard_normal((n, 4, 8, 16, 16)).astype(np.float32)
        idx = rng.integers(0, 1000, (n, 8, 16, 16)).astype(np.int32)
        path = codes.cache_path("0" * 16, ds.hash)
        write_tensors(path, {"labels": ds.labels, "split": ds.split, "latents": lat, "indices": idx},
                      {"format": "magtask-codes", "latent_shape": "4,8,16,16"})
        cmb = path.stat().st_size / 1e6

        def plain_open():
            tensors, meta = open_tensors(path)
            assert meta.get("format") == "magtask-codes"
            return np.asarray(tensors["labels"]), np.asarray(tensors["split"])

        checksums.forget(path)
        t0 = time.perf_counter()
        codes.open_codes(path, ds)
        first = time.perf_counter() - t0
        verified = median_ms(lambda: codes.open_codes(path, ds), args.repeat)
        before = median_ms(plain_open, args.repeat)
        read = median_ms(lambda: (open_lazy(path, "latents")[:], open_lazy(path, "indices")[:]), max(3, args.repeat // 4))
        print(f"code cache {cmb:.1f} MB: open + verify {verified:.2f} ms (plain open {before:.2f} ms); "
              f"first open after a change {first * 1e3:.0f} ms (hashes); reading every latent and index {read:.0f} ms")


if __name__ == "__main__":
    main()
