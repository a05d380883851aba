"""Benchmark `magtask data generate`: wall time and peak RSS for N videos per class.

    python benchmarks/bench_data.py --per-class 7500     # the 30 000-video target: <= 60 s, <= 1.5 GB
"""

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-class", type=int, default=7500)
    ap.add_argument("--style", default="seed")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "data.safetensors"
        cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "magtask", "data", "generate", "--out", str(out),
               "--per-class", str(args.per_class), "--style", args.style]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", proc.stderr).group(1)
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
        print(f"videos {4 * args.per_class}  style {args.style}  wall {wall}  peak RSS {rss / 1024:.0f} MB  "
              f"file {out.stat().st_size / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
