"""The code grid: what a tokenizer's quantizer allows, as arithmetic any head can use without the tokenizer.

Every tokenizer magtask loads says what its quantizer is through one `CodeGrid` (`tokenizer.grid`);
a head receives the same object in its BuildConfig (`config.grid`). It is plain math on tensors (no
weights), saved with the head as JSON, so a head rebuilt from its run dir puts codes on the same grid.

    kind "fsq"   finite scalar quantization: channel i holds one of levels[i] values
                 (d - L//2) / (L//2) for a digit d in 0..L-1; token index = sum_i d_i * prod(levels[:i])
                 (first channel fastest; magtask's tokenizer and vector-quantize-pytorch's FSQ agree)
    kind "lfq"   lookup-free quantization: channel i is one bit, code +s if set else -s, with s = 1, or
                 1/sqrt(C) when spherical (BSQ); token index = sum_i bit_i * 2^(C-1-i) (first channel
                 most significant, as magvit2-pytorch's LFQ numbers them)
    kind "none"  continuous latents: no grid, no token indices (snap is the identity)

Per channel, both quantized kinds are categorical: `levels` gives the number of values of each
channel (FSQ: its levels; LFQ: 2 per bit), `digits(codes)` the category of each value and
`codes_from_digits` the way back, so a head can model codes as per-channel classes for any tokenizer.

`snap(values)` is the one documented way to put any code-space value on the grid: each channel to
its nearest allowed value (FSQ: round in level units after clamping to the box; LFQ: the sign, 0
counting as set). It returns (codes, indices), like a tokenizer's quantize, but it takes values in
code space (what decode accepts), not the encoder's pre-quantizer latents.
Shapes: codes (B, C, ...) with channels at `dim` (default 1); digits the same shape, int64;
indices (B, ...) int64 without the channel axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from magtask.errors import MagtaskError

KINDS = ("fsq", "lfq", "none")


@dataclass(frozen=True)
class CodeGrid:
    kind: str
    channels: int
    fsq_levels: tuple[int, ...] | None = None  # kind fsq only
    spherical: bool = False  # kind lfq only

    def __post_init__(self):
        if self.kind not in KINDS:
            raise MagtaskError(f"unknown quantizer kind {self.kind!r} (known: {', '.join(KINDS)})")
        if self.kind == "fsq" and (self.fsq_levels is None or len(self.fsq_levels) != self.channels
                                   or any(int(l) < 2 for l in self.fsq_levels)):
            raise MagtaskError(f"an FSQ grid needs one level count >= 2 per channel, got {self.fsq_levels!r} "
                               f"for {self.channels} channels")

    # -- constructors ---------------------------------------------------------------------------
    @classmethod
    def fsq(cls, levels) -> "CodeGrid":
        lv = tuple(int(l) for l in levels)
        return cls("fsq", len(lv), lv)

    @classmethod
    def lfq(cls, bits: int, spherical: bool = False) -> "CodeGrid":
        return cls("lfq", int(bits), None, bool(spherical))

    @classmethod
    def continuous(cls, channels: int) -> "CodeGrid":
        return cls("none", int(channels))

    def to_json(self) -> dict:
        return {"kind": self.kind, "channels": self.channels,
                "fsq_levels": None if self.fsq_levels is None else list(self.fsq_levels),
                "spherical": self.spherical}

    @classmethod
    def from_json(cls, d: dict) -> "CodeGrid":
        lv = d.get("fsq_levels")
        return cls(str(d["kind"]), int(d["channels"]), None if lv is None else tuple(int(l) for l in lv),
                   bool(d.get("spherical", False)))

    # -- facts ----------------------------------------------------------------------------------
    @property
    def quantized(self) -> bool:
        return self.kind != "none"

    @property
    def levels(self) -> tuple[int, ...] | None:
        """Values per channel: FSQ levels, 2 per LFQ bit; None for continuous latents."""
        if self.kind == "fsq":
            return self.fsq_levels
        if self.kind == "lfq":
            return (2,) * self.channels
        return None

    @property
    def codebook_size(self) -> int | None:
        return None if self.kind == "none" else math.prod(self.levels)

    def describe(self) -> str:
        if self.kind == "fsq":
            return f"FSQ levels {','.join(map(str, self.fsq_levels))} ({self.codebook_size} codes)"
        if self.kind == "lfq":
            return f"LFQ {self.channels} bits{' spherical' if self.spherical else ''} ({self.codebook_size} codes)"
        return f"none (continuous latents, {self.channels} channels)"

    # -- arithmetic -----------------------------------------------------------------------------
    def _need_grid(self, what: str) -> None:
        if self.kind == "none":
            raise MagtaskError(f"{what} needs a quantized tokenizer; this one has continuous latents (no code grid)")

    def _view(self, values, like: torch.Tensor, dim: int, dtype=torch.float32) -> torch.Tensor:
        shape = [1] * like.ndim
        shape[dim] = -1
        return torch.tensor(values, dtype=dtype, device=like.device).view(shape)

    def _check_channels(self, x: torch.Tensor, dim: int) -> None:
        if x.ndim < 1 or x.shape[dim] != self.channels:
            raise MagtaskError(f"codes must have {self.channels} channels at axis {dim}, got shape {tuple(x.shape)}")

    @property
    def _lfq_scale(self) -> float:
        return 1.0 / math.sqrt(self.channels) if self.spherical else 1.0

    def digits(self, codes: torch.Tensor, dim: int = 1) -> torch.Tensor:
        """codes on (or near) the grid -> each channel's category, int64 in 0..levels[i]-1 (nearest)."""
        self._need_grid("digits")
        self._check_channels(codes, dim)
        if self.kind == "lfq":
            return (codes >= 0).long()
        half = self._view([l // 2 for l in self.fsq_levels], codes, dim)
        top = self._view([l - 1 for l in self.fsq_levels], codes, dim, torch.int64)
        d = (codes.float() * half + half).round().long()
        return torch.minimum(d.clamp_min(0), top)

    def codes_from_digits(self, digits: torch.Tensor, dim: int = 1) -> torch.Tensor:
        """Per-channel categories -> codes (float32), the values decode expects."""
        self._need_grid("codes_from_digits")
        self._check_channels(digits, dim)
        if self.kind == "lfq":
            return (digits.float() * 2 - 1) * self._lfq_scale
        half = self._view([l // 2 for l in self.fsq_levels], digits, dim)
        return (digits.float() - half) / half

    def _basis(self) -> list[int]:
        if self.kind == "lfq":
            return [1 << (self.channels - 1 - i) for i in range(self.channels)]
        out, b = [], 1
        for l in self.fsq_levels:
            out.append(b)
            b *= l
        return out

    def indices_from_digits(self, digits: torch.Tensor, dim: int = 1) -> torch.Tensor:
        self._need_grid("token indices")
        self._check_channels(digits, dim)
        return (digits.long() * self._view(self._basis(), digits, dim, torch.int64)).sum(dim)

    def digits_from_indices(self, indices: torch.Tensor, dim: int = 1) -> torch.Tensor:
        self._need_grid("token indices")
        idx = indices.long().unsqueeze(dim)
        basis = self._view(self._basis(), idx, dim, torch.int64)
        return torch.div(idx, basis, rounding_mode="floor") % self._view(list(self.levels), idx, dim, torch.int64)

    def codes_from_indices(self, indices: torch.Tensor, dim: int = 1) -> torch.Tensor:
        return self.codes_from_digits(self.digits_from_indices(indices, dim), dim)

    def indices(self, codes: torch.Tensor, dim: int = 1) -> torch.Tensor:
        return self.indices_from_digits(self.digits(codes, dim), dim)

    def one_hot(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, C, ...) -> (B, sum(levels), ...) float: each channel's category one-hot."""
        d = self.digits(codes, 1)
        return torch.cat([torch.nn.functional.one_hot(d[:, i], int(l)).movedim(-1, 1)
                          for i, l in enumerate(self.levels)], 1).float()

    def snap(self, values: torch.Tensor, dim: int = 1) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Any code-space values -> (the nearest codes on the grid, their indices; None for kind none)."""
        self._check_channels(values, dim)
        if not torch.isfinite(values).all():
            raise MagtaskError("cannot put NaN or Inf values on the code grid")
        if self.kind == "none":
            return values.float(), None
        d = self.digits(values.float(), dim)
        return self.codes_from_digits(d, dim), self.indices_from_digits(d, dim)
