"""Finite scalar quantization (Mentzer et al. 2023): round each latent channel to a few levels.

A latent vector of len(levels) channels is squashed into a box, each channel rounded to one of
levels[i] values; the implicit codebook is every combination (prod(levels) codes), so there is
no codebook to learn or collapse. Gradients pass the rounding straight through.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def round_ste(z: torch.Tensor) -> torch.Tensor:
    return z + (torch.round(z) - z).detach()


class FSQ(nn.Module):
    def __init__(self, levels: tuple[int, ...] | list[int] = (8, 5, 5, 5), eps: float = 1e-3):
        super().__init__()
        self.levels = tuple(int(l) for l in levels)
        if any(l < 2 for l in self.levels):
            raise ValueError(f"FSQ levels must be >= 2, got {self.levels}")
        self.eps = eps
        lv = torch.tensor(self.levels, dtype=torch.float32)
        basis = torch.cumprod(torch.tensor((1,) + self.levels[:-1], dtype=torch.int64), 0)
        self.register_buffer("_levels", lv, persistent=False)
        self.register_buffer("_basis", basis, persistent=False)

    @property
    def dim(self) -> int:
        return len(self.levels)

    @property
    def codebook_size(self) -> int:
        return math.prod(self.levels)

    def _view(self, t: torch.Tensor, ndim: int, dim: int) -> torch.Tensor:
        shape = [1] * ndim
        shape[dim] = -1
        return t.view(shape)

    def bound(self, z: torch.Tensor, dim: int = 1) -> torch.Tensor:
        """Squash z so that rounding gives exactly levels[i] values per channel."""
        lv = self._view(self._levels, z.ndim, dim)
        half_l = (lv - 1) * (1 + self.eps) / 2
        offset = torch.where(lv % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half_l)
        return torch.tanh(z + shift) * half_l - offset

    def forward(self, z: torch.Tensor, dim: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """z (..., C at `dim`, ...) -> (codes in [-1, 1], same shape; indices without the C axis)."""
        z = z.float()  # under bf16 autocast: round in float32 (elementwise ops keep it), not on bf16's coarse grid
        lv = self._view(self._levels, z.ndim, dim)
        half_w = torch.div(lv, 2, rounding_mode="floor")
        q = round_ste(self.bound(z, dim))  # integers in [-L//2, (L-1)//2]
        codes = q / half_w
        digits = (q.detach() + half_w).round().long()
        indices = (digits * self._view(self._basis, z.ndim, dim)).sum(dim)
        return codes, indices

    def indices_to_codes(self, indices: torch.Tensor, dim: int = 1) -> torch.Tensor:
        """indices (B, ...) int -> codes with a channel axis inserted at `dim`."""
        idx = indices.long().unsqueeze(dim)
        lv = self._view(self._levels, idx.ndim, dim)
        digits = torch.div(idx, self._view(self._basis, idx.ndim, dim), rounding_mode="floor") % lv.long()
        half_w = torch.div(lv, 2, rounding_mode="floor")
        return (digits.float() - half_w) / half_w
