"""What knowing datasets by content and self-verifying caches cost: hashing speed, and opening a
dataset / a code cache the first time (hashed) and again (remembered), against plain opening.

    python benchmarks/bench_verify.py [--per-class 500] [--repeat 20]
    python benchmarks/bench_verify.py --before OLD_SRC     # also: the same opens with an older magtask

OLD_SRC is a dir holding an older `magtask` package, e.g. `git archive 18c28e0 magtask | tar -x -C OLD_SRC`.

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
import subprocess
import sys
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


# The same opens in a fresh process, with whichever magtask PYTHONPATH finds first.
COMPARE = """
import statistics, sys, time
from pathlib import Path
import magtask, magtask.codes as codes
from magtask.data.dataset import load_dataset
from magtask.tensorfile import open_lazy
data, cpath, repeat = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
ds = load_dataset(data)
oc = (lambda: codes.open_codes(cpath, ds)) if hasattr(codes, "open_cached") else (lambda: codes.open_codes(cpath))
oc()
def med(fn, r):
    t = []
    for _ in range(r):
        t0 = time.perf_counter(); fn(); t.append(time.perf_counter() - t0)
    return statistics.median(t) * 1e3
read = lambda: (oc(), open_lazy(cpath, "latents")[:], open_lazy(cpath, "indices")[:])
print(f"  {Path(magtask.__file__).parent.parent}: load_dataset {med(lambda: load_dataset(data), repeat):.2f} ms, "
      f"open_codes {med(oc, repeat):.2f} ms, open + read all {med(read, max(3, repeat // 3)):.1f} ms")
"""


def compare(before: str, data: Path, cpath: Path, repeat: int) -> None:
    """Alternate old and new (two rounds each), each in a fresh process, on the same files."""
    here = str(Path(__file__).resolve().parents[1])
    print("before / after, alternating:")
    for _ in range(2):
        for src in (before, here):
            env = {**os.environ, "PYTHONPATH": os.path.abspath(src)}
            subprocess.run([sys.executable, "-c", COMPARE, str(data), str(cpath), str(repeat)], env=env, check=True,
                           cwd=data.parent)  # not the repo root: `-c` puts the cwd first on sys.path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-class", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--before", help="a dir holding an older magtask package to compare the opens with")
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
        if args.before:
            compare(args.before, data, path, args.repeat)


if __name__ == "__main__":
    main()
