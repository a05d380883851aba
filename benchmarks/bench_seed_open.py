"""Peak memory and time of opening a seed-format file (.npz / .pt, float32 videos in [0, 1]).

    python benchmarks/bench_seed_open.py --videos 1000 [--before OLD_SRC]

Writes both files into a temp dir, then opens each with `load_dataset` in a fresh process (peak RSS
from wait4) with this checkout's magtask and, with --before, with another source tree's
(`git archive REV magtask | tar -x -C OLD_SRC`). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
SNIPPET = ("import sys, time; from magtask.data.dataset import load_dataset; t = time.perf_counter(); "
           "ds = load_dataset(sys.argv[1]); print(ds.hash[:12], round(time.perf_counter() - t, 2))")


def measure(src: Path, path: Path) -> tuple[str, float, float]:
    proc = subprocess.Popen([sys.executable, "-c", SNIPPET, str(path)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(src)})
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{path}: load_dataset failed under {src}")
    digest, seconds = out.split()
    return digest, usage.ru_maxrss / 1024, float(seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=1000)
    ap.add_argument("--before", type=Path, default=None, help="another source tree holding magtask/")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        videos = np.empty((args.videos, 16, 3, 64, 64), np.float32)
        for i in range(0, args.videos, 50):
            videos[i:i + 50] = rng.uniform(0, 1, size=videos[i:i + 50].shape)
        labels = np.arange(args.videos) % 4
        files = [Path(tmp) / "seed.npz", Path(tmp) / "seed.pt"]
        np.savez(files[0], videos=videos, labels=labels)
        torch.save({"videos": torch.from_numpy(videos), "labels": torch.from_numpy(labels)}, files[1])
        del videos
        trees = ([("before", args.before)] if args.before else []) + [("after", HERE.parent)]
        print(f"{args.videos} videos | " + " | ".join(f"{n} peak RSS MB | {n} s" for n, _ in trees) + " | hash")
        for f in files:
            rows = [measure(src, f) for _, src in trees]
            print(f"{f.suffix} | " + " | ".join(f"{r[1]:.0f} | {r[2]:.2f}" for r in rows) + f" | {rows[-1][0]}")


if __name__ == "__main__":
    main()
