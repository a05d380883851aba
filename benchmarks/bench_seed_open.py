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

HERE = Path(__file__).resolve().parent
# The files are written by a child process: Linux carries a process's peak RSS over into the children it
# forks, so a parent holding the videos (or torch) would set a floor under every measurement.
MAKE = ("import sys, numpy as np, torch; n = int(sys.argv[1]); rng = np.random.default_rng(0); "
        "v = np.empty((n, 16, 3, 64, 64), np.float32)\n"
        "for i in range(0, n, 50): v[i:i + 50] = rng.uniform(0, 1, size=v[i:i + 50].shape)\n"
        "y = np.arange(n) % 4; np.savez(sys.argv[2], videos=v, labels=y); "
        "torch.save({'videos': torch.from_numpy(v), 'labels': torch.from_numpy(y)}, sys.argv[3])")
# Run with cwd in the temp dir: `python -c` puts the cwd first on sys.path, which would shadow `src`.
SNIPPET = ("import sys, time; from magtask.data.dataset import load_dataset; t = time.perf_counter(); "
           "ds = load_dataset(sys.argv[1]); print(ds.hash[:12], round(time.perf_counter() - t, 2))")


def measure(src: Path, path: Path) -> tuple[str, float, float]:
    proc = subprocess.Popen([sys.executable, "-c", SNIPPET, str(path)], stdout=subprocess.PIPE, text=True,
                            cwd=path.parent,
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
        files = [Path(tmp) / "seed.npz", Path(tmp) / "seed.pt"]
        subprocess.run([sys.executable, "-c", MAKE, str(args.videos), *map(str, files)], check=True)
        trees = ([("before", args.before)] if args.before else []) + [("after", HERE.parent)]
        print(f"{args.videos} videos | " + " | ".join(f"{n} peak RSS MB | {n} s" for n, _ in trees) + " | hash")
        for f in files:
            rows = [measure(src, f) for _, src in trees]
            print(f"{f.suffix} | " + " | ".join(f"{r[1]:.0f} | {r[2]:.2f}" for r in rows) + f" | {rows[-1][0]}")


if __name__ == "__main__":
    main()
