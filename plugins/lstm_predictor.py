"""Head `lstm-predictor`: the dot's per-frame track read off the past codes, an LSTM over frames
predicts the next frames' positions, training code windows drawn there (track_predict.py).

    past codes (B, C, tp, h, w) -> track (B, tp*s, 2) px -> per frame [displacement, position] -> LSTM
      (causal by construction) -> at the last frame the future frames' offsets -> codes (B, C, tf, h, w)

`PointTrackLSTM` is the earlier head (point-track trunk, FSQ level logits; point_track.py), kept for
comparison: it is served by the task's logits path but no longer registered.
"""

from __future__ import annotations

from torch import nn

from magtask import HeadSpec, hookimpl
from magtask_plugins.point_track import PointTrack
from magtask_plugins.track_predict import TrackPredictor


class StepLSTM(nn.Module):
    def __init__(self, dim: int, hidden: int, layers: int):
        super().__init__()
        self.lstm = nn.LSTM(dim, hidden, num_layers=layers, batch_first=True)

    def forward(self, tokens):  # (B, t, K, D) -> (B, t, hidden)
        return self.lstm(tokens.flatten(2))[0]


class FrameLSTM(nn.Module):
    def __init__(self, dim: int, hidden: int, layers: int):
        super().__init__()
        self.lstm = nn.LSTM(dim, hidden, num_layers=layers, batch_first=True)

    def forward(self, x):  # (B, T, dim) -> (B, T, hidden)
        return self.lstm(x)[0]


class LSTMPredictor(TrackPredictor):
    train_defaults = {"epochs": 600, "batch_size": 64, "lr": 3e-3, "weight_decay": 0.0, "patience": 60}

    def __init__(self, in_shape, levels=(8, 5, 5, 5), n_future_steps: int = 2, stride: int = 2, patch: float = 4.0,
                 dim: int = 64, hidden: int = 128, layers: int = 1, **kw):
        kw = {k: v for k, v in kw.items() if k in ("window", "reader_hidden", "reader_steps", "augment")}
        super().__init__(in_shape, levels, FrameLSTM(dim, hidden, layers), hidden, stride=stride,
                         horizon=int(n_future_steps) * int(stride), patch=patch, dim=dim, **kw)


class PointTrackLSTM(PointTrack):
    train_defaults = {"epochs": 10, "batch_size": 32, "lr": 3e-3, "weight_decay": 0.01, "patience": 10}

    def __init__(self, in_shape, levels=(8, 5, 5, 5), width: int = 32, points: int = 2, dim: int = 64,
                 hidden: int = 128, layers: int = 1, **_):
        super().__init__(in_shape, levels, StepLSTM(points * dim, hidden, layers), dim, hidden, width, points)


@hookimpl
def register_heads(register):
    register(HeadSpec(name="lstm-predictor", task="predict", aliases=("lstm",), build=LSTMPredictor,
                      consumes="latents",
                      description="Dot track read off the past codes per frame -> LSTM over frames -> future "
                                  "positions -> training code windows pasted there"))
