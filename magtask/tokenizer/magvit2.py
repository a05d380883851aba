"""Our implementation of magvit2-pytorch 0.5.1's `VideoTokenizer`, so its checkpoints run in magtask.

The people this tool is for trained their tokenizer with the PyPI package magvit2-pytorch; that
package cannot be a run-time dependency here (see issue 8), so this module re-implements the layer
kinds people use, with the package's parameter names (its state dicts load strictly) and the same
arithmetic in the same order (tests/test_magvit2.py checks codes equal and frames within 1e-5
against the package's own outputs).

    video (B, T, 3, H, W) in [0, 1]      magtask's layout; the package's is (B, 3, T, H, W), same range
      -> [pad s-1 zero frames in front]  causal: the first frame is encoded on its own time step
      -> conv_in                          causal 3D conv (time padded on the left only)
      -> encoder_layers                   residual | consecutive_residual | compress_space | compress_time
      -> (a LayerNorm the package builds and saves but never applies)  features (B, D, t, h, w)
      -> quantizers.project_in            latents (B, C, t, h, w)  C = len(fsq_levels) or log2(codebook_size)
      -> FSQ or LFQ                       codes (B, C, t, h, w) on the grid, indices (B, t, h, w)
    decode: project_out -> decoder_layers (mirrored) -> conv_out -> drop the s-1 padded frames

Time: with `video_contains_first_frame` (the package's default, kept in our config) a video of
T = 1 + k*s frames gives 1 + k latent steps; without it T = k*s frames give k steps.
Layer kinds not implemented here (attention, gateloop, conditioning) are refused in one line.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from magtask.errors import MagtaskError
from magtask.tokenizer.common import TokenizerBase

ARCH = "magvit2-pytorch"
SUPPORTED_LAYERS = ("residual", "consecutive_residual", "compress_space", "compress_time")
KNOWN_UNSUPPORTED = ("cond_residual", "attend_space", "linear_attend_space", "gateloop_time", "attend_time",
                     "cond_attend_space", "cond_linear_attend_space", "cond_attend_time")

# The package's constructor defaults (0.5.1) for what shapes the forward pass.
PACKAGE_DEFAULTS = {
    "image_size": None,
    "layers": ["residual", "residual", "residual"],
    "residual_conv_kernel_size": 3,
    "num_codebooks": 1,
    "codebook_size": None,
    "channels": 3,
    "init_dim": 64,
    "max_dim": None,  # float('inf') in the package
    "dim_cond": None,
    "input_conv_kernel_size": [7, 7, 7],
    "output_conv_kernel_size": [3, 3, 3],
    "pad_mode": "constant",
    "lfq_spherical": False,
    "lfq_soft_clamp_input_value": 10.0,
    "use_fsq": False,
    "fsq_levels": None,
    "separate_first_frame_encoding": False,
}
# magtask's own keys, beside the package's
EXTRA_DEFAULTS = {"arch": ARCH, "video_contains_first_frame": True, "frames": None, "size": None}


# -- config ----------------------------------------------------------------------------------------

def _tuple3(v, what: str) -> list[int]:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return [int(v)] * 3
    if isinstance(v, (list, tuple)) and len(v) == 3 and all(isinstance(i, (int, float)) for i in v):
        return [int(i) for i in v]
    raise MagtaskError(f"magvit2 config: {what} must be an int or three ints, got {v!r}")


def _layer(entry) -> list:
    """'residual' | ('consecutive_residual', n) | ('compress_space', dim?) ... -> [kind, *params] (JSON-able)."""
    if isinstance(entry, str):
        return [entry]
    if isinstance(entry, (list, tuple)) and entry and isinstance(entry[0], str):
        return [entry[0], *entry[1:]]
    raise MagtaskError(f"magvit2 config: a layer must be a name or (name, param), got {entry!r}")


def normalize_config(raw: dict, source: str = "magvit2 config") -> dict:
    """The package's constructor arguments (any superset) -> our JSON-able config; refuses what we lack."""
    if not isinstance(raw, dict):
        raise MagtaskError(f"{source}: config must be a table of VideoTokenizer arguments, got {type(raw).__name__}")
    cfg = {k: raw.get(k, d) for k, d in PACKAGE_DEFAULTS.items()}
    cfg.update({k: raw.get(k, d) for k, d in EXTRA_DEFAULTS.items()})
    cfg["arch"] = ARCH
    if cfg["image_size"] is None:
        raise MagtaskError(f"{source}: image_size is required (the package has no default)")
    if isinstance(cfg["image_size"], (list, tuple)):
        raise MagtaskError(f"{source}: image_size must be one int (square frames), got {cfg['image_size']!r}")
    cfg["image_size"] = int(cfg["image_size"])
    layers = raw.get("layers", PACKAGE_DEFAULTS["layers"])
    if isinstance(layers, str) or not isinstance(layers, (list, tuple)):
        raise MagtaskError(f"{source}: layers must be a list of layer kinds, got {layers!r}")
    cfg["layers"] = [_layer(e) for e in layers]
    kinds = [e[0] for e in cfg["layers"]]
    bad = [k for k in kinds if k not in SUPPORTED_LAYERS]
    if bad:
        raise MagtaskError(f"{source}: magvit2 layer kinds not supported: {', '.join(dict.fromkeys(bad))} "
                           f"(supported: {', '.join(SUPPORTED_LAYERS)})")
    for e in cfg["layers"]:
        if e[0] == "consecutive_residual" and (len(e) != 2 or not isinstance(e[1], int) or e[1] < 1):
            raise MagtaskError(f"{source}: consecutive_residual needs one positive count, got {e!r}")
        if e[0] == "residual" and len(e) != 1:
            raise MagtaskError(f"{source}: residual takes no parameter, got {e!r}")
        if e[0] in ("compress_space", "compress_time") and (len(e) > 2 or (len(e) == 2 and e[1] is not None
                                                                          and not isinstance(e[1], int))):
            raise MagtaskError(f"{source}: {e[0]} takes at most one int (output width), got {e!r}")
    if cfg["dim_cond"] is not None:
        raise MagtaskError(f"{source}: conditioning (dim_cond) is not supported")
    if int(cfg["num_codebooks"]) != 1:
        raise MagtaskError(f"{source}: num_codebooks={cfg['num_codebooks']} is not supported (one codebook only)")
    m = cfg["max_dim"]
    cfg["max_dim"] = None if m is None or (isinstance(m, float) and math.isinf(m)) else int(m)
    cfg["residual_conv_kernel_size"] = _tuple3(cfg["residual_conv_kernel_size"], "residual_conv_kernel_size")
    cfg["input_conv_kernel_size"] = _tuple3(cfg["input_conv_kernel_size"], "input_conv_kernel_size")
    cfg["output_conv_kernel_size"] = _tuple3(cfg["output_conv_kernel_size"], "output_conv_kernel_size")
    for key in ("residual_conv_kernel_size", "input_conv_kernel_size", "output_conv_kernel_size"):
        if any(k % 2 == 0 for k in cfg[key][1:]):
            raise MagtaskError(f"{source}: {key} needs odd height and width, got {cfg[key]}")
    if cfg["pad_mode"] not in ("constant", "reflect", "replicate", "circular"):
        raise MagtaskError(f"{source}: unknown pad_mode {cfg['pad_mode']!r}")
    cfg["use_fsq"] = bool(cfg["use_fsq"])
    if cfg["use_fsq"]:
        levels = cfg["fsq_levels"]
        if not isinstance(levels, (list, tuple)) or not levels or any(int(l) < 3 for l in levels):
            raise MagtaskError(f"{source}: use_fsq needs fsq_levels, a list of ints >= 3, got {levels!r}")
        cfg["fsq_levels"] = [int(l) for l in levels]
        cfg["codebook_size"] = None
    else:
        size = cfg["codebook_size"]
        if not isinstance(size, int) or size < 2 or not math.log2(size).is_integer():
            raise MagtaskError(f"{source}: LFQ needs codebook_size, a power of two, got {size!r} "
                               f"(or set use_fsq with fsq_levels)")
        cfg["fsq_levels"] = None
    cfg["lfq_spherical"] = bool(cfg["lfq_spherical"])
    sc = cfg["lfq_soft_clamp_input_value"]
    cfg["lfq_soft_clamp_input_value"] = None if sc is None else float(sc)
    cfg["separate_first_frame_encoding"] = bool(cfg["separate_first_frame_encoding"])
    cfg["video_contains_first_frame"] = bool(cfg["video_contains_first_frame"])
    cfg["channels"], cfg["init_dim"] = int(cfg["channels"]), int(cfg["init_dim"])
    if cfg["channels"] != 3:
        raise MagtaskError(f"{source}: channels={cfg['channels']}; magtask videos are RGB (3 channels)")
    s = 2 ** sum(e[0] == "compress_time" for e in cfg["layers"])
    if cfg["size"] is None:
        cfg["size"] = cfg["image_size"]
    if cfg["frames"] is None:
        cfg["frames"] = 17 if (s > 1 and cfg["video_contains_first_frame"]) else 16
    return cfg


# -- layers (parameter names as in the package) ---------------------------------------------------

class CausalConv3d(nn.Module):
    """3D conv, time padded on the left only (pad_mode used only when the clip is longer than the pad)."""

    def __init__(self, chan_in: int, chan_out: int, kernel_size: list[int], pad_mode: str = "constant"):
        super().__init__()
        kt, kh, kw = kernel_size
        self.pad_mode = pad_mode
        self.time_pad = kt - 1
        self.padding = (kw // 2, kw // 2, kh // 2, kh // 2, kt - 1, 0)
        self.conv = nn.Conv3d(chan_in, chan_out, tuple(kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mode = self.pad_mode if self.time_pad < x.shape[2] else "constant"
        return self.conv(F.pad(x, self.padding, mode=mode))


class SqueezeExcite(nn.Module):
    """Per-frame global-context gate: softmax-pooled spatial context -> MLP -> sigmoid gates."""

    def __init__(self, dim: int, dim_hidden_min: int = 16):
        super().__init__()
        hidden = max(dim_hidden_min, dim // 2)
        self.to_k = nn.Conv2d(dim, 1, 1)
        self.net = nn.Sequential(nn.Conv2d(dim, hidden, 1), nn.LeakyReLU(0.1), nn.Conv2d(hidden, dim, 1),
                                 nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The package's arithmetic (1x1 convs on each frame), written as matrix products on the
        # (B, C, T, H, W) layout: no per-frame copy of x, no 1x1-conv dispatch for a (b f, c) matrix.
        b, c, f, h, w = x.shape
        flat = x.reshape(b, c, f, h * w)
        logits = torch.matmul(self.to_k.weight.view(1, 1, c), x.reshape(b, c, f * h * w)).view(b, f, h * w)
        context = (logits + self.to_k.bias).softmax(dim=-1)  # over each frame's positions
        pooled = torch.matmul(flat.transpose(1, 2), context[..., None]).reshape(b * f, c)
        first, _, second, _ = self.net
        hidden = F.leaky_relu(F.linear(pooled, first.weight.flatten(1), first.bias), 0.1)
        gates = torch.sigmoid(F.linear(hidden, second.weight.flatten(1), second.bias))  # (b f) c
        return gates.view(b, f, c).transpose(1, 2)[..., None, None] * x


class ResidualUnit(nn.Module):
    """x + SE(elu(conv1x1(elu(causal_conv(x)))))."""

    def __init__(self, dim: int, kernel_size: list[int]):
        super().__init__()
        self.fn = nn.Sequential(CausalConv3d(dim, dim, kernel_size), nn.ELU(inplace=True), nn.Conv3d(dim, dim, 1),
                                nn.ELU(inplace=True), SqueezeExcite(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x) + x


class SpatialDownsample2x(nn.Module):
    def __init__(self, dim: int, dim_out: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim_out, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = self.conv(x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w))
        return y.reshape(b, t, *y.shape[1:]).permute(0, 2, 1, 3, 4)


class TimeDownsample2x(nn.Module):
    """Causal strided conv over time: left pad 2, kernel 3, stride 2 (t -> ceil(t / 2))."""

    def __init__(self, dim: int, dim_out: int):
        super().__init__()
        self.conv = nn.Conv1d(dim, dim_out, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = self.conv(F.pad(x.permute(0, 3, 4, 1, 2).reshape(b * h * w, c, t), (2, 0)))
        return y.reshape(b, h, w, *y.shape[1:]).permute(0, 3, 4, 1, 2)


class SpatialUpsample2x(nn.Module):
    """1x1 conv to 4x channels, SiLU, depth-to-space."""

    def __init__(self, dim: int, dim_out: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(dim, dim_out * 4, 1), nn.SiLU(), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = self.net(x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w))
        return y.reshape(b, t, *y.shape[1:]).permute(0, 2, 1, 3, 4)


class _TimeShuffle(nn.Module):
    """(N, c*2, t) -> (N, c, t*2): channel pair (2i, 2i+1) becomes frames (2t, 2t+1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c2, t = x.shape
        return x.reshape(n, c2 // 2, 2, t).permute(0, 1, 3, 2).reshape(n, c2 // 2, t * 2)


class TimeUpsample2x(nn.Module):
    def __init__(self, dim: int, dim_out: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(dim, dim_out * 2, 1), nn.SiLU(), _TimeShuffle())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = self.net(x.permute(0, 3, 4, 1, 2).reshape(b * h * w, c, t))
        return y.reshape(b, h, w, *y.shape[1:]).permute(0, 3, 4, 1, 2)


class _ChannelsLast(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, *range(2, x.ndim), 1)


class _ChannelsFirst(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, x.ndim - 1, *range(1, x.ndim - 1))


# -- quantizers (as vector-quantize-pytorch's FSQ / LFQ, the versions magvit2-pytorch 0.5.1 installs) -

class FSQ(nn.Module):
    """Finite scalar quantization; channel-last in, channel-last out. Codes are in [-1, 1]."""

    def __init__(self, levels: list[int], dim: int):
        super().__init__()
        self.levels = list(levels)
        self.register_buffer("_levels", torch.tensor(levels, dtype=torch.int32), persistent=False)
        self.register_buffer("_basis", torch.cumprod(torch.tensor([1] + levels[:-1]), dim=0, dtype=torch.int32),
                             persistent=False)
        self.codebook_dim = len(levels)
        self.codebook_size = math.prod(levels)
        has_proj = dim != self.codebook_dim
        self.project_in = nn.Linear(dim, self.codebook_dim) if has_proj else nn.Identity()
        self.project_out = nn.Linear(self.codebook_dim, dim) if has_proj else nn.Identity()

    def quantize(self, z: torch.Tensor, eps: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
        """z (..., d) -> (codes (..., d) on the grid, indices (...) int64)."""
        z = z.float()
        half_l = (self._levels - 1) * (1 + eps) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half_l)
        bounded = torch.tanh(z + shift) * half_l - offset
        half_width = self._levels // 2
        codes = bounded.round() / half_width
        indices = ((codes * half_width + half_width) * self._basis).sum(dim=-1).round().to(torch.int32)
        return codes, indices.long()

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        level = (indices[..., None] // self._basis) % self._levels
        half_width = self._levels // 2
        return (level - half_width) / half_width


class LFQ(nn.Module):
    """Lookup-free quantization: the sign of each channel is one bit (index bits most significant first)."""

    def __init__(self, codebook_size: int, dim: int, spherical: bool = False, soft_clamp: float | None = 10.0):
        super().__init__()
        self.codebook_size = codebook_size
        self.codebook_dim = int(math.log2(codebook_size))
        self.spherical = spherical
        self.soft_clamp = soft_clamp
        self.codebook_scale = 1.0
        has_proj = dim != self.codebook_dim
        self.project_in = nn.Linear(dim, self.codebook_dim) if has_proj else nn.Identity()
        self.project_out = nn.Linear(self.codebook_dim, dim) if has_proj else nn.Identity()
        self.register_buffer("mask", 2 ** torch.arange(self.codebook_dim - 1, -1, -1))  # persistent, as there

    def _l2norm(self, t: torch.Tensor) -> torch.Tensor:
        return F.normalize(t, dim=-1) * self.codebook_scale if self.spherical else t

    def quantize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.float()
        if self.soft_clamp is not None:
            x = (x / self.soft_clamp).tanh() * self.soft_clamp
        x = self._l2norm(x)
        value = torch.ones_like(x) * self.codebook_scale
        quantized = torch.where(x > 0, value, -value)
        indices = ((quantized > 0).int() * self.mask.int()).sum(dim=-1)
        return self._l2norm(quantized), indices.long()

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        bits = ((indices[..., None].int() & self.mask) != 0).float()
        return self._l2norm(bits * self.codebook_scale * 2 - self.codebook_scale)


# -- the tokenizer ---------------------------------------------------------------------------------

class Magvit2Tokenizer(TokenizerBase, nn.Module):
    """magvit2-pytorch's VideoTokenizer (inference), behind magtask's tokenizer API."""

    arch = ARCH

    causal = True

    def __init__(self, config: dict):
        super().__init__()
        cfg = normalize_config(config)
        self.config = cfg
        dim = cfg["init_dim"]
        ch = cfg["channels"]
        max_dim = cfg["max_dim"] if cfg["max_dim"] is not None else math.inf
        self.conv_in = CausalConv3d(ch, dim, cfg["input_conv_kernel_size"], cfg["pad_mode"])
        self.conv_in_first_frame: nn.Module = nn.Identity()
        self.conv_out_first_frame: nn.Module = nn.Identity()
        if cfg["separate_first_frame_encoding"]:
            kin, kout = cfg["input_conv_kernel_size"][1:], cfg["output_conv_kernel_size"][1:]
            self.conv_in_first_frame = nn.Conv2d(ch, dim, tuple(kin), padding=[k // 2 for k in kin])
            self.conv_out_first_frame = nn.Conv2d(dim, ch, tuple(kout), padding=[k // 2 for k in kout])
        self.encoder_layers = nn.ModuleList()
        self.decoder_layers = nn.ModuleList()
        self.conv_out = CausalConv3d(dim, ch, cfg["output_conv_kernel_size"], cfg["pad_mode"])
        k = cfg["residual_conv_kernel_size"]
        space = time = 1
        for kind, *params in cfg["layers"]:
            dim_out = dim
            if kind == "residual":
                enc, dec = ResidualUnit(dim, k), ResidualUnit(dim, k)
            elif kind == "consecutive_residual":
                enc = nn.Sequential(*[ResidualUnit(dim, k) for _ in range(params[0])])
                dec = nn.Sequential(*[ResidualUnit(dim, k) for _ in range(params[0])])
            else:  # compress_space / compress_time: width doubles unless given, capped by max_dim
                dim_out = int(min(params[0] if params and params[0] is not None else dim * 2, max_dim))
                if kind == "compress_space":
                    enc, dec = SpatialDownsample2x(dim, dim_out), SpatialUpsample2x(dim_out, dim)
                    space *= 2
                else:
                    enc, dec = TimeDownsample2x(dim, dim_out), TimeUpsample2x(dim_out, dim)
                    time *= 2
            self.encoder_layers.append(enc)
            self.decoder_layers.insert(0, dec)
            dim = dim_out
        self.encoder_layers.append(nn.Sequential(_ChannelsLast(), nn.LayerNorm(dim), _ChannelsFirst()))
        self.feature_dim = dim
        self._space, self._time = space, time
        if cfg["use_fsq"]:
            self.quantizers: nn.Module = FSQ(cfg["fsq_levels"], dim)
        else:
            self.quantizers = LFQ(cfg["codebook_size"], dim, cfg["lfq_spherical"], cfg["lfq_soft_clamp_input_value"])

    # -- geometry ---------------------------------------------------------------------------------
    @property
    def temporal_stride(self) -> int:
        return self._time

    @property
    def spatial_stride(self) -> int:
        return self._space

    @property
    def grid(self):
        from magtask.tokenizer.grid import CodeGrid

        q = self.quantizers
        return CodeGrid.fsq(q.levels) if isinstance(q, FSQ) else CodeGrid.lfq(q.codebook_dim, q.spherical)

    @property
    def time_padding(self) -> int:
        return self._time - 1 if self.config["video_contains_first_frame"] else 0

    def latent_steps(self, frames: int) -> int:
        s = self._time
        if self.config["video_contains_first_frame"]:
            return 1 + (frames - 1) // s
        return frames // s

    def frames_of(self, steps: int) -> int:
        s = self._time
        return 1 + (steps - 1) * s if self.config["video_contains_first_frame"] else steps * s

    def _check_geometry(self, frames: int, height: int, width: int) -> None:
        s, p = self._time, self._space
        if self.config["video_contains_first_frame"]:
            if frames < 1 or (frames - 1) % s:
                hint = (" (or set video_contains_first_frame: false in the tokenizer config for videos of a "
                        "multiple of it)" if frames % s == 0 and frames else "")
                raise MagtaskError(f"video has {frames} frames; this magvit2 tokenizer needs 1 + a multiple of its "
                                   f"temporal stride {s}{hint}")
        elif frames < s or frames % s:
            raise MagtaskError(f"video has {frames} frames; this magvit2 tokenizer (video_contains_first_frame "
                               f"false) needs a positive multiple of its temporal stride {s}")
        if height < p or width < p or height % p or width % p:
            raise MagtaskError(f"video frames are {height}x{width}; this magvit2 tokenizer needs height and width "
                               f"that are multiples of its spatial stride {p} (trained on "
                               f"{self.config['image_size']}x{self.config['image_size']})")

    # -- the package's encode / decode, on its layout (B, 3, T, H, W) ------------------------------
    def features(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> encoder output before the quantizer (B, D, t, h, w), as the package's encode()."""
        tp = self.time_padding
        first = self.config["video_contains_first_frame"]
        if first:
            video = F.pad(video, (0, 0, 0, 0, tp, 0), value=0.0)
        if self.config["separate_first_frame_encoding"] and first:
            first_frame = self.conv_in_first_frame(video[:, :, tp])
            x = self.conv_in(video[:, :, tp + 1:])
            x = torch.cat([first_frame[:, :, None], x], dim=2)
            x = F.pad(x, (0, 0, 0, 0, tp, 0), value=0.0)
        else:
            x = self.conv_in(video)
        # The package loops `zip(self.encoder_layers, self.has_cond_across_layers)`: one flag per configured
        # layer, so its final LayerNorm (encoder_layers[-1]) is built and saved but never applied. Same here.
        for layer in self.encoder_layers[:-1]:
            x = layer(x)
        return x

    def decode_features(self, x: torch.Tensor) -> torch.Tensor:
        """decoder input (B, D, t, h, w) -> video (B, 3, T, H, W), unclamped, as the package's decode()."""
        for layer in self.decoder_layers:
            x = layer(x)
        tp = self.time_padding
        first = self.config["video_contains_first_frame"]
        if self.config["separate_first_frame_encoding"] and first:
            out_first = self.conv_out_first_frame(x[:, :, tp])
            out = self.conv_out(x[:, :, tp + 1:])
            return torch.cat([out_first[:, :, None], out], dim=2)
        video = self.conv_out(x)
        return video[:, :, tp:] if first else video

    # -- magtask's API ----------------------------------------------------------------------------
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """video (B, T, 3, H, W) in [0, 1] -> latents (B, C, t, h, w): project_in of the encoder output."""
        self._check_video(video)
        feats = self.features(video.float().permute(0, 2, 1, 3, 4).contiguous())
        b, d, t, h, w = feats.shape
        z = self.quantizers.project_in(feats.permute(0, 2, 3, 4, 1).reshape(b, t * h * w, d))
        return z.reshape(b, t, h, w, -1).permute(0, 4, 1, 2, 3)

    def quantize(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """latents (B, C, t, h, w) -> (codes (B, C, t, h, w) on the grid, indices (B, t, h, w) int64)."""
        codes, indices = self.quantizers.quantize(latents.permute(0, 2, 3, 4, 1))
        return codes.permute(0, 4, 1, 2, 3), indices

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        if indices.dtype.is_floating_point:
            raise MagtaskError(f"token indices must be integers, got {indices.dtype}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.codebook_size):
            raise MagtaskError(f"token indices must be in 0..{self.codebook_size - 1}, "
                               f"found {int(indices.min())}..{int(indices.max())}")
        return self.quantizers.indices_to_codes(indices.long()).permute(0, 4, 1, 2, 3)

    def decode_raw(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, C, t, h, w) -> video (B, T, 3, H, W), not clamped (the package's decode output)."""
        x = self.quantizers.project_out(codes.permute(0, 2, 3, 4, 1))  # channel-last, as the package
        video = self.decode_features(x.permute(0, 4, 1, 2, 3))
        return video.permute(0, 2, 1, 3, 4)


# -- state dicts -----------------------------------------------------------------------------------

# Training-only parts of the package's VideoTokenizer: never used to tokenize, ignored on load.
IGNORED_PREFIXES = ("discr.", "multiscale_discrs.", "vgg.")
WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DistributedDataParallel / torch.compile


def _few(names: list[str], n: int = 4) -> str:
    return ", ".join(names[:n]) + (f" (+{len(names) - n} more)" if len(names) > n else "")


def load_state(model: Magvit2Tokenizer, state: dict, source: str) -> Magvit2Tokenizer:
    """Strictly load a package state dict (discriminator/VGG keys ignored): one line names any mismatch."""
    weights = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise MagtaskError(f"{source}: state dict key {key!r} is not a string")
        for prefix in WRAPPER_PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix):]
        if key.startswith(IGNORED_PREFIXES):
            continue
        weights[key] = value
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    problems = []
    if missing:
        problems.append(f"missing keys {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_few(unexpected)}")
    not_tensor = sorted(k for k in weights if k in expected and not isinstance(weights[k], torch.Tensor))
    if not_tensor:
        problems.append(f"not tensors {_few(not_tensor)}")
    shapes = [f"{k} {tuple(weights[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in weights and k not in not_tensor and tuple(weights[k].shape) != tuple(v.shape)]
    if shapes:
        problems.append(f"shape mismatch {_few(shapes, 3)}")
    if problems:
        raise MagtaskError(f"{source}: weights do not match the magvit2 config: {'; '.join(problems)}")
    with torch.no_grad():
        for k, v in expected.items():
            src = weights[k]
            if k.endswith("quantizers.mask"):
                if not torch.equal(src.long().cpu(), v.long()):
                    raise MagtaskError(f"{source}: {k} does not match the LFQ codebook size")
                continue
            if src.is_floating_point() and not torch.isfinite(src).all():
                raise MagtaskError(f"{source}: weight {k} contains NaN or Inf")
            v.copy_(src.to(device=v.device, dtype=v.dtype))
    model.eval()
    return model
