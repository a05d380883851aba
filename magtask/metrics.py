"""Metrics that keep a score honest: PSNR beside a blank video's, a dot tracker, codebook usage.

Videos are (N, T, 3, H, W), uint8 or float in [0, 1], numpy or torch; results are floats or numpy
arrays. The tracker knows nothing of how videos were made: a pixel's "ink" is how much darker it is
than its video's background (the per-channel median), so it judges generated and predicted videos
the same way as real ones.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

INK_THRESHOLD = 0.1  # darker than the background by this much (mean over RGB) counts as ink
MIN_DOT_AREA = 4  # pixels; smaller blobs are specks and are not counted as dots
MAX_DOT_AREA = 600  # a radius-7 dot with an outline covers about 250


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


def ink(videos) -> torch.Tensor:
    """(N, T, H, W) how much darker than the background each pixel is (mean over RGB, >= 0)."""
    v = as_float(videos)
    bg = background(v)[:, None, :, None, None]
    return (bg - v).mean(2).clamp_min(0)


def dot_centroids(videos, threshold: float = INK_THRESHOLD) -> np.ndarray:
    """(N, T, 2) ink-weighted centroid (x, y) per frame, pixel centres at +0.5; NaN where no ink."""
    d = ink(videos)
    w = torch.where(d > threshold, d, torch.zeros(()))
    h, wd = w.shape[-2:]
    ys = torch.arange(h, dtype=torch.float32) + 0.5
    xs = torch.arange(wd, dtype=torch.float32) + 0.5
    total = w.sum((-2, -1))
    cx = (w.sum(-2) * xs).sum(-1) / total
    cy = (w.sum(-1) * ys).sum(-1) / total
    out = torch.stack([cx, cy], -1)
    out[total <= 0] = float("nan")
    return out.numpy()


def _max3x3(x: torch.Tensor) -> torch.Tensor:
    p = F.pad(x, (1, 1, 1, 1))
    h = torch.maximum(torch.maximum(p[:, :, :-2], p[:, :, 1:-1]), p[:, :, 2:])
    return torch.maximum(torch.maximum(h[:, :-2], h[:, 1:-1]), h[:, 2:])


def _components(mask: torch.Tensor) -> torch.Tensor:
    """mask (F, H, W) bool -> label map (8-connected), each component labelled by its largest pixel
    id: labels spread by 3x3 max-pooling inside the mask until nothing changes (frames that are done
    drop out of the loop)."""
    f, h, w = mask.shape
    dtype = torch.int16 if h * w < 32767 else torch.int32
    ids = torch.arange(1, h * w + 1, dtype=dtype).view(1, h, w)
    m = mask.to(dtype)
    lab = ids * m
    active = torch.arange(f)
    while len(active):
        cur = lab[active]
        new = _max3x3(cur) * m[active]
        changed = (new != cur).flatten(1).any(1)
        lab[active] = new
        active = active[changed]
    return lab


def dot_counts(videos, threshold: float = 1.5 * INK_THRESHOLD, min_area: int = MIN_DOT_AREA,
               chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """((N, T) number of dots, (N, T) total ink area in pixels): dots are 8-connected ink blobs of at
    least min_area pixels."""
    d = ink(videos)
    n, t, h, w = d.shape
    mask = (d > threshold).reshape(n * t, h, w)
    counts = torch.zeros(n * t, dtype=torch.int64)
    areas = mask.sum((-2, -1))
    for s in range(0, n * t, chunk):
        m = mask[s:s + chunk]
        if not m.any():
            continue
        lab = _components(m).long()
        frame = torch.arange(m.shape[0]).view(-1, 1, 1).expand_as(lab)
        keys = (frame * (h * w + 1) + lab)[m]  # one key per (frame, component), per ink pixel
        uniq, sizes = torch.unique(keys, return_counts=True)
        big = uniq[sizes >= min_area] // (h * w + 1)
        counts[s:s + m.shape[0]] = torch.bincount(big, minlength=m.shape[0])
    return counts.view(n, t).numpy(), areas.view(n, t).numpy()


def one_dot_valid(videos, max_area: int = MAX_DOT_AREA) -> np.ndarray:
    """(N, T) bool: the frame holds exactly one dot, and its ink area is sane."""
    counts, areas = dot_counts(videos)
    return (counts == 1) & (areas >= MIN_DOT_AREA) & (areas <= max_area)


def centre_error_px(pred_videos, true_centres) -> float:
    """Mean distance in pixels between the tracked dot of each frame and the true centre; a frame
    where the tracker finds no ink counts as the frame's half-diagonal (a miss is never free)."""
    c = dot_centroids(pred_videos)
    t = np.asarray(true_centres, dtype=np.float64)
    dist = np.sqrt(((c - t) ** 2).sum(-1))
    size = as_float(pred_videos).shape[-1] if not isinstance(pred_videos, np.ndarray) else pred_videos.shape[-1]
    dist = np.where(np.isfinite(dist), dist, size / math.sqrt(2))
    return float(dist.mean())


def codebook_usage(indices, codebook_size: int) -> tuple[float, float]:
    """(fraction of the codebook used, perplexity = exp(entropy of code frequencies))."""
    idx = torch.as_tensor(np.asarray(indices) if not isinstance(indices, torch.Tensor) else indices).flatten().long()
    counts = torch.bincount(idx, minlength=codebook_size).double()
    p = counts / counts.sum()
    nz = p[p > 0]
    return float((counts > 0).sum()) / codebook_size, float(torch.exp(-(nz * nz.log()).sum()))
