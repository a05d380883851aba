"""Held-out quality of a tokenizer, each number beside the baseline it has to beat."""

from __future__ import annotations

import time

import numpy as np
import torch

from magtask import metrics, trajectory_eval
from magtask.data.dataset import Dataset
from magtask.errors import MagtaskError, UsageError
from magtask.loop import flush_denormals
from magtask.tokenizer.model import VideoTokenizer

SPLITS = ("train", "val", "test", "all")


@torch.no_grad()
def reconstruct(model: VideoTokenizer, videos: np.ndarray, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """uint8 or float videos -> (reconstructions as uint8, indices int64)."""
    model.eval()
    device = next(model.parameters()).device
    flush_denormals()  # this thread at least (the CLI has set it for every thread)
    recs, idxs = [], []
    for s in range(0, len(videos), batch_size):
        x = metrics.as_float(videos[s:s + batch_size]).to(device)
        codes, idx = model.quantize(model.encode(x))
        recs.append((model.decode(codes) * 255).round().to(torch.uint8).cpu().numpy())
        idxs.append(idx.cpu().numpy())
    return np.concatenate(recs), np.concatenate(idxs)


def evaluate_tokenizer(model: VideoTokenizer, dataset: Dataset, split: str = "test", batch_size: int = 32,
                       limit: int | None = None) -> dict:
    """psnr, blank_psnr, foreground_psnr / background_psnr (the moving content, metrics.foreground_mask
    of the real videos, and the rest; foreground_blank_psnr: a blank video's on the foreground;
    foreground_fraction of the pixels), centre_error_px (+ the tracker's own error on the real
    videos), one_dot_fraction (+ real), codebook fraction_used, perplexity, compression_ratio, n_videos."""
    if split not in SPLITS:
        raise UsageError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    idx = np.arange(len(dataset)) if split == "all" else dataset.indices(split)
    if limit is not None:
        idx = idx[np.linspace(0, len(idx) - 1, min(limit, len(idx))).round().astype(int)]
    if len(idx) == 0:
        raise MagtaskError(f"{dataset.path}: no videos in the {split} split")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    videos = np.asarray(dataset.videos[np.sort(idx)])
    t0 = time.perf_counter()
    recon, indices = reconstruct(model, videos, batch_size)
    seconds = time.perf_counter() - t0
    used, perplexity = metrics.codebook_usage(indices, model.codebook_size)
    out = {
        "split": split, "n_videos": int(len(idx)),
        "psnr": metrics.psnr(recon, videos),
        "blank_psnr": metrics.psnr(metrics.blank_video(videos), videos),
    }
    fg = metrics.foreground_mask(videos)
    out.update({
        "foreground_psnr": metrics.region_psnr(recon, videos, fg),
        "background_psnr": metrics.region_psnr(recon, videos, ~fg),
        "foreground_blank_psnr": metrics.region_psnr(metrics.blank_video(videos), videos, fg),
        "foreground_fraction": float(fg.float().mean()),
        "one_dot_fraction": float(trajectory_eval.one_dot_valid(recon).mean()),
        "one_dot_fraction_real": float(trajectory_eval.one_dot_valid(videos).mean()),
    })
    if dataset.centres is not None:
        true = np.asarray(dataset.centres[np.sort(idx)])
        out["centre_error_px"] = trajectory_eval.centre_error_px(recon, true)
        out["centre_error_px_real"] = trajectory_eval.centre_error_px(videos, true)  # the tracker's own error
    else:  # no ground truth (seed-project files): compare with the tracker on the real videos
        c_real = trajectory_eval.dot_centroids(videos)
        c_rec = trajectory_eval.dot_centroids(recon)
        d = np.sqrt(((c_rec - c_real) ** 2).sum(-1))
        out["centre_error_px"] = float(np.nanmean(d)) if np.isfinite(d).any() else float("nan")
        out["centre_error_px_real"] = 0.0
    out.update({"codebook_fraction_used": used, "perplexity": perplexity, "codebook_size": model.codebook_size,
                "compression_ratio": model.compression_ratio(dataset.frames, dataset.size),
                "videos_per_second": len(idx) / seconds, "data": dataset.hash})
    return out
