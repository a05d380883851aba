"""Draw anti-aliased dots into uint8 video frames.

A pixel's coverage by a disc of radius r whose centre is `d` pixels from the pixel centre is
approximated as clip(r + 0.5 - d, 0, 1) (a one-pixel linear ramp across the edge); a row with an
edge width e > 1 (styles.LOOK_NAMES) ramps over e pixels instead: clip((r - d) / e + 0.5, 0, 1).
An outline is a further 1-px ring. Only a small window around each dot is computed; the rest of the
frame is the background: a flat colour, or for LOOK_NAMES rows a linear gradient from bg (one side
of the frame) to bg2 (the other) along gradient_angle.
Pixel (i, j) covers [j, j + 1) x [i, i + 1), so its centre is at (j + 0.5, i + 0.5).
"""

from __future__ import annotations

import math

import numpy as np


def graded(styles: np.ndarray) -> np.ndarray:
    """(B,) bool: the row's background is a gradient (LOOK_NAMES rows with bg2 != bg)."""
    if styles.shape[1] <= 12:
        return np.zeros(len(styles), bool)
    return np.any(styles[:, 12:15] != styles[:, 4:7], axis=1)


def backgrounds(styles: np.ndarray, size: int) -> np.ndarray:
    """styles (B, S) -> (B, 3, H, W) float32 background of each video."""
    bg = styles[:, 4:7].astype(np.float32)
    out = np.broadcast_to(bg[:, :, None, None], (len(styles), 3, size, size)).copy()
    rows = np.flatnonzero(graded(styles))
    if len(rows):
        bg2, angle = styles[rows, 12:15].astype(np.float32), styles[rows, 15].astype(np.float32)
        xy = np.arange(size, dtype=np.float32) + 0.5 - size / 2
        a = angle[:, None, None]
        proj = np.cos(a) * xy[None, None, :] + np.sin(a) * xy[None, :, None]  # (G, H, W)
        t = np.clip(0.5 + proj / (size * math.sqrt(2)), 0.0, 1.0)[:, None]
        out[rows] = bg[rows, :, None, None] + t * (bg2 - bg[rows])[:, :, None, None]
    return out


def render(centres: np.ndarray, styles: np.ndarray, size: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """centres (B, T, 2) pixel (x, y); styles (B, S) rows of styles.STYLE_NAMES or LOOK_NAMES ->
    (B, T, 3, H, W) uint8. Noise (per pixel and channel) is drawn from rng; without rng, none."""
    b, t, _ = centres.shape
    radius = styles[:, 0].astype(np.float32)
    dot, outline, ring, noise = styles[:, 1:4], styles[:, 7], styles[:, 8:11], styles[:, 11]
    edge = styles[:, 16].astype(np.float32) if styles.shape[1] > 16 else None
    reach = float(radius.max()) + (0.0 if edge is None else max(float(edge.max()) - 1, 0) / 2)
    win = min(size, 2 * math.ceil(reach + 2.5) + 2)
    out = np.empty((b, t, 3, size, size), dtype=np.uint8)
    bgimg = backgrounds(styles, size) if graded(styles).any() else None  # (B, 3, H, W); flat: not built
    if bgimg is None:
        bg = styles[:, 4:7]
        out[...] = np.round(bg * 255).astype(np.uint8)[:, None, :, None, None]
    else:
        out[...] = np.round(bgimg * 255).astype(np.uint8)[:, None]

    # window origin, clipped to the frame (the dot lies inside it either way)
    x0 = np.clip(np.floor(centres[..., 0]).astype(np.int64) - win // 2, 0, size - win)  # (B, T)
    y0 = np.clip(np.floor(centres[..., 1]).astype(np.int64) - win // 2, 0, size - win)
    offs = np.arange(win, dtype=np.float32) + 0.5
    dx = (x0[..., None] + offs - centres[..., 0:1]).astype(np.float32)  # (B, T, W)
    dy = (y0[..., None] + offs - centres[..., 1:2]).astype(np.float32)
    dist = np.sqrt(dy[..., :, None] ** 2 + dx[..., None, :] ** 2)  # (B, T, W, W)
    r = radius[:, None, None, None]
    if edge is None:  # the older 12-column rows: the same ramp as edge = 1, in the order their files were made

        a_dot = np.clip(r + 0.5 - dist, 0.0, 1.0)
        a_ring = (np.clip(r + 1.5 - dist, 0.0, 1.0) - a_dot) * outline[:, None, None, None]
    else:
        e = edge[:, None, None, None]
        a_dot = np.clip((r - dist) / e + 0.5, 0.0, 1.0)
        a_ring = (np.clip((r + 1.0 - dist) / e + 0.5, 0.0, 1.0) - a_dot) * outline[:, None, None, None]

    bi, ti = np.meshgrid(np.arange(b), np.arange(t), indexing="ij")
    rows = y0[..., None] + np.arange(win)  # (B, T, W)
    cols = x0[..., None] + np.arange(win)
    where = (bi[..., None, None, None], ti[..., None, None, None], np.arange(3)[:, None, None],
             rows[:, :, None, :, None], cols[:, :, None, None, :])
    if bgimg is None:
        bgw = bg[:, None, :, None, None].astype(np.float32)  # (B, 1, 3, 1, 1)
    else:
        bgw = bgimg[bi[..., None, None, None], np.arange(3)[:, None, None],
                    rows[:, :, None, :, None], cols[:, :, None, None, :]]  # (B, T, 3, W, W)
    patch = (bgw + a_dot[:, :, None] * (dot[:, None, :, None, None] - bgw)
             + a_ring[:, :, None] * (ring[:, None, :, None, None] - bgw))
    if rng is not None and np.any(noise > 0):
        frames = out.astype(np.float32) / 255.0
        frames[where] = patch
        frames += rng.standard_normal(frames.shape, dtype=np.float32) * noise[:, None, None, None, None].astype(np.float32)
        np.clip(frames * 255.0 + 0.5, 0, 255, out=frames)
        return frames.astype(np.uint8)
    out[where] = (patch * 255.0 + 0.5).astype(np.uint8)
    return out
