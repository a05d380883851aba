"""Head `lstm-predictor`: the dot's per-frame track read off the past codes, an LSTM over frames
predicts the next frames' positions, training code windows drawn there (track_predict.py).

    past codes (B, C, tp, h, w) -> track (B, tp*s, 2) px -> per frame [displacement, position] -> LSTM
      (causal by construction) -> at the last frame the future frames' offsets -> codes (B, C, tf, h, w)
"""

from __future__ import annotations

from torch import nn

from magtask import HeadSpec, Option, hookimpl
from magtask_plugins.blocks.track_predict import TRACK_OPTIONS, TRACK_SIDE_INPUTS, TrackPredictor, build_track_head


class FrameLSTM(nn.Module):
    def __init__(self, dim: int, hidden: int, layers: int):
        super().__init__()
        self.lstm = nn.LSTM(dim, hidden, num_layers=layers, batch_first=True)

    def forward(self, x):  # (B, T, dim) -> (B, T, hidden)
        return self.lstm(x)[0]


class LSTMPredictor(TrackPredictor):
    train_defaults = {"epochs": 600, "batch_size": 64, "lr": 3e-3, "weight_decay": 0.0, "patience": 60}

    def __init__(self, in_shape, grid, n_future_steps: int = 2, stride: int = 2, patch: float = 4.0,
                 dim: int = 64, hidden: int = 128, layers: int = 1, **kw):
        super().__init__(in_shape, grid, FrameLSTM(dim, hidden, layers), hidden, stride=stride,
                         horizon=int(n_future_steps) * int(stride), patch=patch, dim=dim, **kw)


@hookimpl
def register_heads(register):
    register(HeadSpec(name="lstm-predictor", task="predict", aliases=("lstm",), build=build_track_head(LSTMPredictor),
                      consumes="latents",
                      side_inputs=TRACK_SIDE_INPUTS,
                      options=(Option("dim", int, 64, "width of the frame embedding", lo=1, hi=4096),
                               Option("hidden", int, 128, "LSTM hidden units", lo=1, hi=4096),
                               Option("layers", int, 1, "LSTM layers", lo=1, hi=16), *TRACK_OPTIONS),
                      description="Dot track read off the past codes per frame -> LSTM over frames -> future "
                                  "positions -> training code windows pasted there"))
