"""Benchmark task `predict`: the heads side by side, beside the baselines and the motion-model oracle.

    python benchmarks/bench_predict.py                          # default dataset, shipped tokenizer
    python benchmarks/bench_predict.py --heads lstm --curve 8 15  # + the same head at 8 and 15 epochs
    python benchmarks/bench_predict.py --tokenizer T.safetensors --data D.safetensors --heads lstm

Runs `magtask run predict HEAD --json` per head (each in a fresh process, as a user would), keeps the
run dirs under --out, and prints a markdown table of the scores (pixel mse on the future frames in
[0, 1], centroid error in pixels, per class, the head's side inputs) plus each head's training time.
--curve E1 E2 ...: each head is also run with --epochs E (its whole schedule at that budget) and a
table of test error against training seconds is printed (the head's default run is the last row).
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

CLASSES = ("linear", "circular", "helical", "parabolic")


def run_head(head: str, args, epochs=None) -> dict:
    tag = head if epochs is None else f"{head}-e{epochs}"
    cmd = [sys.executable, "-m", "magtask", "run", "predict", head, "--json", "--overwrite", "--seed", str(args.seed),
           "--run-dir", str(Path(args.out) / f"predict-{tag}")]
    for flag, value in (("--data", args.data), ("--tokenizer", args.tokenizer), ("--epochs", epochs or args.epochs),
                        ("--past", args.past), ("--future", args.future)):
        if value is not None:
            cmd += [flag, str(value)]
    print("$ magtask " + " ".join(cmd[3:]), file=sys.stderr)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{head}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    m = json.loads(proc.stdout)
    m["load_average"] = loadavg()
    print(f"  {tag}: {m['centroid_error_px']:.2f} px, train {m['train_seconds']:.0f} s, load {m['load_average']}",
          file=sys.stderr)
    return m


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def curve_table(curves: dict[str, list[dict]]) -> str:
    lines = ["| head | epochs | train s | centroid err px | one-dot frames | mse | copy-last / mse | load after |",
             "|---|---|---|---|---|---|---|---|"]
    for head, runs in curves.items():
        for m in runs:
            lines.append(f"| {head} | {m['epochs_trained']} | {m['train_seconds']:.0f} | {m['centroid_error_px']:.2f} | "
                         f"{m['one_dot_fraction']:.3f} | {m['mse']:.5f} | {m['copy_last_over_mse']:.2f} | "
                         f"{m['load_average']} |")
    return "\n".join(lines)


def table(results: dict[str, dict]) -> str:
    first = next(iter(results.values()))
    lines = [f"{first['n_past']} past -> {first['n_future']} future frames; {first['n_test']} test videos; "
             f"tokenizer {first['tokenizer'][:12]}, data {first['data'][:12]}", "",
             "| predictor | side inputs | mse | mse / recon | centroid err px | one-dot frames | copy-last / mse | "
             "judge acc (past+pred) | train s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for head, m in results.items():
        judge = "-" if m["judge_accuracy"] is None else f"{m['judge_accuracy']:.3f}"
        side = ", ".join(m.get("side_inputs", [])) or "none (code-only)"
        lines.append(f"| {head} | {side} | {m['mse']:.5f} | {m['mse_over_recon']:.2f} | {m['centroid_error_px']:.2f} | "
                     f"{m['one_dot_fraction']:.3f} | {m['copy_last_over_mse']:.2f} | {judge} | {m['train_seconds']:.0f} |")
    for name, mse, px in (("tokenizer round trip (floor)", "recon_mse", "recon_centroid_error_px"),
                          ("copy last frame", "copy_last_mse", "copy_last_centroid_error_px"),
                          ("blank (background only)", "blank_mse", None),
                          ("constant velocity", "const_velocity_mse", "const_velocity_centroid_error_px"),
                          ("oracle: true class's motion fit", "oracle_mse", "oracle_centroid_error_px")):
        lines.append(f"| {name} | - | {first[mse]:.5f} | {first[mse] / first['recon_mse']:.2f} | "
                     f"{'-' if px is None else format(first[px], '.2f')} | - | - | - | - |")
    j = first.get("judge_test_accuracy")
    lines += ["", f"judge accuracy on the real test videos: {'-' if j is None else format(j, '.3f')}", "",
              "Per class, mse / centroid error px (heads: / one-dot fraction too):", "",
              "| class | " + " | ".join(results) + " | copy last | const velocity | oracle |",
              "|---|" + "---|" * (len(results) + 3)]
    for c in CLASSES:
        pc = first["per_class"].get(c)
        if not pc:
            continue
        cells = [f"{r['per_class'][c]['mse']:.4f} / {r['per_class'][c]['centroid_error_px']:.2f} / "
                 f"{r['per_class'][c]['one_dot_fraction']:.2f}" for r in results.values()]
        cells += [f"{pc['copy_last_mse']:.4f} / {pc['copy_last_centroid_error_px']:.2f}",
                  f"{pc['const_velocity_mse']:.4f} / {pc['const_velocity_centroid_error_px']:.2f}",
                  f"{pc['oracle_mse']:.4f} / {pc['oracle_centroid_error_px']:.2f}"]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--heads", nargs="+", default=["lstm-predictor", "transformer-predictor", "track-predictor"])
    ap.add_argument("--curve", nargs="*", type=int, default=[], help="also run each head at these epoch budgets")
    ap.add_argument("--data")
    ap.add_argument("--tokenizer")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--past", type=int)
    ap.add_argument("--future", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/out")
    args = ap.parse_args()
    results = {h: run_head(h, args) for h in args.heads}
    print(table(results), flush=True)
    curves = {h: [run_head(h, args, e) for e in args.curve] + [results[h]] for h in args.heads} if args.curve else {}
    if curves:
        print("\nTest error against training time (each row a whole run at that epoch budget):\n")
        print(curve_table(curves))
    (Path(args.out) / "predict.json").write_text(json.dumps({"runs": results, "curves": curves}, indent=2))


if __name__ == "__main__":
    main()
