"""Benchmark `magtask run generate` for every built-in generate head, side by side, and render GIFs.

    python benchmarks/bench_generate.py                      # default dataset, shipped tokenizer
    python benchmarks/bench_generate.py --heads maskgit --epochs 4 --out benchmarks/out/generate

Each head runs as `magtask run generate HEAD --json --run-dir OUT/HEAD --overwrite [--epochs N]`
(its defaults otherwise: what `magtask run generate HEAD` does); every run dir is then rendered with
`magtask render OUT/HEAD --out gif`. The load average is read before and after each run. Prints a
markdown table (the one in benchmarks/generate.md) and writes OUT/results.json.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

HEADS = ("gaussian", "class-conditional", "maskgit", "track-prior")  # code-only first, then the track head
COLUMNS = [("head", "{}"), ("side_inputs", "{}"), ("n_samples", "{}"), ("valid_fraction", "{:.3f}"),
           ("real_valid_fraction", "{:.3f}"), ("recon_valid_fraction", "{:.3f}"), ("class_match", "{:.3f}"),
           ("judge_test_accuracy", "{:.3f}"), ("diversity_ratio", "{:.2f}"), ("novelty", "{:.2f}"),
           ("real_novelty", "{:.2f}"), ("near_copy_fraction", "{:.3f}"), ("smoothness", "{:.2f}"),
           ("train_seconds", "{:.0f}"), ("sample_seconds", "{:.0f}"), ("seconds", "{:.0f}"), ("load", "{}")]


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"


def fmt(v, f):
    if isinstance(v, (list, tuple)):
        return ", ".join(v) or "none"
    return "-" if v is None else f.format(v)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--heads", nargs="+", default=list(HEADS))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/generate"))
    ap.add_argument("--epochs", type=int, default=None, help="passed to trained heads (default: the head's)")
    ap.add_argument("--samples", type=int, default=16, help="samples per class")
    ap.add_argument("--data", default=None)
    ap.add_argument("--tokenizer", default=None)
    args = ap.parse_args()
    results = []
    for head in args.heads:
        cmd = [sys.executable, "-m", "magtask", "run", "generate", head, "--json", "--overwrite",
               "--run-dir", str(args.out / head), "--samples", str(args.samples)]
        cmd += ["--epochs", str(args.epochs)] if args.epochs and head in ("maskgit", "token-prior") else []
        cmd += ["--data", args.data] if args.data else []
        cmd += ["--tokenizer", args.tokenizer] if args.tokenizer else []
        print("$", " ".join(cmd[2:]), file=sys.stderr, flush=True)
        before = loadavg()
        m = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        m["load"] = f"{before}-{loadavg()}"
        results.append(m)
        subprocess.run([sys.executable, "-m", "magtask", "render", str(args.out / head), "--out", "gif"], check=True)
        print(json.dumps({k: m.get(k) for k, _ in COLUMNS}), file=sys.stderr, flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print("| " + " | ".join(k for k, _ in COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for m in results:
        print("| " + " | ".join(fmt(m.get(k), f) for k, f in COLUMNS) + " |")


if __name__ == "__main__":
    main()
