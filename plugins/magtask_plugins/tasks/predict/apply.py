"""`magtask apply` on a predict run: each input's past frames and the head's predicted future.

An input is the run's past (e.g. 12 frames) or a whole video of the run's length (16; its first 12
are the past, and the rest is kept as `truth`). The past is encoded alone, the head predicts the
future codes, and past + future codes are decoded together (as the task's evaluation does).

--out FILE.gif / .mp4: the inputs side by side, past frames framed in grey, predicted ones in red.
--out FILE.safetensors (format=magtask-predictions):
    videos        (N, P+F, 3, H, W) uint8  the input's own past frames, then the predicted ones
    past          (N, P, 3, H, W) uint8    the input's past frames, as read
    predicted     (N, F, 3, H, W) uint8    the decoded prediction
    is_predicted  (P+F,) uint8             0 for a past frame, 1 for a predicted one
    codes         (N, C, tp+tf, h, w)      past codes + predicted codes
    truth         (N, P+F, 3, H, W) uint8  only when every input had the run's full length
    metadata: inputs (JSON list of names), n_past, n_future, head, run_dir
"""

from __future__ import annotations

import json

import numpy as np
import torch
from rich.table import Table

from magtask import MagtaskError, UsageError
from magtask.console import out as stdout
from magtask.trajectory_eval import one_dot_valid

OUTPUTS = (".gif", ".mp4", ".safetensors")
PAST, PREDICTED = (150, 150, 150), (220, 30, 30)


@torch.no_grad()
def apply(run, videos, out) -> dict:
    from magtask.render import marked_frames, write_animation
    from magtask.tensorfile import write_tensors
    from magtask_plugins.tasks.predict.codes import decode_codes, encode_frames

    if out is None:
        raise UsageError(f"a predict run writes its continuations to --out FILE ({', '.join(OUTPUTS)})")
    tc = run.config.task_config
    tp, tf, s = int(tc["n_past_steps"]), int(tc["n_future_steps"]), int(tc["stride"])
    past, future = int(tc.get("n_past", tp * s)), int(tc.get("n_future", tf * s))  # older runs: steps x stride
    whole = run.frames
    run.check_geometry(videos, tuple(sorted({past, whole})),
                       f"{past} frames (the past) or {whole} (its first {past} are the past) of {run.size}x{run.size}")
    past_u8 = np.stack([v.video[:past] for v in videos])
    past_codes = encode_frames(run.tokenizer, past_u8, device=run.device)
    pred_codes = run.head.predict(past_codes.to(run.device), tf).cpu()
    c, _, h, w = past_codes.shape[1:]
    if tuple(pred_codes.shape) != (len(videos), c, tf, h, w):
        raise MagtaskError(f"head {run.head_spec.name} predicted codes of shape {tuple(pred_codes.shape)}, "
                           f"expected {(len(videos), c, tf, h, w)}")
    clip = torch.cat([past_codes, pred_codes], 2)
    pred_u8 = (decode_codes(run.tokenizer, clip, device=run.device)[:, past:] * 255 + 0.5).clamp(0, 255) \
        .to(torch.uint8).numpy()
    joined = np.concatenate([past_u8, pred_u8], 1)
    marks = np.array([0] * past + [1] * future, np.uint8)
    names = [v.name for v in videos]
    if out.suffix.lower() == ".safetensors":
        tensors = {"videos": joined, "past": past_u8, "predicted": pred_u8, "is_predicted": marks,
                   "codes": clip.numpy().astype(np.float32)}
        if all(len(v.video) >= past + future for v in videos):
            tensors["truth"] = np.stack([v.video[:past + future] for v in videos])
        write_tensors(out, {k: np.ascontiguousarray(v) for k, v in tensors.items()},
                      {"format": "magtask-predictions", "inputs": json.dumps(names), "n_past": str(past),
                       "n_future": str(future), "head": run.head_spec.name, "run_dir": str(run.run_dir)})
    else:
        colours = np.array([PREDICTED if m else PAST for m in marks], np.uint8)
        titles = [f"predicted {k - past + 1}/{future}" if m else f"past {k + 1}/{past}" for k, m in enumerate(marks)]
        write_animation(out, marked_frames(joined, colours, titles))
    valid = one_dot_valid(pred_u8).mean(1)
    rows = [{"input": n, "n_past": past, "n_future": future, "predicted_one_dot_fraction": float(valid[i])}
            for i, n in enumerate(names)]
    result = {"run_dir": str(run.run_dir), "task": "predict", "head": run.head_spec.name, "out": str(out),
              "inputs": rows}
    if not run.quiet:
        t = Table(title=f"{run.head_spec.name}: {past} past -> {future} predicted frames, written to {out}")
        for col in ("input", "predicted frames with one dot"):
            t.add_column(col, overflow="fold")
        for r in rows:
            t.add_row(r["input"], f"{r['predicted_one_dot_fraction']:.2f}")
        stdout.print(t)
    return result
