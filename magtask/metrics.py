"""Generic metrics that keep a score honest: PSNR beside a blank video's, mse, codebook usage.

Videos are (N, T, 3, H, W), uint8 or float in [0, 1], numpy or torch; results are floats or numpy
arrays. The trajectory domain's dot tracker, judge and motion oracle are magtask.trajectory_eval.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def as_float(videos) -> torch.Tensor:
    """Any video array -> float32 torch tensor in [0, 1]."""
    v = videos if isinstance(videos, torch.Tensor) else torch.from_numpy(np.array(videos))
    if v.dtype == torch.uint8:
        return v.float() / 255.0
    return v.float()


def mse(a, b) -> float:
    return float(torch.mean((as_float(a) - as_float(b)) ** 2))


def psnr(a, b) -> float:
    """PSNR in dB of the mean squared error over all videos together (peak 1)."""
    m = mse(a, b)
    return float("inf") if m == 0 else 10.0 * math.log10(1.0 / m)


def background(videos) -> torch.Tensor:
    """(N, 3) per-video per-channel median colour: the background, since the dot is small."""
    v = as_float(videos)
    n, t, c = v.shape[:3]
    flat = v.permute(0, 2, 1, 3, 4).reshape(n, c, -1)
    return flat[:, :, :: max(1, flat.shape[-1] // 20000)].median(dim=-1).values


def blank_video(videos) -> torch.Tensor:
    """Each video's background colour everywhere: the baseline every PSNR should beat."""
    v = as_float(videos)
    return background(v)[:, None, :, None, None].expand_as(v).clone()


def foreground_mask(videos, threshold: float = 0.04, ring: int = 1) -> torch.Tensor:
    """(N, T, H, W) bool: the moving content of each video. A pixel is foreground where its colour
    differs from that pixel's median over the video's frames by more than `threshold` in any channel,
    dilated by `ring` pixels; a static background (flat, gradient or textured) stays outside. Content
    that never moves counts as background."""
    v = as_float(videos)
    still = v.median(dim=1, keepdim=True).values  # (N, 1, 3, H, W) per-pixel over time
    fg = ((v - still).abs().amax(2) > threshold).float()  # (N, T, H, W)
    if ring > 0:
        n, t, h, w = fg.shape
        fg = torch.nn.functional.max_pool2d(fg.view(n * t, 1, h, w), 2 * ring + 1, 1, ring).view(n, t, h, w)
    return fg > 0


def region_psnr(a, b, mask) -> float:
    """PSNR in dB (peak 1) over the pixels where mask (N, T, H, W) is True, all channels; NaN if none."""
    m = torch.as_tensor(mask, dtype=torch.bool)
    if not m.any():
        return float("nan")
    d = (as_float(a) - as_float(b)).pow(2).sum(2)  # (N, T, H, W), summed over channels
    err = float(d[m].sum()) / (int(m.sum()) * as_float(a).shape[2])
    return float("inf") if err == 0 else 10.0 * math.log10(1.0 / err)


def codebook_usage(indices, codebook_size: int) -> tuple[float, float]:
    """(fraction of the codebook used, perplexity = exp(entropy of code frequencies))."""
    idx = torch.as_tensor(np.asarray(indices) if not isinstance(indices, torch.Tensor) else indices).flatten().long()
    counts = torch.bincount(idx, minlength=codebook_size).double()
    p = counts / counts.sum()
    nz = p[p > 0]
    return float((counts > 0).sum()) / codebook_size, float(torch.exp(-(nz * nz.log()).sum()))
