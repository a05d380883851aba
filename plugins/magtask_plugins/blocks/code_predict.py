"""The code-space predictor both code-only predict heads share: past codes -> future codes, learned
from the train split's codes alone (no track, no centres, no windows copied out of training videos).

    clip codes (B, C, T, h, w) -> per channel its category (config.grid.digits), one-hot
      -> per step t: steps t-window+1..t stacked (default: every past step), a conv encoder per step
         at three scales: f1 (width, h, w), f2 (2 width, h/2, w/2), f3 (4 width, h/4, w/4)
      -> core over steps on f3 (the head's, causal: step t sees steps 0..t only):
           ConvLSTM (lstm-predictor) or a transformer over the (h/4) * (w/4) tokens of every step,
           block-causal (full attention within a step, steps <= t across) (transformer-predictor)
      -> per step t a U-Net decoder: the core's output up-sampled and joined with f2 and f1 of step t
         (full-resolution skips: where things are now) -> logits of steps t+1..t+horizon, per cell
         and channel over its levels
      -> per channel its level, each channel's background level lowered by bg_bias first (the past's most
         common token): by default (`decode` mean) the expected level under softmax(logits /
         decode_temperature), rounded, so a cell the head is unsure of keeps some content where the
         argmax (`decode` argmax) would read background and lose a dot whose place is uncertain
      -> config.grid.codes_from_digits: the codes, on the tokenizer's grid

Training (the shared loop, default minibatches (clips,)): cross entropy of every step t >= `context`
(the head's default, `code_options`: -1, the last past step only, which the test asks for; or 1,
every step that has seen motion) against steps t+1..t+horizon of the same clip (teacher forcing is
exact: the inputs are true past codes), each cell weighted 1 + bg_weight where the target's code is
at least `content_steps` grid steps (L1 over channels) from the clip's most common code (its
background): the cells that carry content, not the small flicker the encoder puts on background
codes. By default content_steps is two steps of an 8-level channel, counted on the grid's finest
channel: max(2, round(2 (L - 1) / 7)) for L its most levels (2 on 8,5,5,5; 4 on 16,16,16,16),
since a finer grid flickers by more steps.
Optionally (augment) each clip is flipped / transposed on the code grid at random.
At test time the output of the last past step gives the next `horizon` steps at once (no rollout);
more steps than the horizon are rolled out, the predicted steps fed back as inputs.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from magtask import MagtaskError, Option, PredictHead
from magtask_plugins.blocks.grid_symmetries import random_mirrors

# What both code-only heads share as options (each adds its core's own).
CODE_OPTIONS = (
    Option("width", int, 32, "channels at full resolution (2x at 1/2, 4x at 1/4 where the core runs)", lo=4, hi=4096),
    Option("window", int, 0, "steps each step's encoder sees stacked (itself and the window - 1 before it); "
           "0: as many as the past has", lo=0, hi=64),
    Option("bg_weight", float, 20.0, "extra loss weight of cells whose target is content_steps grid steps or more "
           "from the clip's background code", lo=0.0, hi=1000.0),
    Option("content_steps", int, 0, "grid steps (L1 over channels) from the clip's background code at which a "
           "cell counts as content; 0: two steps of an 8-level channel on this grid (2 on 8,5,5,5; 4 on "
           "16,16,16,16)", lo=0, hi=1000),
    Option("bg_bias", float, 1.0, "at prediction, subtracted from each channel's logit of the background's level "
           "(the past's most common token): below a sure background, a cell leans to what moves", lo=0.0, hi=100.0),
    Option("decode", str, "mean", "how a cell's level is read from its logits per channel: mean = the expected "
           "level under softmax(logits / decode_temperature), rounded (keeps content the head is unsure of); "
           "argmax = the most likely level", choices=("mean", "argmax")),
    Option("decode_temperature", float, 3.0, "softmax temperature of decode=mean (above 1 weights unlikely "
           "levels up: fewer lost dots; 3 was best on the default data's val split)", lo=0.01, hi=100.0),
    Option("context", int, -1, "first step whose prediction is trained (each step t >= context predicts the next "
           "steps from steps 0..t); -1: the last past step only, the one the test asks for", lo=-1, hi=1024),
    Option("augment", bool, False, "flip / transpose each training clip on the code grid at random"),
    Option("max_cells", int, 4096, "largest latent grid (steps x h x w) the head accepts; beyond it refuses",
           lo=1, hi=10**9),
)


def code_options(**defaults) -> tuple[Option, ...]:
    """CODE_OPTIONS with some defaults set by the head (name=value)."""
    unknown = set(defaults) - {o.name for o in CODE_OPTIONS}
    if unknown:
        raise ValueError(f"no such code option: {sorted(unknown)}")
    return tuple(dataclasses.replace(o, default=defaults[o.name]) if o.name in defaults else o for o in CODE_OPTIONS)


class Block(nn.Module):
    """Residual conv block: x + conv(gelu(conv(gelu(x)))), 3x3, same size."""

    def __init__(self, ch: int):
        super().__init__()
        self.a, self.b = nn.Conv2d(ch, ch, 3, padding=1), nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return x + self.b(F.gelu(self.a(F.gelu(x))))


class ConvLSTM(nn.Module):
    """Stacked ConvLSTM over steps: (B, T, D, h, w) -> (B, T, D, h, w), step t from steps 0..t only."""

    def __init__(self, dim: int, layers: int = 1, kernel: int = 3):
        super().__init__()
        self.cells = nn.ModuleList(nn.Conv2d(2 * dim, 4 * dim, kernel, padding=kernel // 2) for _ in range(layers))

    def forward(self, x):
        b, t, d, h, w = x.shape
        for cell in self.cells:
            hid = c = x.new_zeros(b, d, h, w)
            outs = []
            for j in range(t):
                i, f, o, g = cell(torch.cat([x[:, j], hid], 1)).chunk(4, 1)
                c = torch.sigmoid(f + 1.0) * c + torch.sigmoid(i) * torch.tanh(g)
                hid = torch.sigmoid(o) * torch.tanh(c)
                outs.append(hid)
            x = x + torch.stack(outs, 1)  # residual around each layer
        return x


class BlockCausalTransformer(nn.Module):
    """Pre-norm transformer over the h*w cell tokens of every step: (B, T, D, h, w) -> same, a token of
    step t attending to every token of steps 0..t (full attention within a step, causal across steps)."""

    def __init__(self, dim: int, steps: int, h: int, w: int, depth: int = 4, heads: int = 4):
        super().__init__()
        if dim % heads:
            raise MagtaskError(f"transformer width {dim} is not divisible by heads={heads}")
        self.space = nn.Parameter(torch.randn(1, 1, h * w, dim) * 0.02)
        self.time = nn.Parameter(torch.randn(1, steps, 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        b, t, d, h, w = x.shape
        if t > self.time.shape[1]:
            raise MagtaskError(f"this head was built for at most {self.time.shape[1]} latent steps, got {t}")
        z = x.flatten(3).transpose(2, 3) + self.space + self.time[:, :t]  # (B, T, hw, D)
        step = torch.arange(t, device=x.device).repeat_interleave(h * w)
        mask = step[None, :] > step[:, None]  # True: a later step, masked
        z = self.norm(self.blocks(z.reshape(b, t * h * w, d), mask=mask))
        return x + z.view(b, t, h * w, d).transpose(2, 3).reshape(b, t, d, h, w)


def check_grid(cfg, head: str) -> None:
    """Refuse, before any work, a tokenizer without a code grid or a grid over the head's max_cells."""
    if cfg.grid is None or not cfg.grid.quantized:
        raise MagtaskError(f"{head} predicts each channel's level: it needs a quantized tokenizer (FSQ or LFQ), "
                           "this one has continuous latents")
    _, t, h, w = (int(v) for v in cfg.in_shape)
    limit = int(cfg.options.get("max_cells", CODE_OPTIONS[-1].default))
    if t * h * w > limit:
        raise MagtaskError(f"{head}: the clip's latent grid is {t}x{h}x{w} = {t * h * w} cells, over max_cells={limit} "
                           f"(its memory and time grow with it); run with -o max_cells={t * h * w} to try anyway, "
                           "or use a tokenizer with a coarser grid")


def build_predictor(cfg, head: str, core_options: tuple[str, ...], make_core) -> "CodePredictor":
    """The head's build(cfg): refuse what it cannot take (check_grid), then a CodePredictor whose core is
    make_core(dim, steps, h, w, **{the head's core_options}); the other options go to CodePredictor."""
    check_grid(cfg, head)
    options = dict(cfg.options)
    core = {k: options.pop(k) for k in core_options}
    t = cfg.task_config
    return CodePredictor(cfg.in_shape, cfg.grid, t["n_past_steps"], t["n_future_steps"],
                         lambda dim, steps, h, w: make_core(dim, steps, h, w, **core), **options)


class CodePredictor(nn.Module, PredictHead):
    """A trained predict head over one-hot code levels; `make_core(dim, steps, h, w)` builds its core, run
    on the encoder's (ceil(h/4), ceil(w/4)) grid of every step, dim = 4 x width."""

    # bf16 where the CPU has it: ~1.4x the steps in the same time (benchmarks/predict.md)
    train_defaults = {"epochs": 20, "batch_size": 16, "lr": 2e-3, "weight_decay": 1e-4, "patience": 1000,
                      "precision": "bf16"}

    def __init__(self, in_shape, grid, n_past_steps: int, n_future_steps: int, make_core, width: int = 32,
                 window: int = 0, bg_weight: float = 20.0, bg_bias: float = 1.0, context: int = -1,
                 augment: bool = False, max_cells: int = 4096, content_steps: int = 0, decode: str = "mean",
                 decode_temperature: float = 3.0):
        super().__init__()
        c, t, h, w = (int(v) for v in in_shape)
        self.grid, self.c, self.steps, self.h, self.w = grid, c, t, h, w
        self.levels = [int(l) for l in grid.levels]
        self.n_levels = sum(self.levels)
        self.horizon, self.n_past = int(n_future_steps), int(n_past_steps)
        self.bg_weight, self.bg_bias = float(bg_weight), float(bg_bias)
        self.decode, self.decode_temperature = str(decode), float(decode_temperature)
        self.content_steps = int(content_steps) or max(2, round(2 * (max(self.levels) - 1) / 7))
        last = self.n_past - 1  # always trained: the prediction the test asks for
        self.context = last if int(context) < 0 else min(int(context), last)
        self.augment = bool(augment)
        self.window = int(window) or self.n_past
        self.hp, self.wp = -(-h // 4) * 4, -(-w // 4) * 4  # padded: all-zero one-hot outside
        d1, d2, d3 = int(width), 2 * int(width), 4 * int(width)
        self.enc1 = nn.Sequential(nn.Conv2d(self.window * self.n_levels, d1, 3, padding=1), Block(d1))
        self.enc2 = nn.Sequential(nn.Conv2d(d1, d2, 3, stride=2, padding=1), Block(d2))
        self.enc3 = nn.Sequential(nn.Conv2d(d2, d3, 3, stride=2, padding=1), Block(d3))
        self.core = make_core(d3, t, self.hp // 4, self.wp // 4)
        self.up2 = nn.ConvTranspose2d(d3, d2, 2, stride=2)
        self.dec2 = nn.Sequential(nn.Conv2d(2 * d2, d2, 1), Block(d2))
        self.up1 = nn.ConvTranspose2d(d2, d1, 2, stride=2)
        self.dec1 = nn.Sequential(nn.Conv2d(2 * d1, d1, 1), Block(d1), nn.GELU())
        self.out = nn.Conv2d(d1, self.horizon * self.n_levels, 1)

    # -- the network -------------------------------------------------------------------------------
    def stacked(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, C, T, h, w) -> (B*T, window*L, hp, wp): per step the one-hot levels of itself and the
        window - 1 steps before it (zero before the first step and outside the grid)."""
        b, t, n = len(codes), codes.shape[2], self.window
        offsets = torch.tensor([0, *self.levels[:-1]], device=codes.device).cumsum(0).view(1, -1, 1, 1, 1)
        where = (self.grid.digits(codes) + offsets).permute(0, 2, 3, 4, 1)  # (B, T, h, w, C): index in 0..L-1
        # -1: no step there (before the first) or no cell (the padding)
        where = F.pad(where, (0, 0, 0, self.wp - self.w, 0, self.hp - self.h, n - 1, 0), value=-1)
        cols = torch.stack([where[:, j:j + t] for j in range(n)], 4)  # (B, T, hp, wp, window, C)
        ones = (cols >= 0).to(torch.float32)
        # a missing step or cell misses in every channel, so its 0 lands in a block nothing else writes
        cols = cols.clamp_min(0) + self.n_levels * torch.arange(n, device=codes.device).view(n, 1)
        hot = torch.zeros(b * t, self.hp, self.wp, n * self.n_levels, device=codes.device)
        hot.scatter_(3, cols.flatten(0, 1).flatten(3), ones.flatten(0, 1).flatten(3))
        return hot.permute(0, 3, 1, 2)  # channels-last in memory: the layout the CPU's convolutions prefer

    def forward(self, codes: torch.Tensor, first: int = 0) -> torch.Tensor:
        """codes (B, C, T, h, w) -> logits (B, T - first, horizon, L, h, w): at step t (t >= first) the
        levels of steps t+1..t+horizon, from steps 0..t only."""
        b, t = len(codes), codes.shape[2]
        f1 = self.enc1(self.stacked(codes))  # (B*T, d1, hp, wp)
        f2 = self.enc2(f1)  # (B*T, d2, hp/2, wp/2)
        f3 = self.enc3(f2)  # (B*T, d3, hp/4, wp/4)

        def steps_from_first(f):  # (B*T, ...) -> (B*(T - first), ...)
            return f.view(b, t, *f.shape[1:])[:, first:].flatten(0, 1)

        z = self.core(f3.view(b, t, *f3.shape[1:]))[:, first:].flatten(0, 1)
        y = self.dec2(torch.cat([self.up2(z), steps_from_first(f2)], 1))
        y = self.dec1(torch.cat([self.up1(y), steps_from_first(f1)], 1))
        y = self.out(y)[..., :self.h, :self.w]  # (B*T', horizon*L, h, w)
        return y.reshape(b, t - first, self.horizon, self.n_levels, self.h, self.w)

    def channel_logits(self, logits: torch.Tensor):
        """(..., L, h, w) -> one (..., levels[i], h, w) per channel."""
        return logits.split(self.levels, dim=-3)

    # -- training ----------------------------------------------------------------------------------
    def loss(self, clips: torch.Tensor) -> torch.Tensor:
        """Weighted per-channel level cross entropy of every step t >= context against steps t+1..t+horizon."""
        if self.training and self.augment:
            clips = random_mirrors(clips)
        t = clips.shape[2]
        first = min(self.context, t - 2)
        logits = self(clips[:, :, :t - 1], first)  # steps first..t-2 predict at least one step inside the clip
        digits = self.grid.digits(clips)  # (B, C, T, h, w)
        weight = self.cell_weight(digits)
        total, norm = clips.new_zeros(()), clips.new_zeros(())
        for k in range(1, self.horizon + 1):
            n = t - k - first  # steps first..t-k-1 predict steps first+k..t-1, k ahead
            if n <= 0:
                continue
            lg = logits[:, :n, k - 1]  # (B, n, L, h, w)
            wk = weight[:, first + k:t]  # (B, n, h, w)
            for i, part in enumerate(self.channel_logits(lg)):
                ce = F.cross_entropy(part.movedim(2, 1), digits[:, i, first + k:t], reduction="none")
                total = total + (ce * wk).sum()
            norm = norm + wk.sum() * self.c
        return total / norm

    def cell_weight(self, digits: torch.Tensor) -> torch.Tensor:
        """digits (B, C, T, h, w) -> (B, T, h, w): 1 + bg_weight where the cell is >= content_steps grid
        steps (L1 over channels) from its clip's background (the most common code), else 1."""
        bg = self.grid.digits_from_indices(self.grid.indices_from_digits(digits).flatten(1).mode(1).values)
        far = (digits - bg[:, :, None, None, None]).abs().sum(1) >= self.content_steps
        return 1.0 + self.bg_weight * far.to(torch.float32)

    # -- prediction --------------------------------------------------------------------------------
    def background(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, C, T, h, w) -> (B, C) digits of each clip's most common token."""
        idx = self.grid.indices(codes).flatten(1)
        return self.grid.digits_from_indices(idx.mode(1).values)

    def codes_of(self, logits: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
        """(B, K, L, h, w) logits, bg (B, C) background digits -> codes (B, C, K, h, w) on the tokenizer's
        grid: per channel, after lowering the background level's logit by bg_bias, the argmax or (decode
        mean) the expected level under softmax(logits / decode_temperature), rounded."""
        parts = []
        for i, p in enumerate(self.channel_logits(logits)):
            if self.bg_bias:
                hot = F.one_hot(bg[:, i], p.shape[2]).to(p.dtype).view(len(p), 1, -1, 1, 1)
                p = p - self.bg_bias * hot
            if self.decode == "mean":
                level = torch.arange(p.shape[2], dtype=torch.float32, device=p.device).view(1, 1, -1, 1, 1)
                parts.append((torch.softmax(p.float() / self.decode_temperature, 2) * level).sum(2).round().long())
            else:
                parts.append(p.argmax(2))
        return self.grid.codes_from_digits(torch.stack(parts, 1))

    @torch.no_grad()
    def predict(self, past: torch.Tensor, n_future_steps: int, batch: int = 64) -> torch.Tensor:
        """past codes (B, C, tp, h, w) -> future codes (B, C, n_future_steps, h, w): the next `horizon`
        steps at once from the last past step, rolled out (fed back) beyond."""
        self.eval()
        outs = []
        for lo in range(0, len(past), batch):
            seq = past[lo:lo + batch]
            bg = self.background(seq)
            fut = []
            while sum(f.shape[2] for f in fut) < n_future_steps:
                ctx = torch.cat([seq, *fut], 2)[:, :, -self.steps + 1:] if fut else seq[:, :, -self.steps + 1:]
                fut.append(self.codes_of(self(ctx, ctx.shape[2] - 1)[:, -1], bg))
            outs.append(torch.cat(fut, 2)[:, :, :n_future_steps])
        return torch.cat(outs)
