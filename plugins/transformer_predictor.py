"""Head `transformer-predictor`: the dot's per-frame track read off the past codes, a small causal
transformer over frames predicts the next frames' positions, training code windows drawn there
(track_predict.py).

    past codes (B, C, tp, h, w) -> track (B, tp*s, 2) px -> per frame [displacement, position] + a learned
      frame embedding -> pre-norm transformer, causal mask (frame j attends to frames 0..j)
      -> at the last frame the future frames' offsets -> codes (B, C, tf, h, w)

`PointTrackTransformer` below is the earlier head, kept for comparison (served by the task's logits
path, no longer registered): the dot read off each latent step as K point tokens (position +
pooled features: the step's spatial tokens), a transformer block-causal over steps moves them one
step on, convs draw the next step's codes (as FSQ level logits) around them.

    codes (B, C, t, h, w) -> point_track trunk: per step K point tokens       (B, t, K, D)
      -> + learned step and slot embeddings, pre-norm transformer layers with a block-causal mask:
         a token of step j attends to every token of steps 0..j (its own step included, nothing later)
      -> the step's K tokens concatenated                                      (B, t, K*D)
      -> next points + descriptor -> render convs -> logits (B, sum(levels), t, h, w)
See point_track.py for the trunk and why it predicts points.
"""

from __future__ import annotations

import torch
from torch import nn

from magtask import HeadSpec, hookimpl
from magtask_plugins.point_track import PointTrack
from magtask_plugins.track_predict import TrackPredictor


class CausalTransformer(nn.Module):
    def __init__(self, dim: int, frames: int, depth: int, heads: int):
        super().__init__()
        self.pos = nn.Parameter(torch.randn(1, frames, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):  # (B, T, dim) -> (B, T, dim)
        t = x.shape[1]
        if t > self.pos.shape[1]:
            raise ValueError(f"this head was built for at most {self.pos.shape[1]} frames, got {t}")
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)  # True = a later frame: masked
        return self.norm(self.blocks(x + self.pos[:, :t], mask=mask))


class BlockCausalTransformer(nn.Module):
    def __init__(self, dim: int, steps: int, slots: int, depth: int, heads: int):
        super().__init__()
        self.step = nn.Parameter(torch.randn(1, steps + 1, 1, dim) * 0.02)
        self.slot = nn.Parameter(torch.randn(1, 1, slots, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens):  # (B, t, K, D) -> (B, t, K*D)
        b, t, k, d = tokens.shape
        if t > self.step.shape[1]:
            raise ValueError(f"this head was built for at most {self.step.shape[1]} latent steps, got {t}")
        z = (tokens + self.step[:, :t] + self.slot).reshape(b, t * k, d)
        step_of = torch.arange(t, device=tokens.device).repeat_interleave(k)
        mask = step_of[None, :] > step_of[:, None]  # True = may not attend (a later step)
        return self.norm(self.blocks(z, mask=mask)).reshape(b, t, k * d)


class TransformerPredictor(TrackPredictor):
    train_defaults = {"epochs": 600, "batch_size": 64, "lr": 3e-3, "weight_decay": 0.0, "patience": 60}

    def __init__(self, in_shape, levels=(8, 5, 5, 5), n_future_steps: int = 2, stride: int = 2, patch: float = 4.0,
                 dim: int = 64, depth: int = 2, heads: int = 4, **kw):
        kw = {k: v for k, v in kw.items() if k in ("window", "reader_hidden", "reader_steps", "augment")}
        frames = int(in_shape[1]) * int(stride)
        super().__init__(in_shape, levels, CausalTransformer(dim, frames, depth, heads), dim, stride=stride,
                         horizon=int(n_future_steps) * int(stride), patch=patch, dim=dim, **kw)


class PointTrackTransformer(PointTrack):
    train_defaults = {"epochs": 10, "batch_size": 32, "lr": 3e-3, "weight_decay": 0.01, "patience": 10}

    def __init__(self, in_shape, levels=(8, 5, 5, 5), width: int = 32, points: int = 2, dim: int = 64,
                 depth: int = 2, heads: int = 4, **_):
        core = BlockCausalTransformer(dim, int(in_shape[1]), points, depth, heads)
        super().__init__(in_shape, levels, core, dim, points * dim, width, points)


@hookimpl
def register_heads(register):
    register(HeadSpec(name="transformer-predictor", task="predict", aliases=("transformer",),
                      build=TransformerPredictor, consumes="latents",
                      description="Dot track read off the past codes per frame -> causal transformer over "
                                  "frames -> future positions -> training code windows pasted there"))
