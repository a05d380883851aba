"""The tokenizer contract: what every task and head may use of a tokenizer, and nothing else.

    encode(video)            (B, T, 3, H, W) float in [0, 1] -> latents (B, C, t, h, w), before quantizing
    quantize(latents)        -> (codes (B, C, t, h, w) on the grid, indices (B, t, h, w) int64)
    tokenize(video)          -> indices, in one call
    indices_to_codes(idx)    (B, t, h, w) int -> codes (B, C, t, h, w)
    decode(codes | indices)  -> video (B, T, 3, H, W) in [0, 1]
    latent_shape(frames, size) -> (C, t, h, w);  latent_steps(frames) -> t;  frames_of(steps) -> T
    temporal_stride, spatial_stride   frames per latent step (after the first, for tokenizers that
                             encode the first frame alone) and pixels per latent cell
    causal                   True when the codes of a prefix of frames never depend on later frames
    grid                     the quantizer, as arithmetic (magtask.tokenizer.grid.CodeGrid): FSQ levels,
                             LFQ bits, or none (continuous latents); grid.snap puts any code-space
                             value on the grid
    codebook_size, latent_channels, num_params(), info() (what `magtask tokenizer info` prints)

TokenizerBase implements what follows from the rest; each class supplies `config` ("frames",
"size"), `grid`, `temporal_stride`, `spatial_stride`, `causal`, `latent_steps`, `frames_of`,
`_check_geometry(frames, h, w)`, `encode`, `quantize`, `indices_to_codes`, `decode_raw` and `arch`."""

from __future__ import annotations

import math

import torch

from magtask.errors import MagtaskError


class TokenizerBase:
    arch = "magtask"
    causal = False

    @property
    def codebook_size(self) -> int:
        return int(self.grid.codebook_size)

    @property
    def latent_channels(self) -> int:
        return int(self.grid.channels)

    def latent_shape(self, frames: int | None = None, size: int | None = None) -> tuple[int, int, int, int]:
        """(C, t, h, w) of the latents of one video of `frames` frames, `size` x `size` pixels."""
        frames = self.config["frames"] if frames is None else frames
        size = self.config["size"] if size is None else size
        self._check_geometry(frames, size, size)
        p = self.spatial_stride
        return (self.latent_channels, self.latent_steps(frames), size // p, size // p)

    def info(self) -> dict:
        """Architecture, quantizer, codebook size, strides, causal, parameter count (JSON-able)."""
        frames, size = self.config.get("frames"), self.config.get("size")
        res = {"arch": self.arch, "quantizer": self.grid.describe(), "grid": self.grid.to_json(),
               "codebook_size": self.grid.codebook_size, "latent_channels": self.latent_channels,
               "temporal_stride": self.temporal_stride, "spatial_stride": self.spatial_stride,
               "causal": bool(self.causal), "params": self.num_params()}
        if frames and size:
            res.update(video_shape=[frames, 3, size, size], latent_shape=list(self.latent_shape(frames, size)),
                       compression_ratio=self.compression_ratio(frames, size))
        return res

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
