"""Every built-in head on one tokenizer and dataset: does it run, how long, how much memory, or how it refuses.

    python benchmarks/bench_every_head.py --data D.safetensors --tokenizer seed.pt --tokenizer-config seed-2026-01
    python benchmarks/bench_every_head.py --data D --tokenizer T --heads generate:maskgit,predict:lstm --epochs 2

Each head runs as `magtask run TASK HEAD --json` in a fresh process (codes extracted once by a first
`magtask codes extract`, so the rows time the heads, not the encoder); the peak RSS comes from the
kernel (wait4). A head that refuses shows its exit code and its one-line error. Prints a markdown
table (--json FILE for the raw rows). Predict runs take --past/--future; generate --samples per class.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def registry_heads() -> list[tuple[str, str]]:
    from magtask.registry import get_registry

    reg = get_registry()
    return [(h.task, h.name) for h in sorted(reg.heads.values(), key=lambda h: (h.task, h.name))
            if h.package == "magtask"]


def timed(cmd: list[str], env: dict) -> tuple[int, float, float, str, str]:
    """(exit code, wall s, peak RSS MB from wait4, stdout, stderr) of cmd in a fresh process."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        out.seek(0), err.seek(0)
        return os.waitstatus_to_exitcode(status), wall, usage.ru_maxrss / 1024, out.read(), err.read()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--tokenizer", default=None)
    ap.add_argument("--tokenizer-config", default=None)
    ap.add_argument("--heads", default=None, help="TASK:HEAD,... (default: every built-in head)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--past", type=int, default=None)
    ap.add_argument("--future", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    heads = [tuple(h.split(":")) for h in args.heads.split(",")] if args.heads else registry_heads()
    tok = ["--tokenizer", args.tokenizer] if args.tokenizer else []
    tok += ["--tokenizer-config", args.tokenizer_config] if args.tokenizer_config else []
    env = {**os.environ}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env.setdefault("MAGTASK_CACHE_DIR", str(Path(tmp) / "cache"))
        rc, wall, rss, _, err = timed([sys.executable, "-m", "magtask", "codes", "extract", "--data", args.data, *tok],
                                      env)
        rows.append({"task": "codes", "head": "extract", "rc": rc, "wall_s": wall, "rss_mb": rss,
                     "error": err.strip().splitlines()[-1] if rc else ""})
        for task, head in heads:
            cmd = [sys.executable, "-m", "magtask", "run", task, head, "--data", args.data, *tok, "--json",
                   "--epochs", str(args.epochs), "--run-dir", str(Path(tmp) / f"{task}-{head}")]
            if task == "generate":
                cmd += ["--samples", str(args.samples)]
            if task == "predict":
                cmd += [f for k in ("past", "future") if getattr(args, k) for f in (f"--{k}", str(getattr(args, k)))]
            rc, wall, rss, out, err = timed(cmd, env)
            row = {"task": task, "head": head, "rc": rc, "wall_s": wall, "rss_mb": rss,
                   "error": err.strip().splitlines()[-1] if rc and err.strip() else ""}
            if rc == 0:
                m = json.loads(out)
                row["side_inputs"] = m.get("side_inputs")
                row["score"] = {k: m[k] for k in ("accuracy", "valid_fraction", "class_match", "centroid_error_px",
                                                   "mse") if m.get(k) is not None}
            rows.append(row)
            print(f"{task} {head}: rc {rc}, {wall:.1f} s, {rss:.0f} MB {row['error']}", file=sys.stderr)
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(f"`{' '.join(sys.argv)}`; load average at the end {load}\n")
    print("| task | head | exit | wall s | peak RSS MB | result |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        res = r["error"] or ", ".join(f"{k} {v:.3g}" for k, v in r.get("score", {}).items())
        print(f"| {r['task']} | {r['head']} | {r['rc']} | {r['wall_s']:.1f} | {r['rss_mb']:.0f} | {res} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
