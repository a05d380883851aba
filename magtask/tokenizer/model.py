"""The magtask video tokenizer: a small MAGVIT-v2-style autoencoder with an FSQ bottleneck.

    video (B, T, 3, H, W) in [0, 1]
      -> patchify p x p (space-to-depth)           (B, 3p^2, T, H/p, W/p)
      -> causal (2+1)D residual blocks, width w     spatial 3x3 conv, then temporal conv padded on the left only
      -> causal temporal grouping (stride s)        latent step j sees frames <= s*j + s - 1 only
      -> more blocks, 1x1 to C channels             latents (B, C, T/s, H/p, W/p), continuous
      -> FSQ                                        codes (same shape), indices (B, T/s, H/p, W/p)
    decoder mirrors it (also causal): latent step j -> frames s*j .. s*j + s - 1, depth-to-space.

Causal in time: the codes of frames 0..k-1 (k a multiple of the temporal stride) never depend on
later frames, so a prefix of a video tokenizes the same alone as inside the whole video (that is
what next-frame prediction on codes needs). Normalization is per position (RMS over channels), so
no statistic mixes frames either.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from magtask.errors import MagtaskError
from magtask.tokenizer.common import TokenizerBase
from magtask.tokenizer.fsq import FSQ

DEFAULT_CONFIG = {
    "patch": 4,  # spatial stride
    "temporal_stride": 2,
    "width": 64,
    "enc_blocks": 2,  # at full frame rate, before temporal grouping
    "mid_blocks": 2,  # at latent rate (encoder and decoder each)
    "dec_blocks": 2,  # at full frame rate, after temporal ungrouping
    "kernel_t": 3,
    "levels": [8, 5, 5, 5],
    "frames": 16,  # what it was trained on (informational; any multiple of temporal_stride works)
    "size": 64,
}


# Sane bounds, checked before any weight is allocated (width 3000 alone would be gigabytes).
BOUNDS = {"patch": (1, 16), "temporal_stride": (1, 8), "width": (4, 1024), "enc_blocks": (0, 16),
          "mid_blocks": (0, 16), "dec_blocks": (0, 16), "kernel_t": (1, 9), "frames": (1, 4096), "size": (1, 4096)}
MAX_CODEBOOK = 1 << 20


def check_config(cfg: dict, error: type[Exception] = MagtaskError) -> None:
    """Raise `error` (one line) unless every bounded key of `cfg` present is an integer within BOUNDS,
    `levels` is 1-8 integers in 2..64 with at most MAX_CODEBOOK codes, and (where both are given) the
    trained-on frames and size are multiples of the temporal and spatial strides."""
    for key, (lo, hi) in BOUNDS.items():
        v = cfg.get(key, DEFAULT_CONFIG[key])
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise error(f"tokenizer {key} must be an integer in {lo}..{hi}, got {v!r}")
    levels = cfg.get("levels", DEFAULT_CONFIG["levels"])
    if not isinstance(levels, (list, tuple)) or not 1 <= len(levels) <= 8 or \
            any(isinstance(l, bool) or not isinstance(l, int) or not 2 <= l <= 64 for l in levels) or \
            math.prod(levels) > MAX_CODEBOOK:
        raise error(f"tokenizer levels must be 1-8 integers in 2..64 with at most {MAX_CODEBOOK} codes, got {levels!r}")
    for stride, extent in (("temporal_stride", "frames"), ("patch", "size")):
        if stride in cfg and extent in cfg and cfg[extent] % cfg[stride]:
            raise error(f"tokenizer {stride} {cfg[stride]} must divide its {extent} {cfg[extent]}")


class ChannelRMSNorm(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1, dim, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(1, keepdim=True) + 1e-6) * self.scale


class CausalBlock(nn.Module):
    """x + temporal_causal(act(spatial(act(norm(x)))))  on (B, C, T, H, W)."""

    def __init__(self, dim: int, kernel_t: int = 3):
        super().__init__()
        self.norm = ChannelRMSNorm(dim)
        self.spatial = nn.Conv3d(dim, dim, (1, 3, 3), padding=(0, 1, 1))
        self.temporal = nn.Conv3d(dim, dim, (kernel_t, 1, 1))
        self.pad_t = kernel_t - 1
        nn.init.zeros_(self.temporal.weight)
        nn.init.zeros_(self.temporal.bias)
        # identity-ish start for the temporal mixer: current frame passes through
        with torch.no_grad():
            self.temporal.weight[:, :, -1, 0, 0].copy_(torch.eye(dim) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.spatial(F.silu(self.norm(x))))
        h = F.pad(h, (0, 0, 0, 0, self.pad_t, 0))  # left (past) side only
        return x + self.temporal(h)


class VideoTokenizer(TokenizerBase, nn.Module):
    causal = True

    def __init__(self, config: dict | None = None):
        super().__init__()
        check_config(config or {})
        cfg = dict(DEFAULT_CONFIG)
        cfg.update(config or {})
        cfg["levels"] = [int(l) for l in cfg["levels"]]
        self.config = cfg
        p, s, w, kt = cfg["patch"], cfg["temporal_stride"], cfg["width"], cfg["kernel_t"]
        self.fsq = FSQ(cfg["levels"])
        c = self.fsq.dim
        pix = 3 * p * p
        # encoder
        self.enc_in = nn.Conv3d(pix, w, 1)
        self.enc_full = nn.Sequential(*[CausalBlock(w, kt) for _ in range(cfg["enc_blocks"])])
        self.enc_group = nn.Conv3d(w, w, (s, 1, 1), stride=(s, 1, 1))  # frames s*j .. s*j+s-1 -> step j
        self.enc_mid = nn.Sequential(*[CausalBlock(w, kt) for _ in range(cfg["mid_blocks"])])
        self.enc_norm = ChannelRMSNorm(w)
        self.enc_out = nn.Conv3d(w, c, 1)
        # decoder
        self.dec_in = nn.Conv3d(c, w, 1)
        self.dec_mid = nn.Sequential(*[CausalBlock(w, kt) for _ in range(cfg["mid_blocks"])])
        self.dec_ungroup = nn.Conv3d(w, w * s, 1)  # step j -> frames s*j .. s*j+s-1
        self.dec_full = nn.Sequential(*[CausalBlock(w, kt) for _ in range(cfg["dec_blocks"])])
        self.dec_norm = ChannelRMSNorm(w)
        self.dec_out = nn.Conv3d(w, pix, 1)

    # -- geometry ---------------------------------------------------------------------------------
    @property
    def temporal_stride(self) -> int:
        return int(self.config["temporal_stride"])

    @property
    def spatial_stride(self) -> int:
        return int(self.config["patch"])

    @property
    def grid(self):
        from magtask.tokenizer.grid import CodeGrid

        return CodeGrid.fsq(self.fsq.levels)

    def latent_steps(self, frames: int) -> int:
        return frames // self.temporal_stride

    def frames_of(self, steps: int) -> int:
        return steps * self.temporal_stride

    def _check_geometry(self, frames: int, height: int, width: int) -> None:
        s, p = self.temporal_stride, self.spatial_stride
        if frames < s or frames % s:
            raise MagtaskError(f"video has {frames} frames; this tokenizer needs a positive multiple of its "
                               f"temporal stride {s}")
        if height < p or width < p or height % p or width % p:
            raise MagtaskError(f"video frames are {height}x{width}; this tokenizer needs height and width that "
                               f"are multiples of its spatial stride {p} (trained on {self.config['size']}x"
                               f"{self.config['size']})")

    # -- pixels <-> patches -----------------------------------------------------------------------
    def _patchify(self, video: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = video.shape
        p = self.spatial_stride
        x = video.reshape(b, t, c, h // p, p, w // p, p)
        return x.permute(0, 2, 4, 6, 1, 3, 5).reshape(b, c * p * p, t, h // p, w // p)

    def _unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t, hh, ww = x.shape
        p = self.spatial_stride
        x = x.reshape(b, 3, p, p, t, hh, ww)
        return x.permute(0, 4, 1, 5, 2, 6, 3).reshape(b, t, 3, hh * p, ww * p)

    # -- API --------------------------------------------------------------------------------------
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """video (B, T, 3, H, W) float in [0, 1] -> continuous latents (B, C, T/s, H/p, W/p)."""
        self._check_video(video)
        x = self._patchify(video.float() * 2 - 1)
        x = self.enc_full(self.enc_in(x))
        x = self.enc_mid(self.enc_group(x))
        return self.enc_out(F.silu(self.enc_norm(x)))

    def quantize(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """latents (B, C, t, h, w) -> (codes, same shape, on the FSQ grid; indices (B, t, h, w) int64)."""
        return self.fsq(latents, dim=1)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """indices (B, t, h, w) -> codes (B, C, t, h, w)."""
        if indices.dtype.is_floating_point:
            raise MagtaskError(f"token indices must be integers, got {indices.dtype}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.codebook_size):
            raise MagtaskError(f"token indices must be in 0..{self.codebook_size - 1}, "
                               f"found {int(indices.min())}..{int(indices.max())}")
        return self.fsq.indices_to_codes(indices, dim=1)

    def decode_raw(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, C, t, h, w) -> video (B, t*s, 3, h*p, w*p), not clamped (what training sees)."""
        b, _, t, hh, ww = codes.shape
        s, w = self.temporal_stride, self.config["width"]
        x = self.dec_mid(self.dec_in(codes))
        x = self.dec_ungroup(x).reshape(b, s, w, t, hh, ww).permute(0, 2, 3, 1, 4, 5).reshape(b, w, t * s, hh, ww)
        x = self.dec_full(x)
        x = self.dec_out(F.silu(self.dec_norm(x)))
        return self._unpatchify(x) * 0.5 + 0.5
