"""Task `generate`: fit or train a head on the train split's codes, sample videos, decode and score them.

The head contract for this task is magtask.contracts.GenerateHead: build(config) (a BuildConfig,
in_shape (C, t, h, w) latents or (t, h, w) indices), fitted by fit(data) or trained on
loss(x, y, generator=None) (prepare(data) first, if it has one), then sample(labels, generator).
The task provides one data side input, `tracker_tracks`, to a head that declares it: the dot's
(row, col) per frame (N, T, 2) in latent cells (a cell's centre at an integer), read by the
evaluation's tracker off the tokenizer's reconstruction of each training video's codes
(frame_tracks): codes and the tokenizer only, never the dataset's pixels, never another split.

Run-dir outputs: head.safetensors, samples.safetensors (the documented samples layout, read by
`magtask render`), samples.png (each sample's dot track) and metrics.json.

samples.safetensors (format=magtask-samples):
    videos   (N, T, 3, H, W) uint8   the decoded samples
    labels   (N,) int64              the requested class (-1: unconditional)
    judged   (N,) int64              the independent judge's verdict on each video
    codes    (N, C, t, h, w) float32 what was decoded
    indices  (N, t, h, w) int32      their token indices
    metadata: class_names (JSON list), task, head
(`magtask render` needs only videos and labels, and shows an optional `truth` beside the videos.)

Scores (every one beside its real-data baseline; dot tracks come from
trajectory_eval.dot_centroids, the same tracker for real and generated videos; a track's distance to
another is the mean over frames of the distance between their dot centres, in pixels):
    valid_fraction    samples whose every frame holds exactly one dot      (real: real_valid_fraction)
    class_match       the judge agrees with the requested class            (judge_test_accuracy)
    diversity_ratio   mean pairwise track distance among samples of one class ÷ the same among real
                      test videos of that class (all samples together for an unconditional head)
    novelty           mean distance from a sample's track to the nearest training video's track
                      (real_novelty: the same for real test videos: what "new" looks like)
    smoothness        mean largest frame-to-frame jump of the dot ÷ the same for real test videos
Diversity, novelty and smoothness use the samples in which the tracker finds a dot at all (n_tracked);
frames without one take the nearest frame's centre. recon_* are the tokenizer's reconstructions of
the real test videos: the best a sampler that decodes through this tokenizer can hope for.
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch
from rich.table import Table

from magtask import GenerateHead, MagtaskError, Option, TaskSpec, TrainData, UsageError, hookimpl
from magtask.contracts import capability, head_kind
from magtask.console import out, progress_bar
from magtask.data.splits import TEST, TRAIN, VAL
from magtask.loop import train_head
from magtask.render import labelled_grid, trails, write_image
from magtask.tensorfile import write_tensors
from magtask.trajectory_eval import dot_centroids, fill_gaps, one_dot_valid, train_judge

DEFAULT_SAMPLES = 16  # per class
SAMPLE_BATCH = 64


# -- tracks --------------------------------------------------------------------------------------
def tracks(videos, batch: int = 256) -> np.ndarray:
    """(N, T, 2) dot centres, NaN where no ink (batched so a big split never sits in memory as floats)."""
    if len(videos) == 0:
        return np.zeros((0, videos.shape[1], 2), np.float32)
    return np.concatenate([dot_centroids(np.asarray(videos[i:i + batch])) for i in range(0, len(videos), batch)])


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """Decoded video in [0, 1] -> uint8 numpy, rounded."""
    return (video.cpu() * 255 + 0.5).clamp(0, 255).to(torch.uint8).numpy()


@torch.no_grad()
def decoded(tokenizer, latents, index=None, batch: int = 64, device="cpu"):
    """Yield the uint8 reconstructions (b, T, 3, H, W) of latents (N, C, t, h, w) (rows `index` of them,
    if given), `batch` videos at a time: only one batch is read and decoded at once."""
    n = len(latents) if index is None else len(index)
    for lo in range(0, n, batch):
        rows = slice(lo, lo + batch) if index is None else index[lo:lo + batch]
        c = torch.as_tensor(np.asarray(latents[rows], dtype=np.float32))
        yield to_uint8(tokenizer.decode(c.to(device)))


def frame_tracks(tokenizer, latents, image_size: int, index=None, batch: int = 64, device="cpu",
                 tick=None) -> torch.Tensor:
    """latents (N, C, t, h, w) -> (N, T, 2) float32: the dot's (row, col) per frame of each decoded video,
    in latent cells (pixel centre / cell size - 0.5); frames without a dot take the nearest frame's
    centre (trajectory_eval.fill_gaps), a video without one stays at 0."""
    cell = image_size / latents.shape[-1]
    parts = []
    for video in decoded(tokenizer, latents, index, batch, device):
        parts.append(fill_gaps(dot_centroids(video)))
        if tick is not None:
            tick(len(video))
    xy = torch.from_numpy(np.concatenate(parts)).float()
    return torch.stack([xy[..., 1], xy[..., 0]], -1) / cell - 0.5


def tracked(c: np.ndarray) -> np.ndarray:
    """Which tracks have a dot in at least one frame."""
    return np.isfinite(c[..., 0]).any(axis=1)


def track_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(Na, T, 2), (Nb, T, 2) gap-filled tracks -> (Na, Nb) mean per-frame distance in pixels."""
    a, b = torch.from_numpy(np.asarray(a, np.float32)), torch.from_numpy(np.asarray(b, np.float32))
    return torch.linalg.norm(a[:, None] - b[None], dim=-1).mean(-1).numpy()


def mean_pairwise(c: np.ndarray) -> float | None:
    if len(c) < 2:
        return None
    d = track_distances(c, c)
    return float(d[~np.eye(len(c), dtype=bool)].mean())


def max_jump(c: np.ndarray) -> float | None:
    """Mean over tracks of the largest frame-to-frame jump of the dot, in pixels."""
    if len(c) == 0:
        return None
    return float(np.linalg.norm(np.diff(c, axis=1), axis=-1).max(axis=1).mean())


def nearest(c: np.ndarray, ref: np.ndarray, batch: int = 512) -> np.ndarray:
    return np.concatenate([track_distances(c[i:i + batch], ref).min(1) for i in range(0, len(c), batch)]) \
        if len(c) else np.zeros(0)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else float(a / b)


# -- the task ------------------------------------------------------------------------------------
def requested_labels(head, options: dict, names: tuple[str, ...]) -> np.ndarray:
    n = options.get("samples") or DEFAULT_SAMPLES
    name = options.get("class_name")
    if name is not None and name not in names:
        raise UsageError(f"unknown class {name!r}; classes: {', '.join(names)}")
    if not capability(head, GenerateHead, "conditional"):
        if name is not None:
            raise UsageError("--class needs a class-conditional head; this one samples unconditionally")
        return np.full(int(n) * len(names), -1, np.int64)  # as many samples as a conditional head
    classes = [names.index(name)] if name is not None else range(len(names))
    return np.repeat(np.array(list(classes), np.int64), int(n))


@torch.no_grad()
def draw(tokenizer, head, labels: np.ndarray, seed: int, device: str = "cpu", name: str = "the head"
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample (generator seeded by seed + 1), snap (if the head asks), decode: (videos uint8, codes float32,
    indices int32)."""
    gen = torch.Generator().manual_seed(seed + 1)
    vids, codes_all, idx_all = [], [], []
    tok = tokenizer
    snap = capability(head, GenerateHead, "snap_to_grid")
    for lo in range(0, len(labels), SAMPLE_BATCH):
        s = head.sample(torch.from_numpy(labels[lo:lo + SAMPLE_BATCH]), generator=gen)
        if s.dtype.is_floating_point:
            if not torch.isfinite(s).all():
                raise MagtaskError(f"head {name} sampled NaN or Inf latents")
            if snap:
                codes, idx = tok.grid.snap(s)
            else:
                codes, idx = s.float(), tok.grid.snap(s)[1]
        else:
            idx = s.long()
            codes = tok.indices_to_codes(idx)
        vids.append(to_uint8(tok.decode(codes.to(device))))
        codes_all.append(codes.float().numpy())
        idx_all.append(idx.to(torch.int32).numpy())
    return np.concatenate(vids), np.concatenate(codes_all), np.concatenate(idx_all)


def reconstruct(ctx, index: np.ndarray, batch: int = 64) -> np.ndarray:
    """The tokenizer's reconstructions of these videos from their cached codes, uint8."""
    return np.concatenate(list(decoded(ctx.tokenizer, ctx.codes.latents, index, batch, ctx.device)))


def run(ctx) -> dict:
    labels = ctx.codes.labels
    names = ctx.class_names
    train_idx, val_idx, test_idx = (ctx.codes.subset(s) for s in (TRAIN, VAL, TEST))
    if len(train_idx) == 0:
        raise MagtaskError("the training split is empty")
    x_train, y_train = ctx.inputs(train_idx), torch.from_numpy(labels[train_idx])
    x_val, y_val = ctx.inputs(val_idx), torch.from_numpy(labels[val_idx])
    config = ctx.build_config(x_train.shape[1:])
    head = ctx.build_head(config)
    want = requested_labels(head, ctx.options, names)  # checked before any training
    missing = sorted({int(c) for c in want if c >= 0} - set(np.unique(labels[train_idx]).tolist()))
    if missing:
        raise MagtaskError(f"the training split has no videos of class {', '.join(names[c] for c in missing)}")

    def val_score(m):  # minus the mean validation loss, on masks that are the same every epoch
        gen = torch.Generator().manual_seed(12345)
        parts = [m.loss(x_val[i:i + 64], y_val[i:i + 64], generator=gen).item() * len(x_val[i:i + 64])
                 for i in range(0, len(x_val), 64)]
        return -sum(parts) / len(x_val)

    def tracker_tracks():  # counted in the training time
        with progress_bar("tracking the dot in the training reconstructions", len(train_idx), ctx.quiet) as tick:
            return frame_tracks(ctx.tokenizer, ctx.codes.latents, ctx.dataset.size, index=train_idx,
                                device=ctx.device, tick=tick)

    t0 = time.perf_counter()
    data = TrainData(x=x_train, y=y_train, side=ctx.side_inputs({"tracker_tracks": tracker_tracks}),
                     seed=ctx.seed)
    hist = train_head(head, data, lambda: (x_train, y_train), None, ctx.train_config(head),
                      val_score=val_score if len(val_idx) else None, describe=f"training {ctx.head.name}")
    train_seconds = time.perf_counter() - t0
    if isinstance(head, torch.nn.Module):
        head.eval()
    ctx.save_head(head, config)

    t0 = time.perf_counter()
    videos, codes, indices = draw(ctx.tokenizer, head, want, ctx.seed, ctx.device, ctx.head.name)
    sample_seconds = time.perf_counter() - t0

    judge = train_judge(ctx.dataset, seed=ctx.seed)
    judged = judge.predict(videos)
    write_tensors(ctx.run_dir / "samples.safetensors",
                  {"videos": videos, "labels": want, "judged": judged.astype(np.int64), "codes": codes,
                   "indices": indices},
                  {"format": "magtask-samples", "class_names": json.dumps(list(names)), "task": "generate",
                   "head": ctx.head.name})
    metrics = score(ctx, videos, want, judged, judge, train_idx, test_idx)
    metrics.update({
        "conditional": bool(capability(head, GenerateHead, "conditional")),
        "snapped_to_grid": bool(capability(head, GenerateHead, "snap_to_grid")) if codes.dtype.kind == "f" else True,
        "head_kind": head_kind(head),
        "n_train": int(len(train_idx)), "n_val": int(len(val_idx)), "n_test": int(len(test_idx)),
        "epochs_trained": len(hist.train_loss) if hist else None,
        "train_precision": hist.precision if hist else None,
        "best_epoch": hist.best_epoch + 1 if hist else None,
        "train_seconds": round(train_seconds, 2), "sample_seconds": round(sample_seconds, 2),
    })
    write_image(ctx.run_dir / "samples.png", sample_sheet(videos, want, names))
    if not ctx.quiet:
        show(metrics)
    return metrics


def score(ctx, videos, want, judged, judge, train_idx, test_idx) -> dict:
    ds = ctx.dataset
    real_test = np.asarray(ds.videos[np.sort(test_idx)])
    y_test = np.asarray(ds.labels[np.sort(test_idx)])
    valid = one_dot_valid(videos).all(axis=1)
    c_gen = tracks(videos)
    c_test = fill_gaps(tracks(real_test))
    c_train = fill_gaps(tracks(ds.videos[np.sort(train_idx)]) if len(train_idx) else np.zeros((0, ds.frames, 2)))
    keep = tracked(c_gen)
    g, g_lab = fill_gaps(c_gen[keep]), want[keep]
    conditional = bool((want >= 0).any())
    names = ctx.class_names

    if conditional:
        classes = sorted(set(want.tolist()))
        gen_div = [mean_pairwise(g[g_lab == c]) for c in classes]
        real_div = [mean_pairwise(c_test[y_test == c]) for c in classes]
        pairs = [(a, b) for a, b in zip(gen_div, real_div) if a is not None and b]
        div = float(np.mean([a for a, _ in pairs])) if pairs else None
        real = float(np.mean([b for _, b in pairs])) if pairs else None
    else:
        div, real = mean_pairwise(g), mean_pairwise(c_test)
    near = nearest(g, c_train)
    real_near = nearest(c_test, c_train)
    recon = reconstruct(ctx, np.sort(test_idx)) if len(test_idx) else real_test

    m = {
        "n_samples": int(len(videos)),
        "samples_per_class": {names[c]: int((want == c).sum()) for c in sorted(set(want.tolist())) if c >= 0},
        "valid_fraction": float(valid.mean()),
        "valid_frame_fraction": float(one_dot_valid(videos).mean()),
        "real_valid_fraction": float(one_dot_valid(real_test).all(axis=1).mean()) if len(real_test) else None,
        "recon_valid_fraction": float(one_dot_valid(recon).all(axis=1).mean()) if len(recon) else None,
        "class_match": float((judged == want).mean()) if conditional else None,
        "class_match_per_class": ({names[c]: float((judged[want == c] == c).mean()) for c in sorted(set(want.tolist()))}
                                  if conditional else None),
        "judge_test_accuracy": float(judge.test_accuracy),
        "judged_class_counts": {n: int((judged == i).sum()) for i, n in enumerate(names)},
        "recon_class_match": float((judge.predict(recon) == y_test).mean()) if len(recon) else None,
        "n_tracked": int(keep.sum()),
        "diversity_ratio": ratio(div, real),
        "diversity_px": div, "real_diversity_px": real,
        "novelty": float(near.mean()) if len(near) else None,
        "real_novelty": float(real_near.mean()) if len(real_near) else None,
        "near_copy_fraction": float((near < 1.0).mean()) if len(near) else None,
        "smoothness": ratio(max_jump(g), max_jump(c_test)),
        "max_jump_px": max_jump(g), "real_max_jump_px": max_jump(c_test),
    }
    return m


def sample_sheet(videos: np.ndarray, labels: np.ndarray, names: tuple[str, ...], per_row: int = 8) -> np.ndarray:
    """Each sample's dot over all frames (blue early, red late), a row per requested class."""
    rows, texts = [], []
    for c in sorted(set(labels.tolist())):
        pick = np.flatnonzero(labels == c)[:per_row]
        rows.append(trails(videos[pick]))
        texts.append(names[c] if c >= 0 else "samples")
    return labelled_grid(rows, texts)


def show(m: dict) -> None:
    def f(v, fmt="{:.3f}"):
        return "-" if v is None else fmt.format(v)

    t = Table(title=f"{m['n_samples']} samples   (judge's accuracy on real test videos {m['judge_test_accuracy']:.3f})")
    t.add_column("score")
    t.add_column("samples", justify="right")
    t.add_column("baseline", justify="right")
    t.add_column("baseline is")
    t.add_row("valid (one dot every frame)", f(m["valid_fraction"]), f(m["real_valid_fraction"]), "real test videos")
    t.add_row("", "", f(m["recon_valid_fraction"]), "their tokenizer reconstructions")
    t.add_row("class match", f(m["class_match"]), f(m["judge_test_accuracy"]), "judge on real test videos")
    t.add_row("", "", f(m["recon_class_match"]), "judge on their reconstructions")
    t.add_row("diversity ratio", f(m["diversity_ratio"]), "1.000", f"real: {f(m['real_diversity_px'], '{:.1f}')} px")
    t.add_row("novelty (px to nearest train)", f(m["novelty"], "{:.2f}"), f(m["real_novelty"], "{:.2f}"), "real test videos")
    t.add_row("smoothness (max jump ratio)", f(m["smoothness"]), "1.000", f"real: {f(m['real_max_jump_px'], '{:.1f}')} px")
    out.print(t)


@hookimpl
def register_tasks(register):
    from magtask_plugins.tasks import generate_sample

    register(TaskSpec(name="generate", run=run, sample=generate_sample.sample, sample_outputs=generate_sample.OUTPUTS,
                      provides=("tracker_tracks",),
                      options=(Option("samples", int, DEFAULT_SAMPLES, "samples per class", lo=1, hi=100_000),
                               Option("class_name", str, None, "sample only this class")),
                      description="codes -> a generative head; samples decoded and scored: valid fraction, class "
                                  "match (independent judge), diversity, novelty, smoothness"))
