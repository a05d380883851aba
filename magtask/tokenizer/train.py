"""Train the video tokenizer: deterministic from the seed, resumable, evaluated on held-out videos.

Loss: mean squared error, with the pixels of the dot (and a ring around it) weighted up, since the
dot is ~2 % of the pixels and a model that draws only the background already scores ~19 dB.
Data order is a function of (seed, step) alone, so a run resumed at step k continues exactly as the
uninterrupted run would. Training clips are random `clip_frames`-frame windows (a multiple of the
temporal stride) of the train split; the model is causal and convolutional, so it applies to the
whole 16-frame video unchanged.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from magtask.console import err, progress_bar
from magtask.data.dataset import Dataset, load_dataset
from magtask.distributed import all_sum, barrier, data_parallel, init, rank_slice
from magtask.errors import MagtaskError, UsageError
from magtask.interrupt import kept
from magtask.loop import flush_denormals
from magtask.tokenizer.io import load_training_state, save_tokenizer, save_training_state
from magtask.tokenizer.model import VideoTokenizer, check_config

DEFAULT_TRAIN = {"batch_size": 24, "lr": 3e-3, "warmup": 50, "clip_frames": 8, "crop": 32, "dot_weight": 5.0,
                 "weight_decay": 0.0, "eval_every": 200, "eval_videos": 64}


def training_options(steps: int, options: dict | None = None, batch_size: int | None = None,
                     lr: float | None = None) -> dict:
    """DEFAULT_TRAIN updated by the given values, each checked (a UsageError naming its flag): every
    training option is validated here, before any data is read or model built."""
    opts = {**DEFAULT_TRAIN, **(options or {})}
    if batch_size is not None:
        opts["batch_size"] = batch_size
    if lr is not None:
        opts["lr"] = lr
    lower = {"batch_size": 1, "warmup": 0, "clip_frames": 1, "crop": 0, "eval_every": 1, "eval_videos": 0}
    for key, lo in {**lower, "steps": 1}.items():
        v = steps if key == "steps" else opts[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise UsageError(f"--{key.replace('_', '-')} must be an integer >= {lo}, got {v!r}")
    for key, positive in (("lr", True), ("dot_weight", False), ("weight_decay", False)):
        v = opts[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or (positive and v == 0):
            raise UsageError(f"--{key.replace('_', '-')} must be a finite number {'> 0' if positive else '>= 0'}, got {v!r}")
    return opts


class _Pool:
    """The `split` videos of several datasets as one sequence, read on demand: pool[positions] reads
    just those videos (uint8 (k, T, 3, H, W)), so training memory does not grow with the dataset."""

    def __init__(self, datasets: Sequence[Dataset], split: str):
        self.parts = [(d.videos, np.sort(d.indices(split))) for d in datasets]
        self.ends = np.cumsum([len(rows) for _, rows in self.parts])

    def __len__(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0

    def __getitem__(self, positions) -> torch.Tensor:
        pos = np.asarray(positions, dtype=np.int64)
        which = np.searchsorted(self.ends, pos, side="right")
        out = None
        for k, (videos, rows) in enumerate(self.parts):
            sel = np.flatnonzero(which == k)
            if len(sel):
                chunk = np.asarray(videos[rows[pos[sel] - (self.ends[k - 1] if k else 0)]])
                out = np.empty((len(pos), *chunk.shape[1:]), chunk.dtype) if out is None else out
                out[sel] = chunk
        return torch.from_numpy(out)


def _gather_centres(datasets: Sequence[Dataset], split: str) -> np.ndarray | None:
    if any(d.centres is None for d in datasets):
        return None
    return np.concatenate([np.asarray(d.centres[np.sort(d.indices(split))]) for d in datasets])


def crop_origin(centre: np.ndarray | None, size: int, crop: int, patch: int, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left (y, x) of a crop x crop window on the patch grid, around the dot when its centre is
    known (most pixels are background; the dot is what is hard to reconstruct)."""
    hi = (size - crop) // patch
    if centre is None or not np.all(np.isfinite(centre)):
        return tuple(int(v) * patch for v in rng.integers(0, hi + 1, 2))
    jitter = rng.uniform(-crop / 4, crop / 4, 2)
    x, y = (centre + jitter - crop / 2) / patch
    return (int(np.clip(round(y), 0, hi)) * patch, int(np.clip(round(x), 0, hi)) * patch)


def dot_weights(x: torch.Tensor, dot_weight: float) -> torch.Tensor:
    """(B, T, 1, H, W) loss weights: 1 on background, 1 + dot_weight on and just around the dot."""
    bg = x[:, :1].flatten(3).median(-1).values[..., None, None]  # (B, 1, 3, 1, 1) first-frame median
    ink = ((bg - x).abs().amax(2, keepdim=True) > 0.04).float()  # (B, T, 1, H, W)
    b, t = ink.shape[:2]
    ring = F.max_pool2d(ink.view(b * t, 1, *ink.shape[-2:]), 3, 1, 1).view_as(ink)
    return 1.0 + dot_weight * ring


def lr_at(step: int, steps: int, lr: float, warmup: int, time_frac: float = 0.0) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 2 % of lr over the steps after it or,
    under a time budget, over the budget when its elapsed share (time_frac) is further along."""
    if step < warmup:
        return lr * (step + 1) / warmup
    frac = max((step - warmup) / max(1, steps - warmup), time_frac)
    return lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def batch_for_step(n: int, step: int, batch_size: int, seed: int) -> np.ndarray:
    """Indices of step `step`: consecutive slices of per-epoch permutations fixed by the seed."""
    start = step * batch_size
    out = []
    while len(out) < batch_size:
        epoch, pos = divmod(start + len(out), n)
        perm = np.random.default_rng([seed, epoch]).permutation(n)
        out.extend(perm[pos:pos + batch_size - len(out)].tolist())
    return np.asarray(out)


@torch.no_grad()
def quick_psnr(model: VideoTokenizer, videos: torch.Tensor, batch_size: int = 16) -> float:
    model.eval()
    device = next(model.parameters()).device
    se, n = 0.0, 0
    for s in range(0, len(videos), batch_size):
        x = videos[s:s + batch_size].to(device).float() / 255
        r = model.decode(model.quantize(model.encode(x))[0])
        se += float(((r - x) ** 2).sum())
        n += x.numel()
    model.train()
    return 10 * math.log10(n / max(se, 1e-12))


def train_tokenizer(dataset: str | Path | Dataset | Sequence, out: str | Path | None, steps: int = 2000,
                    seed: int = 0, config: dict | None = None, resume: str | Path | None = None,
                    batch_size: int | None = None, lr: float | None = None, progress: bool = True,
                    options: dict | None = None, checkpoint: str | Path | None = None,
                    checkpoint_every: int = 0, stop_after: int | None = None,
                    command: str | None = None, device: str = "cpu", start_from: VideoTokenizer | None = None,
                    keep_best: bool = False, stop_on_interrupt: bool = False,
                    max_seconds: float | None = None) -> tuple[VideoTokenizer, dict]:
    """Train on the train split(s) of one or more datasets; returns (model, card).

    Under `torchrun --nproc-per-node N` each process takes a disjoint slice of every step's global
    batch (the same batch as one process would use) and DistributedDataParallel averages gradients;
    only rank 0 evaluates, reports and writes files. On cuda the forward pass runs in bf16 autocast.

    out: where the final tokenizer goes (None: not saved). checkpoint: where the resumable training
    state goes (every `checkpoint_every` steps and at the end); resume: such a file to continue from.
    stop_after: stop (and write the checkpoint) after this step, as if interrupted.
    start_from: a tokenizer to start from (its config and weights; fine-tuning) instead of a fresh one.
    keep_best: end with the weights of the best held-out (val) PSNR seen at an evaluation (the
    starting weights count as step 0), not the last ones. stop_on_interrupt: Ctrl-C ends training
    cleanly at the current step (card["interrupted_at"]), and `out` is written all the same.
    max_seconds: a time budget for the training loop (one process): the learning-rate schedule runs on
    whichever ends first, steps or time (lr_at's time_frac), and training stops at the first step
    past the budget (card["time_limit"]).
    """
    opts = training_options(steps, options, batch_size=batch_size, lr=lr)
    check_config({**(config or {})}, UsageError)
    rank, world_size = init(device)
    if max_seconds is not None and world_size > 1:  # processes would stop at different steps
        raise UsageError("a time budget (--max-seconds) trains in one process, not under torchrun")
    if opts["batch_size"] < world_size:
        raise UsageError(f"--batch-size {opts['batch_size']} is smaller than the {world_size} processes")
    progress = progress and rank == 0
    sets = dataset if isinstance(dataset, (list, tuple)) else [dataset]
    sets = [d if isinstance(d, Dataset) else load_dataset(d) for d in sets]
    start_step, state = 0, None
    if resume is not None:
        state = load_training_state(resume)
        config, seed, steps, opts = state["config"], state["seed"], state["steps"], state["options"]
        start_step = state["step"]
        if [d.hash for d in sets] != state["data"]:
            raise MagtaskError(f"{resume}: was trained on other data (hashes differ); resume with the same --data")
    flush_denormals()  # this thread at least (the CLI has set it for every thread)
    torch.manual_seed(seed)
    if start_from is not None:
        if resume is not None:
            raise UsageError("start from a tokenizer or resume a training state, not both")
        config = dict(start_from.config)
    model = VideoTokenizer(config)
    if start_from is not None:
        model.load_state_dict(start_from.state_dict())
    s = model.temporal_stride
    clip = int(opts["clip_frames"])
    frames = sets[0].frames
    for d in sets:
        if d.frames != frames or d.size != sets[0].size:
            raise MagtaskError(f"{d.path}: videos are {d.frames}x{d.size}x{d.size}, other data is "
                               f"{frames}x{sets[0].size}x{sets[0].size}; train on one geometry")
    model._check_geometry(frames, sets[0].size, sets[0].size)
    clip = min(clip, frames) // s * s or s
    model.config.update({"frames": frames, "size": sets[0].size})
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=opts["lr"], betas=(0.9, 0.99),
                           weight_decay=opts["weight_decay"])
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
    net = data_parallel(model, device)  # model itself with one process
    train = _Pool(sets, "train")
    if len(train) == 0:
        raise MagtaskError(f"{sets[0].path}: no videos in the train split")
    centres = _gather_centres(sets, "train")
    size, p = sets[0].size, model.spatial_stride
    crop = int(opts["crop"])
    crop = 0 if crop <= 0 or crop >= size else max(p, crop // p * p)
    val = _Pool(sets, "val")
    if len(val) > opts["eval_videos"]:  # a fixed, spread-out subset for the running number
        val = val[np.linspace(0, len(val) - 1, opts["eval_videos"]).round().astype(int)] if opts["eval_videos"] > 0 \
            else torch.empty(0)
    elif len(val):
        val = val[np.arange(len(val))]
    elapsed0 = state["seconds"] if state else 0.0
    history = list(state["history"]) if state else []
    t0 = time.perf_counter()
    last = stop_after if stop_after is not None else steps
    last = min(last, steps)
    model.train()
    loss_avg, val_psnr = None, history[-1]["val_psnr"] if history else float("nan")
    best = None  # (val psnr, step, weights) when keep_best
    if keep_best and len(val):
        best = (quick_psnr(model, val), 0, {k: v.detach().clone() for k, v in model.state_dict().items()})
    interrupted_at, time_stop, done = None, None, start_step
    with progress_bar("training tokenizer", steps, disable=not progress) as tick:
        tick(completed=start_step)
        try:
            for step in range(start_step, last):
                idx = batch_for_step(len(train), step, opts["batch_size"], seed)
                offs = np.random.default_rng([seed, step, 1]).integers(0, (frames - clip) // s + 1, len(idx)) * s
                boxes = [(0, 0)] * len(idx)
                if crop:
                    rng = np.random.default_rng([seed, step, 2])
                    boxes = [crop_origin(None if centres is None else centres[i, o + clip // 2], size, crop, p, rng)
                             for i, o in zip(idx, offs)]
                mine = rank_slice(len(idx), rank, world_size)  # this process's part of the global batch
                edge = crop or size
                x = torch.stack([v[o:o + clip, :, y0:y0 + edge, x0:x0 + edge] for v, o, (y0, x0)  # read only these
                                 in zip(train[idx[mine]], offs[mine], boxes[mine])]).to(device).float() / 255
                time_frac = 0.0 if max_seconds is None else (time.perf_counter() - t0) / max_seconds
                for g in opt.param_groups:
                    g["lr"] = lr_at(step, steps, opts["lr"], opts["warmup"], time_frac)
                with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
                    recon, _ = net(x)
                w = dot_weights(x, opts["dot_weight"])
                # dot-weighted MSE of the global batch, sum(w * se) / sum(w) (w spans the 3 colours): each
                # process's part is scaled so that DDP's gradient average is the global batch's gradient
                w_total = all_sum(w.sum().detach())
                loss = (w * (recon.float() - x) ** 2).sum() * world_size / (w_total * x.shape[2])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                lv = float(all_sum(loss.detach().clone())) / world_size
                loss_avg = lv if loss_avg is None else 0.95 * loss_avg + 0.05 * lv
                done = step + 1
                if rank == 0 and len(val) and (done % opts["eval_every"] == 0 or done == steps):
                    val_psnr = quick_psnr(model, val)
                    if best is not None and val_psnr > best[0]:
                        best = (val_psnr, done, {k: v.detach().clone() for k, v in model.state_dict().items()})
                    history.append({"step": done, "loss": loss_avg, "val_psnr": val_psnr,
                                    "seconds": round(elapsed0 + time.perf_counter() - t0, 1)})
                    if progress and not err.is_terminal:  # no live bar in a log file: one line per evaluation
                        err.print(f"step {done}/{steps}  loss {loss_avg:.2e}  val psnr {val_psnr:.2f} dB  "
                                  f"{history[-1]['seconds']:.0f} s", highlight=False)
                tick(info=f"loss {loss_avg:.2e}  val psnr {val_psnr:.2f} dB")
                if rank == 0 and checkpoint and checkpoint_every and done % checkpoint_every == 0 and done < last:
                    save_training_state(checkpoint, model, opt, _state_meta(done, steps, seed, opts, sets, history,
                                                                             elapsed0 + time.perf_counter() - t0))
                    kept(f"training state {checkpoint} (step {done}; continue with --resume)")
                if max_seconds is not None and time.perf_counter() - t0 >= max_seconds:
                    time_stop = done
                    break
        except KeyboardInterrupt:
            if not stop_on_interrupt:
                raise
            interrupted_at = done
    seconds = elapsed0 + time.perf_counter() - t0
    stopped_at = interrupted_at if interrupted_at is not None else time_stop
    done = max(last, start_step) if stopped_at is None else stopped_at
    if best is not None:
        model.load_state_dict(best[2])
    if checkpoint and rank == 0:
        save_training_state(checkpoint, model, opt, _state_meta(done, steps, seed, opts, sets, history, seconds))
    model.eval()
    card = {
        "format": "magtask-tokenizer-card", "steps": steps, "steps_done": done, "seed": seed,
        "seconds": round(seconds, 1), "options": opts, "config": model.config,
        "data": [{"path": str(d.path), "hash": d.hash, "style": d.meta.get("style", "?"),
                  "n_train": int(len(d.indices("train")))} for d in sets],
        "history": history, "params": model.num_params(),
        "compression_ratio": model.compression_ratio(), "world_size": world_size, "device": device,
    }
    if command:
        card["command"] = command
    if best is not None:
        card["kept"] = {"step": best[1], "val_psnr": best[0], "why": "best held-out PSNR seen (keep_best)"}
    if interrupted_at is not None:
        card["interrupted_at"] = interrupted_at
    if time_stop is not None:
        card["time_limit"] = {"seconds": max_seconds, "stopped_at_step": time_stop}
    if out is not None and (done >= steps or stopped_at is not None) and rank == 0:
        save_tokenizer(model, out, card)
    barrier()  # every process returns once the files are written
    return model, card


def _state_meta(step, steps, seed, opts, sets, history, seconds) -> dict:
    return {"step": step, "steps": steps, "seed": seed, "options": opts, "data": [d.hash for d in sets],
            "history": history, "seconds": seconds}
