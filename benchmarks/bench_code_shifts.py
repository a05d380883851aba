"""How well a shift on the code grid (blocks.grid_shifts.shift_clip, the code-only predictors' `-o shift`)
reproduces what the tokenizer makes of the shifted video: is the augmentation on your tokenizer's
distribution?

    python benchmarks/bench_code_shifts.py [--data FILE] [--tokenizer T] [--videos 64] [--split val]

Per offset (dy, dx) in cells: encodes the videos moved by (dy, dx) x the tokenizer's cell size in
pixels (edge pixels repeated into the gap), and compares those codes with shift_clip of the
unshifted videos' codes. Prints a markdown table: the fraction of cells with equal codes, overall,
in the interior (two cells from the edge) and on the outermost ring, the mean L1 distance in grid
steps, and the fraction of cells off by the content threshold or more (the predictors'
content_steps); the last column is the same comparison for the codes left unshifted. A first line
says how often each ring of cells reads its clip's most common code.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from magtask.data.dataset import load_dataset
from magtask.data.defaults import default_dataset_path
from magtask.data.splits import SPLIT_NAMES
from magtask.tokenizer.resolve import open_tokenizer
from magtask_plugins.blocks.code_predict import default_content_steps
from magtask_plugins.blocks.grid_shifts import shift_clip
from magtask_plugins.tasks.predict.codes import encode_frames

OFFSETS = ((0, 1), (1, 0), (1, 1), (0, 2), (-2, 1))


def moved_video(v: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """(N, T, 3, H, W) -> the same moved by (dy, dx) pixels, edge pixels repeated into the gap."""
    p = max(abs(dy), abs(dx), 1)
    big = np.pad(v, ((0, 0), (0, 0), (0, 0), (p, p), (p, p)), mode="edge")
    h, w = v.shape[-2:]
    return np.ascontiguousarray(big[..., p - dy:p - dy + h, p - dx:p - dx + w])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="dataset file (default: the default dataset)")
    ap.add_argument("--tokenizer", default=None, help="tokenizer checkpoint (default: the shipped one)")
    ap.add_argument("--videos", type=int, default=64)
    ap.add_argument("--split", default="val", choices=SPLIT_NAMES)
    args = ap.parse_args()
    ds = load_dataset(args.data or default_dataset_path(quiet=True))
    tok = open_tokenizer(args.tokenizer, None).eval()
    grid = tok.grid
    idx = ds.indices(SPLIT_NAMES.index(args.split))[:args.videos]
    v = np.asarray(ds.videos[idx])
    digits = grid.digits(encode_frames(tok, v))  # (N, C, T, h, w)
    n, _, _, h, w = digits.shape
    cell = ds.size // w
    far = default_content_steps(grid.levels)
    mode = grid.indices_from_digits(digits).flatten(1).mode(1).values
    bg = grid.digits_from_indices(mode)  # (N, C)
    at_mode = grid.indices_from_digits(digits) == mode[:, None, None, None]
    rings = [round(float(torch.cat([at_mode[..., r, r:w - r], at_mode[..., h - 1 - r, r:w - r],
                                    at_mode[..., r:h - r, r], at_mode[..., r:h - r, w - 1 - r]], -1).float().mean()), 2)
             for r in range(min(h, w) // 2)]
    print(f"{len(idx)} {args.split} videos, cells of {cell} px, content threshold {far} grid steps; "
          f"cells reading the clip's most common code, ring 0 (outermost) inwards: {rings}\n")
    content = (digits - bg[:, :, None, None, None]).abs().sum(1) >= far
    print("| offset (cells) | equal | interior | ring | mean L1 | off by >= threshold | unshifted: equal |")
    print("|---|---|---|---|---|---|---|")
    for dy, dx in OFFSETS:
        truth = grid.digits(encode_frames(tok, moved_video(v, dy * cell, dx * cell)))
        ours = torch.stack([shift_clip(digits[k], bg[k], content[k], dy, dx) for k in range(n)])
        eq = (ours == truth).all(1).float()
        l1 = (ours - truth).abs().sum(1).float()
        ring = torch.cat([eq[..., [0, -1], :].flatten(2), eq[..., 1:-1, [0, -1]].flatten(2)], -1)
        same = (digits == truth).all(1).float().mean()
        print(f"| {dy}, {dx} | {eq.mean():.3f} | {eq[..., 2:-2, 2:-2].mean():.3f} | {ring.mean():.3f} | "
              f"{l1.mean():.3f} | {(l1 >= far).float().mean():.4f} | {same:.3f} |")


if __name__ == "__main__":
    main()
