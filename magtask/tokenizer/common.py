"""What every tokenizer class shares: input checks, size arithmetic. Each class supplies
`config` ("frames", "size"), `latent_shape(frames, size)` and `_check_geometry(frames, h, w)`."""

from __future__ import annotations

import math

import torch

from magtask.errors import MagtaskError


class TokenizerBase:
    def compression_ratio(self, frames: int | None = None, size: int | None = None) -> float:
        """Video values / latent values (e.g. 16*3*64*64 / (4*8*16*16) = 24)."""
        frames = self.config["frames"] if frames is None else frames
        size = self.config["size"] if size is None else size
        return frames * 3 * size * size / math.prod(self.latent_shape(frames, size))

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _check_video(self, video: torch.Tensor) -> None:
        if video.ndim != 5 or video.shape[2] != 3:
            raise MagtaskError(f"videos must have shape (B, T, 3, H, W), got {tuple(video.shape)}")
        self._check_geometry(video.shape[1], video.shape[3], video.shape[4])
        if not torch.isfinite(video).all():
            raise MagtaskError("videos contain NaN or Inf")
