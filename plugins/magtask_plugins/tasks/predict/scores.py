"""The predict task's per-video scores and the judge's verdict on true past + predicted future."""

from __future__ import annotations

import numpy as np

from magtask.metrics import as_float
from magtask.trajectory_eval import train_judge


def mean_or_none(v: np.ndarray) -> float | None:
    """The mean over the videos that have the score (NaN: not defined for that video), None if none do."""
    v = np.asarray(v, dtype=np.float64)
    ok = np.isfinite(v)
    return float(v[ok].mean()) if ok.any() else None


def per_video_mse(pred, truth) -> np.ndarray:
    """(N,) each video's mean squared pixel error (videos (N, T, 3, H, W), uint8 or float in [0, 1])."""
    return ((as_float(pred) - as_float(truth)) ** 2).flatten(1).mean(1).numpy()


def judge_scores(ctx, truth: np.ndarray, pred_u8: np.ndarray, y: np.ndarray, past: int, future: int) -> dict:
    """The independent judge (trained on real train videos only) on true past + predicted future."""
    if past + future != ctx.dataset.frames:
        return {"judge_accuracy": None, "judge_agreement": None, "judge_test_accuracy": None,
                "judge_note": f"the judge reads whole {ctx.dataset.frames}-frame videos; this clip has {past + future}"}
    judge = train_judge(ctx.dataset, seed=ctx.seed)
    on_pred = judge.predict(np.concatenate([truth[:, :past], pred_u8], 1))
    on_true = judge.predict(truth)
    return {"judge_accuracy": float((on_pred == y).mean()), "judge_agreement": float((on_pred == on_true).mean()),
            "judge_accuracy_on_truth": float((on_true == y).mean()), "judge_test_accuracy": judge.test_accuracy}
