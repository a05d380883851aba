"""The dot as a track plus small windows of the code grid: the sparse view the heads model.

Most cells of a video's code grid hold the background code; the dot touches a few cells per latent
step. So a video is described, per latent step, by where a k x k window of cells sits (its top-left
corner, `corners`) and what the window holds; every other cell is the background. Cropping the
windows and pasting them back onto a background grid decodes to the same video, up to the faint
cells outside the window (k = 4 keeps every real test video "one dot per frame" with the shipped
tokenizer; k = 3 does not).

    mass (B, t, h, w)        how far each cell's code is from the background code
    corners (B, t, 2)        (row, col) of the k x k window holding the most mass, in 0..h-k / 0..w-k
    crop(grid, corners, k)   (B, t, h, w, ...) -> (B, t, k, k, ...)
    paste(windows, corners, fill, h, w) -> (B, t, h, w, ...): fill everywhere, the windows on top
    corners_around(centres, k, h, w)  the k x k window centred on each (row, col): round(centre - (k-1)/2)
    nearest_rows(query, ref)          each query row's nearest reference row (a window dictionary look-up)
    code_track(codes) (B, t, 2)       the dot's (x, y) per latent step, in cells: the mass's centroid
Functions only; nothing here is learnt.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def index_digits(indices: torch.Tensor, levels) -> torch.Tensor:
    """FSQ token indices (...) -> their digits (..., C): channel i's level, 0..levels[i]-1."""
    out, basis = [], 1
    for l in levels:
        out.append(torch.div(indices.long(), basis, rounding_mode="floor") % int(l))
        basis *= int(l)
    return torch.stack(out, -1)


def index_mass(indices: torch.Tensor, background: int, levels=None) -> torch.Tensor:
    """(B, t, h, w) indices -> (B, t, h, w) float: squared distance of each cell's code from the
    background code (in code units, each channel in [-1, 1]); without levels, 1 where it differs."""
    if levels is None:
        return (indices != background).float()
    half = torch.tensor([l // 2 for l in levels], dtype=torch.float32)
    d = index_digits(indices, levels).float() - index_digits(torch.tensor(background), levels).float()
    return (d / half).pow(2).sum(-1)


def latent_mass(latents: torch.Tensor) -> torch.Tensor:
    """(B, C, t, h, w) latents -> (B, t, h, w): squared distance from each video's background code
    (its per-channel median)."""
    b, c = latents.shape[:2]
    bg = latents.flatten(2).median(-1).values.view(b, c, 1, 1, 1)
    return (latents - bg).pow(2).sum(1)


def centres(mass: torch.Tensor) -> torch.Tensor:
    """(B, t, h, w) mass -> (B, t, 2) its centroid (row, col) in cells."""
    p = mass / mass.sum((2, 3), keepdim=True).clamp_min(1e-12)
    rows = torch.arange(mass.shape[2], dtype=p.dtype)
    cols = torch.arange(mass.shape[3], dtype=p.dtype)
    return torch.stack([(p.sum(3) * rows).sum(-1), (p.sum(2) * cols).sum(-1)], -1)


def code_track(codes: torch.Tensor) -> torch.Tensor:
    """codes (B, C, t, h, w) -> (B, t, 2): per latent step the (x, y) centroid, in grid cells, of how far
    each cell's code is from the video's background code (its per-channel median). A step where no cell
    differs keeps the previous step's position (the next one's for the first step)."""
    t = codes.shape[2]
    d = latent_mass(codes.double())  # (B, t, h, w)
    mass = d.sum((2, 3))
    track = centres(d).flip(-1)  # (row, col) -> (x, y)
    empty = mass <= 1e-9
    for k, src in [(k, k - 1) for k in range(1, t)] + [(k, k + 1) for k in range(t - 2, -1, -1)]:
        gap = empty[:, k] & ~empty[:, src]
        track[gap, k] = track[gap, src]
        empty[gap, k] = False
    return track


def window_corners(mass: torch.Tensor, k: int) -> torch.Tensor:
    """(B, t, h, w) mass -> (B, t, 2) long: (row, col) of the k x k window with the most mass."""
    b, t, h, w = mass.shape
    box = F.avg_pool2d(mass.reshape(b * t, 1, h, w).float(), k, stride=1)  # (bt, 1, h-k+1, w-k+1)
    n_cols = w - k + 1
    best = box.flatten(1).argmax(1)
    return torch.stack([best // n_cols, best % n_cols], -1).view(b, t, 2)


def corners_around(centres: torch.Tensor, k: int, h: int, w: int) -> torch.Tensor:
    """(..., 2) (row, col) in cells -> (..., 2) long: the corner round(centre - (k-1)/2) of the k x k
    window centred there, kept inside the h x w grid."""
    top = torch.tensor([h - k, w - k], device=centres.device)
    return torch.minimum((centres - (k - 1) / 2).round().long().clamp_min(0), top)


def nearest_rows(query: torch.Tensor, ref: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """(M, D), (R, D) -> (M,) long: the index of each query row's nearest ref row (Euclidean), `chunk`
    query rows at a time so the distance matrix stays small."""
    return torch.cat([torch.cdist(q, ref).argmin(1) for q in query.split(chunk)]) if len(query) \
        else torch.zeros(0, dtype=torch.long)


def _cells(corners: torch.Tensor, k: int):
    b, t = corners.shape[:2]
    ar = torch.arange(k)
    rows = (corners[..., 0, None] + ar).view(b, t, k, 1)
    cols = (corners[..., 1, None] + ar).view(b, t, 1, k)
    bi = torch.arange(b).view(b, 1, 1, 1)
    ti = torch.arange(t).view(1, t, 1, 1)
    return bi, ti, rows, cols


def crop(grid: torch.Tensor, corners: torch.Tensor, k: int) -> torch.Tensor:
    """grid (B, t, h, w, ...) -> (B, t, k, k, ...): the window at each step's corner."""
    return grid[_cells(corners, k)]


def paste(windows: torch.Tensor, corners: torch.Tensor, fill: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """windows (B, t, k, k, ...) -> (B, t, h, w, ...): `fill` (a cell's value, shape (...)) everywhere,
    each step's window at its corner."""
    b, t, k = windows.shape[:3]
    out = fill.to(windows.dtype).expand(b, t, h, w, *windows.shape[4:]).clone()
    out[_cells(corners, k)] = windows
    return out
