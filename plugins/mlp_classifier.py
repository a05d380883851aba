"""Head `mlp-classifier`: flatten the codes, then an MLP.

Flattening keeps where and when the dot is. (The seed project's global-average pooling over frames
that are 98 % background erased the class and scored chance.)
"""

from __future__ import annotations

import math

import torch
from torch import nn

from magtask import HeadSpec, hookimpl


class MLPClassifier(nn.Module):
    train_defaults = {"epochs": 40, "batch_size": 64, "lr": 1e-3, "weight_decay": 0.05, "patience": 10}

    def __init__(self, in_shape, n_classes: int, hidden: int = 256, dropout: float = 0.3, **_):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.1), nn.Linear(math.prod(in_shape), hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, n_classes))

    def forward(self, codes: torch.Tensor) -> torch.Tensor:  # (B, C, t, h, w) -> (B, n_classes)
        return self.net(codes)


@hookimpl
def register_heads(register):
    register(HeadSpec(name="mlp-classifier", task="classify", aliases=("mlp",), build=MLPClassifier,
                      consumes="latents", description="Flattened codes -> MLP (keeps where and when the dot is)"))
