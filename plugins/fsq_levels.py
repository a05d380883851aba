"""FSQ codes as discrete levels: what the predict heads read (one-hot) and predict (logits per level).

A code channel with L levels holds one of the values (d - L//2) / (L//2) for a digit d in 0..L-1
(magtask.tokenizer.fsq). The heads see each channel one-hot (sum(levels) input channels) and
output sum(levels) logits per position: channel i's logits are the slice offsets[i]:offsets[i+1].
Taking the argmax per channel lands exactly on the FSQ grid, so a predicted dot stays crisp
instead of decoding an average of codes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _half(levels, like: torch.Tensor, dim: int = 1) -> torch.Tensor:
    shape = [1] * like.ndim
    shape[dim] = -1
    return torch.tensor([l // 2 for l in levels], dtype=torch.float32, device=like.device).view(shape)


def offsets(levels) -> list[int]:
    out = [0]
    for l in levels:
        out.append(out[-1] + int(l))
    return out


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


def cross_entropy(logits: torch.Tensor, target_codes: torch.Tensor, levels) -> torch.Tensor:
    """logits (B, sum(levels), ...), target codes (B, C, ...) -> (B, ...) summed over channels."""
    d, o = to_digits(target_codes, levels), offsets(levels)
    return sum(F.cross_entropy(logits[:, o[i]:o[i + 1]], d[:, i], reduction="none") for i in range(len(levels)))


def to_codes(logits: torch.Tensor, levels) -> torch.Tensor:
    """logits (B, sum(levels), ...) -> codes (B, C, ...): each channel's most likely level, on the grid."""
    o = offsets(levels)
    d = torch.stack([logits[:, o[i]:o[i + 1]].argmax(1) for i in range(len(levels))], 1).float()
    half = _half(levels, d)
    return (d - half) / half


def to_indices(codes: torch.Tensor, levels) -> torch.Tensor:
    """codes (B, C, ...) -> token indices (B, ...) as FSQ numbers them (first channel fastest)."""
    d, basis, out = to_digits(codes, levels), 1, 0
    for i, l in enumerate(levels):
        out = out + d[:, i] * basis
        basis *= int(l)
    return out


def dot_token_iou(pred: torch.Tensor, truth: torch.Tensor, past: torch.Tensor, levels) -> float:
    """Of the tokens where the truth or the prediction differs from each clip's background token (the
    most common token of its past codes), the fraction predicted exactly: 0 for a head that erases
    the dot, 1 for a perfect one. pred, truth (N, C, t, h, w); past (N, C, tp, h, w)."""
    pi, ti = to_indices(pred, levels), to_indices(truth, levels)
    bg = to_indices(past, levels).flatten(1).mode(1).values.view(-1, *([1] * (pi.ndim - 1)))
    union = (pi != bg) | (ti != bg)
    return float(((pi == ti) & union).sum()) / max(int(union.sum()), 1)
