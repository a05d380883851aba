"""Random whole-cell shifts of code grids, the way a tokenizer's codes move when its video moves.

A conv encoder's codes move with the video's content, except for a border ring it draws (its
padding): on the shipped tokenizer a 4-px shift of the video moves ~99 % of the interior codes by
exactly one cell, while the outermost ring of cells reads codes of its own (benchmarks/predict.md).
So a shift moves everything but the ring, and the ring keeps its codes wherever no content lands.
"""

from __future__ import annotations

import torch


def content_room(content: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """content (B, T, h, w) bool -> per clip the free rows above / below and columns left / right of its
    content over all steps (B,) each; h (or w) where a clip has none."""
    rows, cols = content.any(1).any(-1), content.any(1).any(-2)  # (B, h), (B, w)

    def room(a):
        n = a.shape[1]
        i = torch.arange(n)
        first = torch.where(a, i, n).min(1).values
        last = torch.where(a, i, -1).max(1).values
        return first, torch.where(a.any(1), n - 1 - last, n)

    (top, bottom), (left, right) = room(rows), room(cols)
    return top, bottom, left, right


def shift_clip(digits: torch.Tensor, bg: torch.Tensor, content: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """One clip: digits (C, T, h, w), bg (C,) its background digits, content (T, h, w) bool -> its digits
    moved by (dy, dx) whole cells, |dy| < h, |dx| < w:
      - the cells roll by (dy, dx); the cells the shift empties read the background;
      - the outermost ring keeps its own codes where no content lands on it (the background where content
        left it), and the cells the old ring would roll into read the background where they hold no content.
    Content rolled past an edge wraps around: keep the offset inside content_room."""
    _, _, h, w = digits.shape
    ring = torch.zeros(h, w, dtype=torch.bool, device=digits.device)
    ring[[0, -1]] = True
    ring[:, [0, -1]] = True
    rolled = torch.roll(digits, (dy, dx), (-2, -1))
    kept = torch.zeros(h, w, dtype=torch.bool, device=digits.device)  # cells that hold a moved cell
    kept[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = True
    from_ring = torch.roll(ring, (dy, dx), (0, 1)) & kept
    moved_content = torch.roll(content, (dy, dx), (-2, -1)) & kept
    plain = bg[:, None, None, None].expand_as(rolled)
    shifted = torch.where(kept & ~(from_ring & ~moved_content), rolled, plain)
    own = torch.where(content, plain, digits)  # the ring's own codes, none where content was
    return torch.where(ring & ~moved_content, own, shifted)


def random_shifts(digits: torch.Tensor, bg: torch.Tensor, far: int, limit: int) -> torch.Tensor:
    """digits (B, C, T, h, w) of code grids, bg (B, C) each clip's background digits -> shifted digits, same shape.

    A cell is content where its digits are >= `far` (L1 over channels) from its clip's background. Each clip
    draws one offset (dy, dx), |dy|, |dx| <= limit, uniform among those that keep all of its content on the
    grid (torch's global generator), and every step moves by it (shift_clip).
    """
    if limit <= 0:
        return digits
    content = (digits - bg[:, :, None, None, None]).abs().sum(1) >= far  # (B, T, h, w)
    top, bottom, left, right = content_room(content)
    out = digits.clone()
    for k in range(len(digits)):
        dy = int(torch.randint(-min(limit, int(top[k])), min(limit, int(bottom[k])) + 1, ()))
        dx = int(torch.randint(-min(limit, int(left[k])), min(limit, int(right[k])) + 1, ()))
        if dy or dx:
            out[k] = shift_clip(digits[k], bg[k], content[k], dy, dx)
    return out
