"""What every tokenizer class shares: input checks, size arithmetic, decode/forward/tokenize.

Each class supplies `config` ("frames", "size"), `latent_channels`, `latent_shape(frames, size)`,
`_check_geometry(frames, h, w)`, `encode`, `quantize`, `indices_to_codes` and `decode_raw`."""

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

    def decode(self, codes_or_indices: torch.Tensor) -> torch.Tensor:
        """codes (B, C, t, h, w) float or indices (B, t, h, w) int -> video (B, T, 3, H, W) in [0, 1]."""
        x = codes_or_indices
        if not x.dtype.is_floating_point:
            if x.ndim != 4:
                raise MagtaskError(f"token indices must have shape (B, t, h, w), got {tuple(x.shape)}")
            x = self.indices_to_codes(x)
        elif x.ndim != 5 or x.shape[1] != self.latent_channels:
            raise MagtaskError(f"codes must have shape (B, {self.latent_channels}, t, h, w), got {tuple(x.shape)}")
        elif not torch.isfinite(x).all():
            raise MagtaskError("codes contain NaN or Inf")
        return self.decode_raw(x).clamp(0, 1)

    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """video -> (unclamped reconstruction, indices): the training path."""
        codes, indices = self.quantize(self.encode(video))
        return self.decode_raw(codes), indices

    @torch.no_grad()
    def tokenize(self, video: torch.Tensor) -> torch.Tensor:
        """video -> indices (B, t, h, w) in one call."""
        return self.quantize(self.encode(video))[1]
