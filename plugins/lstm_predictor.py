"""Head `lstm-predictor`: the dot read off each latent step as points, an LSTM over steps moves them
one step on, convs draw the next step's codes (as FSQ level logits) around them.

    codes (B, C, t, h, w) -> point_track trunk: per step K soft-argmax points + pooled features
      -> tokens (B, t, K, D) flattened per step -> LSTM over the t steps (causal by construction)
      -> next points + descriptor -> render convs -> logits (B, sum(levels), t, h, w)
See point_track.py for the trunk and why it predicts points.
"""

from __future__ import annotations

from torch import nn

from magtask import HeadSpec, hookimpl
from magtask_plugins.point_track import PointTrack


class StepLSTM(nn.Module):
    def __init__(self, dim: int, hidden: int, layers: int):
        super().__init__()
        self.lstm = nn.LSTM(dim, hidden, num_layers=layers, batch_first=True)

    def forward(self, tokens):  # (B, t, K, D) -> (B, t, hidden)
        return self.lstm(tokens.flatten(2))[0]


class LSTMPredictor(PointTrack):
    train_defaults = {"epochs": 10, "batch_size": 32, "lr": 3e-3, "weight_decay": 0.01, "patience": 10}

    def __init__(self, in_shape, levels=(8, 5, 5, 5), width: int = 32, points: int = 2, dim: int = 64,
                 hidden: int = 128, layers: int = 1, **_):
        super().__init__(in_shape, levels, StepLSTM(points * dim, hidden, layers), dim, hidden, width, points)


@hookimpl
def register_heads(register):
    register(HeadSpec(name="lstm-predictor", task="predict", aliases=("lstm",), build=LSTMPredictor,
                      consumes="latents",
                      description="Dot points read off each step -> LSTM over steps -> next step's codes drawn "
                                  "around the moved points"))
