"""FSQ codes as discrete levels: digits, one-hot channels (what the track reader sees), token indices.

A code channel with L levels holds one of the values (d - L//2) / (L//2) for a digit d in 0..L-1
(magtask.tokenizer.fsq); one-hot, a code (B, C, ...) becomes sum(levels) channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _half(levels, like: torch.Tensor, dim: int = 1) -> torch.Tensor:
    shape = [1] * like.ndim
    shape[dim] = -1
    return torch.tensor([l // 2 for l in levels], dtype=torch.float32, device=like.device).view(shape)


def to_digits(codes: torch.Tensor, levels) -> torch.Tensor:
    """codes (B, C, ...) on the grid -> digits (B, C, ...) int64 in 0..L-1 (clamped)."""
    half = _half(levels, codes)
    d = (codes.float() * half + half).round().long()
    top = torch.tensor([l - 1 for l in levels], device=codes.device).view(half.shape)
    return torch.minimum(d.clamp_min(0), top)


def one_hot(codes: torch.Tensor, levels) -> torch.Tensor:
    """codes (B, C, ...) -> (B, sum(levels), ...) float: each channel's digit one-hot."""
    d = to_digits(codes, levels)
    return torch.cat([F.one_hot(d[:, i], int(l)).movedim(-1, 1) for i, l in enumerate(levels)], 1).float()


def to_indices(codes: torch.Tensor, levels) -> torch.Tensor:
    """codes (B, C, ...) -> token indices (B, ...) as FSQ numbers them (first channel fastest)."""
    d, basis, out = to_digits(codes, levels), 1, 0
    for i, l in enumerate(levels):
        out = out + d[:, i] * basis
        basis *= int(l)
    return out
