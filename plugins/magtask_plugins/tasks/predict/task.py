"""Task `predict`: the past frames' codes -> the future frames' codes -> decoded future frames.

The clip is the first past + future frames of each video (default 12 + 4 of 16). Its codes have
n = (past + future) / s latent steps (s = the tokenizer's temporal stride): past steps first.

The head contract is magtask.contracts.PredictHead: build(config) with config.in_shape the clip
(C, n, h, w) and config.task_config {n_past_steps, n_future_steps, stride, patch (px per latent
cell)}; the head is fitted (fit(data)), trained by the shared loop (prepare(data), then its
train_tensors(data) / loss(*batch), or the default minibatches (clips,) of the train split's clips),
or parameter-free; then head.predict(past codes (B, C, tp, h, w), tf) -> future codes
(B, C, tf, h, w). The task provides the data side input `true_centres` to a head that declares it:
the training clips' dot centres (N, past + future, 2) px, (x, y) (the dataset's ground truth; for a
dataset without it, the evaluation's tracker on the training frames, as metrics' true_centres says).

Evaluation (test split): each past clip is encoded alone (the tokenizer must be causal, so that
those codes cannot hold the future; the task also checks they equal the prefix of the full clip's
codes and reports the largest difference). Past codes + predicted future codes are decoded
together (the decoder is causal too) and the future frames are scored beside baselines:
recon (tokenizer round trip: the floor), copy-last-frame, blank (background only), constant
velocity (dot tracked in the last two past frames, extrapolated and redrawn in the video's style)
and an oracle that fits the true class's motion model to the true past track (the physics ceiling).
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from rich.table import Table

from magtask import MagtaskError, Option, TaskSpec, TrainData, UsageError, hookimpl
from magtask.contracts import head_kind
from magtask.console import err, out
from magtask.data.splits import TEST, TRAIN, VAL
from magtask.loop import train_head
from magtask.metrics import as_float, background, dot_centroids, ink, one_dot_valid

DEFAULT_PAST, DEFAULT_FUTURE = 12, 4
SAMPLES_PER_CLASS = 4


# -- options ---------------------------------------------------------------------------------------

def check_options(past, future, frames: int, stride: int) -> tuple[int, int]:
    """(past, future) as ints, or a UsageError naming the problem in one line."""
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
    bad = [f"--{n} {v}" for n, v in (("past", past), ("future", future)) if v % stride]
    if bad:
        raise UsageError(f"{' and '.join(bad)} {'is' if len(bad) == 1 else 'are'} not a multiple of the tokenizer's "
                         f"temporal stride {stride} "
                         f"(each latent step holds {stride} frames)")
    return past, future


def check_causal(tokenizer) -> None:
    if getattr(tokenizer, "causal", False) is not True:
        raise MagtaskError("this tokenizer is not causal in time: the codes of the past frames could depend on the "
                           "future frames, so predicting from them would leak the answer; refusing to predict")


# -- codes -----------------------------------------------------------------------------------------

@torch.no_grad()
def encode_frames(tokenizer, videos_u8: np.ndarray, batch: int = 64, device: str = "cpu") -> torch.Tensor:
    """uint8 (N, T, 3, H, W) -> quantized codes (N, C, T/s, h, w), encoded as given (nothing else seen)."""
    parts = []
    for lo in range(0, len(videos_u8), batch):
        x = torch.from_numpy(np.array(videos_u8[lo:lo + batch], dtype=np.uint8)).to(device).float() / 255.0
        parts.append(tokenizer.quantize(tokenizer.encode(x))[0].cpu())
    return torch.cat(parts)


@torch.no_grad()
def decode_codes(tokenizer, codes: torch.Tensor, batch: int = 64, device: str = "cpu") -> torch.Tensor:
    """codes (N, C, t, h, w) -> float videos (N, t*s, 3, H, W) in [0, 1]."""
    return torch.cat([tokenizer.decode(codes[lo:lo + batch].to(device)).cpu() for lo in range(0, len(codes), batch)])


def train_centres(ds, idx, frames: int) -> torch.Tensor:
    """(N, frames, 2) px: the true dot centres (x, y) of training videos, for heads that learn in track
    space (the dataset's, else the tracker's on the frames; training data only, never the test past)."""
    if ds.centres is not None:
        c = np.asarray(ds.centres[idx][:, :frames], dtype=np.float64)
    else:
        c = fill_track(dot_centroids(np.asarray(ds.videos[idx][:, :frames])))
    return torch.from_numpy(c).float()


# -- baselines -------------------------------------------------------------------------------------

def fill_track(c: np.ndarray) -> np.ndarray:
    """(N, T, 2) centres with NaN where no dot -> gaps filled from the nearest earlier, else later, frame."""
    c = np.array(c, dtype=np.float64)
    for k in range(1, c.shape[1]):
        gap = np.isnan(c[:, k, 0])
        c[gap, k] = c[gap, k - 1]
    for k in range(c.shape[1] - 2, -1, -1):
        gap = np.isnan(c[:, k, 0])
        c[gap, k] = c[gap, k + 1]
    return np.nan_to_num(c, nan=c.shape[1] / 2)


def const_velocity(track: np.ndarray, future: int) -> np.ndarray:
    """(N, P, 2) past centres -> (N, future, 2): last position + k * (last - second last)."""
    v = track[:, -1] - track[:, -2]
    k = np.arange(1, future + 1)[None, :, None]
    return track[:, -1:, :] + k * v[:, None, :]


def _fit_plain(track: np.ndarray, name: str, future: int, w: float = 0.0) -> np.ndarray:
    """The class's motion in the image plane, per axis by least squares (no perspective)."""
    p = len(track)
    t, tn = np.arange(p, dtype=np.float64), np.arange(p, p + future, dtype=np.float64)

    def basis(s):
        if name in ("linear", "parabolic"):
            return np.vander(s, 2 if name == "linear" else 3)
        return np.stack([np.ones_like(s), np.cos(w * s), np.sin(w * s)] + ([s] if name == "helical" else []), 1)

    coef, *_ = np.linalg.lstsq(basis(t), track, rcond=None)
    return basis(tn) @ coef


def _fit_projective(track: np.ndarray, name: str, future: int, w: float = 0.0) -> tuple[np.ndarray, float]:
    """The class's 3D motion seen through a pinhole: x(t) = N(t).a / (1 + D(t).d), y(t) = N(t).b / (1 + D(t).d)
    with the same denominator (depth) for both axes. Linear least squares on x (1 + D.d) = N.a;
    returns (extrapolation (future, 2), squared residual of the fit on the past in pixels, inf when
    the depth term is near zero)."""
    p = len(track)
    t, tn = np.arange(p, dtype=np.float64), np.arange(p, p + future, dtype=np.float64)

    def feats(s):
        if name == "linear":
            return np.stack([np.ones_like(s), s], 1), s[:, None]
        if name == "parabolic":
            return np.stack([np.ones_like(s), s, s ** 2], 1), np.stack([s, s ** 2], 1)
        cs = [np.cos(w * s), np.sin(w * s)] + ([s] if name == "helical" else [])
        return np.stack([np.ones_like(s)] + cs, 1), np.stack(cs, 1)

    num, den = feats(t)
    k, m = num.shape[1], den.shape[1]
    a = np.zeros((2 * p, 2 * k + m))
    a[:p, :k], a[p:, k:2 * k] = num, num
    a[:p, 2 * k:], a[p:, 2 * k:] = -track[:, :1] * den, -track[:, 1:] * den
    sol, *_ = np.linalg.lstsq(a, np.concatenate([track[:, 0], track[:, 1]]), rcond=None)

    def curve(nu, de):
        depth = 1 + de @ sol[2 * k:]
        return np.stack([nu @ sol[:k], nu @ sol[k:2 * k]], 1) / depth[:, None], depth.min()

    fit, d_past = curve(num, den)
    pred, d_future = curve(*feats(tn))
    ok = min(d_past, d_future) > 0.3 and np.isfinite(pred).all()
    return pred, float(((fit - track) ** 2).sum()) if ok else np.inf


MOTION_FAMILIES = ("linear", "circular", "helical", "parabolic")  # the classes the oracle has a model for


def oracle_track(track: np.ndarray, name: str, future: int) -> np.ndarray:
    """One video: fit its TRUE class's motion model to its past track (P, 2), extrapolate (future, 2);
    NaN for a class that is not one of MOTION_FAMILIES.

    The 3D motion (linear: constant velocity; parabolic: constant acceleration; circular: uniform
    circular; helical: uniform circular plus a drift along the axis) seen through a pinhole is a
    ratio of two such functions of time sharing one depth denominator; fitted linearly
    (_fit_projective). The angular speed of circular/helical is a grid search (picked by the fit's
    pixel residual on the past). If no fit is sane (depth term near zero) the same model without
    perspective is fitted per axis instead.
    """
    if name not in MOTION_FAMILIES:
        return np.full((future, 2), np.nan)
    if name in ("linear", "parabolic"):
        pred, rss = _fit_projective(track, name, future)
        return pred if np.isfinite(rss) else _fit_plain(track, name, future)
    best, best_w = (None, np.inf), 0.5
    for w in np.linspace(0.05, 1.6, 156):  # rad per frame: 1.1..2 turns over 16 frames is 0.43..0.84
        pred, rss = _fit_projective(track, name, future, w)
        if rss < best[1]:
            best, best_w = (pred, rss), w
    return best[0] if best[0] is not None else _fit_plain(track, name, future, best_w)


def estimate_styles(videos: np.ndarray) -> np.ndarray:
    """(N, T, 3, H, W) uint8 -> (N, 12) style rows (radius, dot, background; no outline, no noise) read
    off the frames: for data without its rendering style."""
    v = as_float(videos)
    bg = background(v)  # (N, 3)
    d = ink(v)  # (N, T, H, W)
    peak = d.flatten(1).amax(1).clamp_min(1e-6)
    core = d > 0.5 * peak.view(-1, 1, 1, 1)
    frames_with_dot = (d.flatten(2).amax(2) > 0.1).sum(1).clamp_min(1)
    area = (d / peak.view(-1, 1, 1, 1)).clamp(0, 1).flatten(1).sum(1) / frames_with_dot
    radius = torch.sqrt(area / np.pi).clamp(1.0, 12.0)
    dot = torch.stack([(v[:, :, ch] * core).flatten(1).sum(1) / core.flatten(1).sum(1).clamp_min(1)
                       for ch in range(3)], 1)
    styles = np.zeros((len(videos), 12), np.float32)
    styles[:, 0] = radius.numpy()
    styles[:, 1:4] = dot.numpy()
    styles[:, 4:7] = bg.numpy()
    styles[:, 8:11] = dot.numpy()
    return styles


def draw(centres: np.ndarray, styles: np.ndarray, size: int) -> np.ndarray:
    from magtask.data.renderer import render

    c = np.clip(np.nan_to_num(centres, nan=size / 2), -4 * size, 5 * size).astype(np.float32)
    return render(c, styles.astype(np.float32), size)


def centre_errors(videos, true_centres: np.ndarray) -> np.ndarray:
    """(N, F) px between the tracked dot and the true centre; no dot found = the half diagonal."""
    c = dot_centroids(videos)
    d = np.sqrt(((c - true_centres) ** 2).sum(-1))
    return np.where(np.isfinite(d), d, videos.shape[-1] / np.sqrt(2))


def mean_or_none(v: np.ndarray) -> float | None:
    """The mean over the videos that have the score (NaN: not defined for that video), None if none do."""
    v = np.asarray(v, dtype=np.float64)
    ok = np.isfinite(v)
    return float(v[ok].mean()) if ok.any() else None


def per_video_mse(pred, truth) -> np.ndarray:
    return ((as_float(pred) - as_float(truth)) ** 2).flatten(1).mean(1).numpy()


# -- the task --------------------------------------------------------------------------------------

def run(ctx) -> dict:
    tok, ds = ctx.tokenizer, ctx.dataset
    check_causal(tok)
    s = tok.temporal_stride
    past, future = check_options(ctx.options.get("past", DEFAULT_PAST), ctx.options.get("future", DEFAULT_FUTURE),
                                 ds.frames, s)
    tp, tf = past // s, future // s
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
                              {"n_past_steps": tp, "n_future_steps": tf, "stride": int(s),
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
        "head_params": int(sum(p.numel() for p in model.parameters())) if hasattr(model, "parameters") else 0,
    })
    if not np.isfinite(metrics["mse"]):
        raise MagtaskError("the prediction's mse is not finite (training diverged)")
    write_samples(ctx, test_idx, y, truth, pred_u8, clip_pred, full_codes, past)
    if not ctx.quiet:
        show(metrics)
    return metrics


def judge_scores(ctx, truth: np.ndarray, pred_u8: np.ndarray, y: np.ndarray, past: int, future: int) -> dict:
    """The independent judge (trained on real train videos only) on true past + predicted future."""
    if past + future != ctx.dataset.frames:
        return {"judge_accuracy": None, "judge_agreement": None, "judge_test_accuracy": None,
                "judge_note": f"the judge reads whole {ctx.dataset.frames}-frame videos; this clip has {past + future}"}
    from magtask.judge import train_judge

    judge = train_judge(ctx.dataset, seed=ctx.seed)
    on_pred = judge.predict(np.concatenate([truth[:, :past], pred_u8], 1))
    on_true = judge.predict(truth)
    return {"judge_accuracy": float((on_pred == y).mean()), "judge_agreement": float((on_pred == on_true).mean()),
            "judge_accuracy_on_truth": float((on_true == y).mean()), "judge_test_accuracy": judge.test_accuracy}


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


@hookimpl
def register_tasks(register):
    register(TaskSpec(name="predict", run=run, provides=("true_centres",),
                      options=(Option("past", int, DEFAULT_PAST, "past frames given to the head", lo=1),
                               Option("future", int, DEFAULT_FUTURE, "future frames to predict", lo=1)),
                      description="past frames' codes -> future codes -> frames; mse, centroid error beside "
                                  "copy-last, blank, constant-velocity and a motion-model oracle"))
