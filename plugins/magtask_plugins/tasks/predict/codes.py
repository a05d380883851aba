"""The predict task's codes: clips encoded as given (nothing else seen) and codes decoded, batched."""

from __future__ import annotations

import numpy as np
import torch


@torch.no_grad()
def encode_frames(tokenizer, videos_u8: np.ndarray, batch: int = 64, device: str = "cpu") -> torch.Tensor:
    """uint8 (N, T, 3, H, W) -> quantized codes (N, C, T/s, h, w), encoded as given (nothing else seen)."""
    parts = []
    for lo in range(0, len(videos_u8), batch):
        x = torch.from_numpy(np.array(videos_u8[lo:lo + batch], dtype=np.uint8)).to(device).float() / 255.0
        parts.append(tokenizer.quantize(tokenizer.encode(x))[0].cpu())
    return torch.cat(parts)


@torch.no_grad()
def decode_codes(tokenizer, codes: torch.Tensor, batch: int = 64, device: str = "cpu") -> torch.Tensor:
    """codes (N, C, t, h, w) -> float videos (N, t*s, 3, H, W) in [0, 1]."""
    return torch.cat([tokenizer.decode(codes[lo:lo + batch].to(device)).cpu() for lo in range(0, len(codes), batch)])
