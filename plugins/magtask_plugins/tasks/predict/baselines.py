"""The predict task's baselines, each scored like the head: tracked tracks with their gaps filled,
constant velocity (the dot's last step repeated) and the dot redrawn along a track in each video's
style (the dataset's rendering style, else one read off its frames). The motion oracle is
magtask.trajectory_eval.oracle_track.
"""

from __future__ import annotations

import numpy as np
import torch

from magtask.metrics import as_float, background
from magtask.trajectory_eval import fill_gaps, ink


def fill_track(c: np.ndarray) -> np.ndarray:
    """(N, T, 2) tracked centres, NaN where no dot -> float64, gaps filled as trajectory_eval.fill_gaps
    (from the nearest earlier, else later, frame); a video with no dot at all sits at T / 2 px on both
    axes (T = the number of frames given), where the judge's features put it at 0."""
    c = np.array(c, dtype=np.float64)
    return fill_gaps(c, empty=c.shape[1] / 2)


def const_velocity(track: np.ndarray, future: int) -> np.ndarray:
    """(N, P, 2) past centres -> (N, future, 2): last position + k * (last - second last)."""
    v = track[:, -1] - track[:, -2]
    k = np.arange(1, future + 1)[None, :, None]
    return track[:, -1:, :] + k * v[:, None, :]


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
    """centres (N, F, 2) px (NaN: the image centre) + styles (N, 12) -> uint8 videos (N, F, 3, size, size)
    drawn by the dataset's renderer."""
    from magtask.data.renderer import render

    c = np.clip(np.nan_to_num(centres, nan=size / 2), -4 * size, 5 * size).astype(np.float32)
    return render(c, styles.astype(np.float32), size)
