"""Head `track-predictor`: the dot's per-frame track read off the past codes, a small temporal model
(option `core`: an LSTM or a causal transformer over frames) predicts the next frames' positions,
training code windows drawn there (blocks.track_predict). Not code-only: the ceiling that task
knowledge buys (side inputs true_centres, training_code_windows, task_features).

    past codes (B, C, tp, h, w) -> track (B, tp*s, 2) px -> per frame [displacement, position]
      -> core, causal over frames (lstm: LSTM; transformer: pre-norm transformer with a learned frame
         embedding and a causal mask, frame j attending to frames 0..j)
      -> at the last frame the future frames' offsets -> codes (B, C, tf, h, w)
"""

from __future__ import annotations

import torch
from torch import nn

from magtask import HeadSpec, Option, hookimpl
from magtask_plugins.blocks.track_predict import TRACK_OPTIONS, TRACK_SIDE_INPUTS, TrackPredictor, build_track_head

CORES = ("lstm", "transformer")


class FrameLSTM(nn.Module):
    def __init__(self, dim: int, hidden: int, layers: int):
        super().__init__()
        self.lstm = nn.LSTM(dim, hidden, num_layers=layers, batch_first=True)

    def forward(self, x):  # (B, T, dim) -> (B, T, hidden)
        return self.lstm(x)[0]


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


class TrackPredictorHead(TrackPredictor):
    train_defaults = {"epochs": 600, "batch_size": 64, "lr": 3e-3, "weight_decay": 0.0, "patience": 60}

    def __init__(self, in_shape, grid, n_future_steps: int = 2, stride: int = 2, patch: float = 4.0,
                 core: str = "transformer", dim: int = 64, hidden: int = 128, layers: int = 1, depth: int = 2,
                 heads: int = 4, **kw):
        if core == "lstm":
            net, width = FrameLSTM(dim, hidden, layers), hidden
        else:
            net, width = CausalTransformer(dim, int(in_shape[1]) * int(stride), depth, heads), dim
        super().__init__(in_shape, grid, net, width, stride=stride, horizon=int(n_future_steps) * int(stride),
                         patch=patch, dim=dim, **kw)


@hookimpl
def register_heads(register):
    register(HeadSpec(name="track-predictor", task="predict", build=build_track_head(TrackPredictorHead),
                      consumes="latents", side_inputs=TRACK_SIDE_INPUTS,
                      options=(Option("core", str, "transformer", "temporal model over frames", choices=CORES),
                               Option("dim", int, 64, "width of the frame embedding (transformer width)", lo=1,
                                      hi=4096),
                               Option("hidden", int, 128, "LSTM hidden units (core=lstm)", lo=1, hi=4096),
                               Option("layers", int, 1, "LSTM layers (core=lstm)", lo=1, hi=16),
                               Option("depth", int, 2, "transformer layers (core=transformer)", lo=1, hi=64),
                               Option("heads", int, 4, "attention heads, must divide dim (core=transformer)", lo=1,
                                      hi=64),
                               *TRACK_OPTIONS),
                      description="Not code-only: dot track read off the past codes (reader fitted on true "
                                  "centres) -> LSTM or causal transformer over frames -> future positions -> "
                                  "training code windows pasted there"))
