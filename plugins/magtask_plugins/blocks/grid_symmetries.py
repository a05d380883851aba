"""Random symmetries of grids whose last two dimensions are space (rows, columns)."""

from __future__ import annotations

import torch


def random_mirrors(x: torch.Tensor) -> torch.Tensor:
    """x (B, ..., h, w) -> a copy with each of the B grids mirrored in x, mirrored in y and (square grids only)
    transposed, each with odds 1/2, drawn from torch's global generator in that order."""
    out = x.clone()
    for dim in (-1, -2):
        m = torch.rand(len(x)) < 0.5
        out[m] = out[m].flip(dim)
    if x.shape[-1] == x.shape[-2]:
        m = torch.rand(len(x)) < 0.5
        out[m] = out[m].transpose(-1, -2)
    return out
