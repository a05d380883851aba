"""The predict task's report: the tables it prints and the samples file `magtask render` shows."""

from __future__ import annotations

import json

import numpy as np
from rich.table import Table

from magtask.console import err, out

SAMPLES_PER_CLASS = 4


def write_samples(ctx, test_idx, y, truth, pred_u8, clip_pred, full_codes, past) -> None:
    """samples.safetensors: videos (true past + predicted future, uint8), truth, labels, codes; a few
    test videos per class (what `magtask render` shows)."""
    from magtask.tensorfile import write_tensors

    rng = np.random.default_rng([ctx.seed, 202])
    pick = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == ci))[:SAMPLES_PER_CLASS]
                                   for ci in range(len(ctx.class_names))]))
    videos = np.concatenate([truth[pick, :past], pred_u8[pick]], 1)
    write_tensors(ctx.run_dir / "samples.safetensors", {
        "videos": np.ascontiguousarray(videos), "truth": np.ascontiguousarray(truth[pick]),
        "labels": y[pick].astype(np.int64), "index": np.asarray(test_idx)[pick].astype(np.int64),
        "codes": clip_pred[pick].numpy(), "true_codes": full_codes[pick].numpy()},
        {"format": "magtask-samples", "task": "predict", "head": ctx.head.name, "n_past": str(past),
         "n_future": str(truth.shape[1] - past), "class_names": json.dumps(list(ctx.class_names))})


def _fmt(v, fmt: str) -> str:
    return "-" if v is None else fmt.format(v)


def show(m: dict) -> None:
    t = Table(title=f"future-frame prediction ({m['n_past']} past -> {m['n_future']} future frames, "
                    f"{m['n_test']} test videos)")
    for col in ("", "mse", "centroid err px"):
        t.add_column(col, justify="right" if col else "left")
    rows = [("head", "mse", "centroid_error_px"), ("tokenizer round trip (floor)", "recon_mse", "recon_centroid_error_px"),
            ("copy last frame", "copy_last_mse", "copy_last_centroid_error_px"), ("blank (background)", "blank_mse", None),
            ("constant velocity", "const_velocity_mse", "const_velocity_centroid_error_px"),
            ("oracle (true class's motion fit)", "oracle_mse", "oracle_centroid_error_px")]
    for name, a, b in rows:
        t.add_row(name, _fmt(m[a], "{:.5f}"), "-" if b is None else _fmt(m[b], "{:.2f}"))
    out.print(t)
    pc = Table(title="per class: mse / centroid error px")
    for col in ("class", "head", "const velocity", "oracle", "one-dot frames"):
        pc.add_column(col, justify="right" if col != "class" else "left")
    for name, v in m["per_class"].items():
        if v:
            pc.add_row(name, f"{v['mse']:.4f} / {v['centroid_error_px']:.2f}",
                       f"{v['const_velocity_mse']:.4f} / {v['const_velocity_centroid_error_px']:.2f}",
                       f"{_fmt(v['oracle_mse'], '{:.4f}')} / {_fmt(v['oracle_centroid_error_px'], '{:.2f}')}",
                       f"{v['one_dot_fraction']:.3f}")
    out.print(pc)
    judge = "-" if m.get("judge_accuracy") is None else f"{m['judge_accuracy']:.3f} (judge on real test: {m['judge_test_accuracy']:.3f})"
    err.print(f"mse/recon {m['mse_over_recon']:.2f}   copy-last/mse {m['copy_last_over_mse']:.2f}   one-dot frames "
              f"{m['one_dot_fraction']:.3f}   judge class accuracy on past+predicted {judge}   "
              f"trained {m['train_seconds']:.0f} s")
