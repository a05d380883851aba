"""Task `predict`: the past frames' codes -> the future frames' codes -> decoded future frames.

The clip is the first past + future frames of each video (default 12 + 4 of 16). Its codes have
n = latent_steps(past + future) latent steps (tokenizer contract; (past + future) / s for a tokenizer of
temporal stride s that groups every frame), past steps first; past and past + future must end on a
latent step boundary.

The head contract is magtask.contracts.PredictHead: build(config) with config.in_shape the clip
(C, n, h, w) and config.task_config {n_past_steps, n_future_steps, n_past, n_future (frames), stride,
patch (px per latent cell)}; the head is fitted (fit(data)), trained by the shared loop (prepare(data), then its
train_tensors(data) / loss(*batch), or the default minibatches (clips,) of the train split's clips),
or parameter-free; then head.predict(past codes (B, C, tp, h, w), tf) -> future codes
(B, C, tf, h, w). The task provides the data side input `true_centres` to a head that declares it:
the training clips' dot centres (N, past + future, 2) px, (x, y) (the dataset's ground truth; for a
dataset without it, trajectory_eval.dot_centroids on the training frames, gaps filled by
baselines.fill_track).

Evaluation (test split): each past clip is encoded alone (the tokenizer must be causal, so that
those codes cannot hold the future; the task also checks they equal the prefix of the full clip's
codes and reports the largest difference). Past codes + predicted future codes are decoded
together (the decoder is causal too) and the future frames are scored beside baselines:
recon (tokenizer round trip: the floor), copy-last-frame, blank (background only), constant
velocity (dot tracked in the last two past frames, extrapolated and redrawn in the video's style)
and an oracle that fits the true class's motion model to the true past track (the physics ceiling).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from magtask import MagtaskError, Option, TaskSpec, TrainData, UsageError, hookimpl
from magtask.contracts import head_kind
from magtask.data.splits import TEST, TRAIN, VAL
from magtask.loop import train_head
from magtask.metrics import background
from magtask.trajectory_eval import centre_errors, dot_centroids, one_dot_valid, oracle_track
from magtask_plugins.tasks.predict.baselines import const_velocity, draw, estimate_styles, fill_track
from magtask_plugins.tasks.predict.codes import decode_codes, encode_frames
from magtask_plugins.tasks.predict.report import show, write_samples
from magtask_plugins.tasks.predict.scores import judge_scores, mean_or_none, per_video_mse

DEFAULT_PAST, DEFAULT_FUTURE = 12, 4


# -- options ---------------------------------------------------------------------------------------

def check_options(past, future, frames: int, tokenizer) -> tuple[int, int, int, int]:
    """(past, future, past steps, future steps) as ints, or a UsageError naming the problem in one line.

    The past and the whole clip must each end on a latent step boundary of the tokenizer
    (tokenizer.frames_of(tokenizer.latent_steps(k)) == k), so that the past's codes are exactly the
    clip's first steps."""
    for name, v in (("past", past), ("future", future)):
        whole = isinstance(v, (int, np.integer)) or (isinstance(v, float) and v.is_integer())
        if isinstance(v, bool) or not whole:
            raise UsageError(f"--{name} must be a whole number of frames, got {v!r}")
        if int(v) < 1:
            raise UsageError(f"--{name} must be at least 1 frame, got {int(v)}")
    past, future = int(past), int(future)
    if past + future > frames:
        raise UsageError(f"--past {past} + --future {future} = {past + future} frames is longer than the "
                         f"{frames}-frame videos")
    s = tokenizer.temporal_stride

    def on_boundary(k: int) -> bool:
        steps = tokenizer.latent_steps(k)
        return steps >= 1 and tokenizer.frames_of(steps) == k

    if not on_boundary(past) or not on_boundary(past + future):
        ok = [tokenizer.frames_of(j) for j in range(1, tokenizer.latent_steps(frames) + 1)]
        raise UsageError(f"--past {past} and --past + --future {past + future} must each end on one of the "
                         f"tokenizer's latent steps (temporal stride {s}; clip lengths that do: "
                         f"{', '.join(map(str, ok[:12]))}{' ...' if len(ok) > 12 else ''})")
    tp = tokenizer.latent_steps(past)
    return past, future, tp, tokenizer.latent_steps(past + future) - tp


def check_causal(tokenizer) -> None:
    if getattr(tokenizer, "causal", False) is not True:
        raise MagtaskError("this tokenizer is not causal in time: the codes of the past frames could depend on the "
                           "future frames, so predicting from them would leak the answer; refusing to predict")


def train_centres(ds, idx, frames: int) -> torch.Tensor:
    """(N, frames, 2) px: the true dot centres (x, y) of training videos, for heads that learn in track
    space (the dataset's, else the tracker's on the frames; training data only, never the test past)."""
    if ds.centres is not None:
        c = np.asarray(ds.centres[idx][:, :frames], dtype=np.float64)
    else:
        c = fill_track(dot_centroids(np.asarray(ds.videos[idx][:, :frames])))
    return torch.from_numpy(c).float()


# -- the task --------------------------------------------------------------------------------------

def run(ctx) -> dict:
    tok, ds = ctx.tokenizer, ctx.dataset
    check_causal(tok)
    s = tok.temporal_stride
    past, future, tp, tf = check_options(ctx.options.get("past", DEFAULT_PAST),
                                         ctx.options.get("future", DEFAULT_FUTURE), ds.frames, tok)
    n = tp + tf
    labels = np.asarray(ctx.codes.labels)
    train_idx, val_idx, test_idx = (ctx.codes.subset(x) for x in (TRAIN, VAL, TEST))
    if len(train_idx) < 2 or len(test_idx) < 1:
        raise MagtaskError(f"{ds.path}: needs training and test videos (has {len(train_idx)} train, "
                           f"{len(test_idx)} test)")

    def clip_codes(idx):  # cached full-clip codes, first n steps (the clip)
        return torch.from_numpy(np.array(ctx.codes.latents[idx][:, :, :n], dtype=np.float32))

    x_train = clip_codes(train_idx)
    c, _, h, w = x_train.shape[1:]
    config = ctx.build_config([int(c), int(n), int(h), int(w)],
                              {"n_past_steps": tp, "n_future_steps": tf, "stride": int(s), "n_past": past, "n_future": future,
                               "patch": float(ds.size) / float(w)})
    model = ctx.build_head(config)
    centres_source = "dataset" if ds.centres is not None else "tracker on the training frames"
    data = TrainData(x=x_train, y=torch.from_numpy(labels[train_idx]),
                     side=ctx.side_inputs({"true_centres": lambda: train_centres(ds, train_idx, past + future)}),
                     seed=ctx.seed)
    # No selection on a validation score: the cosine schedule ends at lr 0, so the last epoch is kept.
    t0 = time.perf_counter()
    hist = train_head(model, data, lambda: (x_train,), None, ctx.train_config(model),
                      describe=f"training {ctx.head.name}")
    train_seconds = time.perf_counter() - t0
    ctx.save_head(model, config)

    # -- test: past clips encoded alone, future rolled out, decoded with the past ---------------------
    truth = np.asarray(ds.videos[test_idx][:, :past + future])  # (N, P+F, 3, H, W) uint8
    past_codes = encode_frames(tok, truth[:, :past], device=ctx.device)
    full_codes = clip_codes(test_idx)
    prefix_diff = float((past_codes - full_codes[:, :, :tp]).abs().max()) if len(test_idx) else 0.0
    with torch.no_grad():
        pred_codes = model.predict(past_codes, tf)
    if tuple(pred_codes.shape) != (len(past_codes), c, tf, h, w):
        raise MagtaskError(f"head {ctx.head.name} predicted codes of shape {tuple(pred_codes.shape)}, "
                           f"expected {(len(past_codes), c, tf, h, w)}")
    clip_pred = torch.cat([past_codes, pred_codes], 2)
    pred = decode_codes(tok, clip_pred, device=ctx.device)[:, past:]  # (N, F, 3, H, W) float
    recon = decode_codes(tok, full_codes, device=ctx.device)[:, past:]
    true_future = truth[:, past:]
    pred_u8 = (pred * 255 + 0.5).to(torch.uint8).numpy()

    y = labels[test_idx]
    size = ds.size
    if ds.centres is not None:
        centres = np.asarray(ds.centres[test_idx][:, :past + future], dtype=np.float64)
    else:
        centres = fill_track(dot_centroids(truth))
    styles = np.asarray(ds.extra["style"])[test_idx] if "style" in ds.extra else estimate_styles(truth[:, :past])
    tracked_past = fill_track(dot_centroids(truth[:, :past]))
    cv_frames = draw(const_velocity(tracked_past, future), styles, size)
    names = ctx.class_names
    oracle = np.stack([oracle_track(centres[i, :past], names[int(y[i])], future) for i in range(len(y))])
    has_oracle = np.isfinite(oracle).all(axis=(1, 2))
    oracle_frames = draw(oracle, styles, size)
    copy_frames = np.repeat(truth[:, past - 1:past], future, axis=1)
    blank = background(truth)[:, None, :, None, None].expand(-1, future, -1, size, size)
    fut_centres = centres[:, past:]

    per_video = {
        "mse": per_video_mse(pred, true_future),
        "recon_mse": per_video_mse(recon, true_future),
        "copy_last_mse": per_video_mse(copy_frames, true_future),
        "blank_mse": per_video_mse(blank, true_future),
        "const_velocity_mse": per_video_mse(cv_frames, true_future),
        "oracle_mse": np.where(has_oracle, per_video_mse(oracle_frames, true_future), np.nan),
        "centroid_error_px": centre_errors(pred, fut_centres).mean(1),
        "recon_centroid_error_px": centre_errors(recon, fut_centres).mean(1),
        "copy_last_centroid_error_px": centre_errors(copy_frames, fut_centres).mean(1),
        "const_velocity_centroid_error_px": centre_errors(cv_frames, fut_centres).mean(1),
        "oracle_centroid_error_px": np.where(has_oracle, centre_errors(oracle_frames, fut_centres).mean(1), np.nan),
        "one_dot_fraction": one_dot_valid(pred).mean(1),
    }
    metrics = {"n_past": past, "n_future": future, "n_past_steps": tp, "n_future_steps": tf,
               "temporal_stride": s, "head_kind": head_kind(model)}
    metrics.update({k: mean_or_none(v) for k, v in per_video.items()})
    metrics["mse_over_recon"] = metrics["mse"] / max(metrics["recon_mse"], 1e-12)
    metrics["copy_last_over_mse"] = metrics["copy_last_mse"] / max(metrics["mse"], 1e-12)
    metrics["truth_one_dot_fraction"] = float(one_dot_valid(true_future).mean())
    metrics["true_centres"] = centres_source
    metrics["per_class"] = {
        name: ({k: mean_or_none(v[y == ci]) for k, v in per_video.items()} | {"n": int((y == ci).sum())}
               if (y == ci).any() else None)
        for ci, name in enumerate(names)}
    metrics.update(judge_scores(ctx, truth, pred_u8, y, past, future))
    metrics.update({
        "n_train": int(len(train_idx)), "n_val": int(len(val_idx)), "n_test": int(len(test_idx)),
        "causal_prefix_max_abs_diff": prefix_diff, "train_seconds": round(train_seconds, 2),
        "epochs_trained": len(hist.train_loss) if hist else None,
        "train_precision": hist.precision if hist else None,
        "head_params": int(sum(p.numel() for p in model.parameters())) if hasattr(model, "parameters") else 0,
    })
    if not np.isfinite(metrics["mse"]):
        raise MagtaskError("the prediction's mse is not finite (training diverged)")
    write_samples(ctx, test_idx, y, truth, pred_u8, clip_pred, full_codes, past)
    if not ctx.quiet:
        show(metrics)
    return metrics


@hookimpl
def register_tasks(register):
    from magtask_plugins.tasks.predict import apply

    register(TaskSpec(name="predict", run=run, apply=apply.apply, apply_outputs=apply.OUTPUTS,
                      provides=("true_centres",),
                      options=(Option("past", int, DEFAULT_PAST, "past frames given to the head", lo=1),
                               Option("future", int, DEFAULT_FUTURE, "future frames to predict", lo=1)),
                      description="past frames' codes -> future codes -> frames; mse, centroid error beside "
                                  "copy-last, blank, constant-velocity and a motion-model oracle"))
