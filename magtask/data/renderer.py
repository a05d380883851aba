"""Draw anti-aliased dots into uint8 video frames.

A pixel's coverage by a disc of radius r whose centre is `d` pixels from the pixel centre is
approximated as clip(r + 0.5 - d, 0, 1) (a one-pixel linear ramp across the edge). Only a small
window around each dot is computed; the rest of the frame is the background colour.
Pixel (i, j) covers [j, j + 1) x [i, i + 1), so its centre is at (j + 0.5, i + 0.5).
"""

from __future__ import annotations

import math

import numpy as np


def render(centres: np.ndarray, styles: np.ndarray, size: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """centres (B, T, 2) pixel (x, y); styles (B, 12) rows of styles.STYLE_NAMES -> (B, T, 3, H, W) uint8."""
    b, t, _ = centres.shape
    radius = styles[:, 0].astype(np.float32)
    dot, bg, outline, ring, noise = styles[:, 1:4], styles[:, 4:7], styles[:, 7], styles[:, 8:11], styles[:, 11]
    win = min(size, 2 * math.ceil(float(radius.max()) + 2.5) + 2)
    out = np.empty((b, t, 3, size, size), dtype=np.uint8)
    out[...] = np.round(bg * 255).astype(np.uint8)[:, None, :, None, None]

    # window origin, clipped to the frame (the dot lies inside it either way)
    x0 = np.clip(np.floor(centres[..., 0]).astype(np.int64) - win // 2, 0, size - win)  # (B, T)
    y0 = np.clip(np.floor(centres[..., 1]).astype(np.int64) - win // 2, 0, size - win)
    offs = np.arange(win, dtype=np.float32) + 0.5
    dx = (x0[..., None] + offs - centres[..., 0:1]).astype(np.float32)  # (B, T, W)
    dy = (y0[..., None] + offs - centres[..., 1:2]).astype(np.float32)
    dist = np.sqrt(dy[..., :, None] ** 2 + dx[..., None, :] ** 2)  # (B, T, W, W)
    r = radius[:, None, None, None]
    a_dot = np.clip(r + 0.5 - dist, 0.0, 1.0)
    a_ring = (np.clip(r + 1.5 - dist, 0.0, 1.0) - a_dot) * outline[:, None, None, None]
    bgc = bg[:, None, :, None, None].astype(np.float32)
    patch = (bgc + a_dot[:, :, None] * (dot - bg)[:, None, :, None, None]
             + a_ring[:, :, None] * (ring - bg)[:, None, :, None, None])  # (B, T, 3, W, W)

    bi, ti = np.meshgrid(np.arange(b), np.arange(t), indexing="ij")
    rows = y0[..., None] + np.arange(win)  # (B, T, W)
    cols = x0[..., None] + np.arange(win)
    if rng is not None and np.any(noise > 0):
        frames = out.astype(np.float32) / 255.0
        frames[bi[..., None, None, None], ti[..., None, None, None], np.arange(3)[:, None, None],
               rows[:, :, None, :, None], cols[:, :, None, None, :]] = patch
        frames += rng.standard_normal(frames.shape, dtype=np.float32) * noise[:, None, None, None, None].astype(np.float32)
        np.clip(frames * 255.0 + 0.5, 0, 255, out=frames)
        return frames.astype(np.uint8)
    out[bi[..., None, None, None], ti[..., None, None, None], np.arange(3)[:, None, None],
        rows[:, :, None, :, None], cols[:, :, None, None, :]] = (patch * 255.0 + 0.5).astype(np.uint8)
    return out
