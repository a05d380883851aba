"""Head `lstm-predictor`: a conv encoder per latent step, an LSTM over steps, a conv decoder.

    codes (B, C, t, h, w)
      -> per step: 3x3 conv (full res, kept as a skip), two stride-2 convs   (B*t, 2W, h/4, w/4)
      -> flatten, LSTM over the t steps (causal by construction)           (B, t, hidden)
      -> linear back to (2W, h/4, w/4), two 2x up-convs to (W, h, w)
      -> concat with the step's full-resolution features, 1x1 then 3x3 conv -> C   a change to the codes
    output at step j = codes[j] + change: the prediction of step j + 1 (zero change at init, so an
    untrained head copies the last step; the background stays put and only the dot must move).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from magtask import HeadSpec, hookimpl


class LSTMPredictor(nn.Module):
    # sized for 2 CPU cores: about 7 MFLOP per latent step
    train_defaults = {"epochs": 12, "batch_size": 32, "lr": 3e-3, "weight_decay": 0.01, "patience": 10}

    def __init__(self, in_shape, width: int = 16, hidden: int = 256, layers: int = 1, **_):
        super().__init__()
        c, _, h, w = in_shape
        self.small = (max(1, (h + 3) // 4), max(1, (w + 3) // 4))
        self.stem = nn.Sequential(nn.Conv2d(c, width, 3, padding=1), nn.GELU())
        self.down = nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.GELU(),
                                  nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1), nn.GELU())
        flat = 2 * width * self.small[0] * self.small[1]
        self.lstm = nn.LSTM(flat, hidden, num_layers=layers, batch_first=True)
        self.expand = nn.Sequential(nn.Linear(hidden, flat), nn.GELU())
        self.up = nn.Sequential(nn.ConvTranspose2d(2 * width, 2 * width, 2, stride=2), nn.GELU(),
                                nn.ConvTranspose2d(2 * width, width, 2, stride=2), nn.GELU())
        self.out = nn.Sequential(nn.Conv2d(2 * width, width, 1), nn.GELU(), nn.Conv2d(width, c, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)
        self.width = width

    def forward(self, codes: torch.Tensor) -> torch.Tensor:  # (B, C, t, h, w) -> next-step predictions, same shape
        b, c, t, h, w = codes.shape
        x = codes.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        skip = self.stem(x)  # (B*t, W, h, w)
        z = self.down(skip)  # (B*t, 2W, h/4, w/4)
        z, _ = self.lstm(z.reshape(b, t, -1))  # (B, t, hidden)
        z = self.expand(z).reshape(b * t, 2 * self.width, *self.small)
        u = self.up(z)
        if u.shape[-2:] != (h, w):
            u = F.interpolate(u, size=(h, w), mode="nearest")
        delta = self.out(torch.cat([u, skip], 1))  # (B*t, C, h, w)
        return codes + delta.reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4)


@hookimpl
def register_heads(register):
    register(HeadSpec(name="lstm-predictor", task="predict", aliases=("lstm",), build=LSTMPredictor,
                      consumes="latents",
                      description="Conv encoder per latent step -> LSTM over steps -> conv decoder (next step's codes)"))
