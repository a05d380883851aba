"""Head `transformer-predictor`: a transformer over spatial tokens, causal over latent time steps.

    codes (B, C, t, h, w)
      -> tokens: each p x p patch of a step's code grid is one token      (B, t * h/p * w/p, C p^2)
      -> linear embed + learned step and position embeddings              (B, L, D)
      -> pre-norm transformer layers with a block-causal mask: a token of step j attends to every
         token of steps 0..j (all positions within a step, nothing later)
      -> linear to C p^2 per token, back to the grid                      a change to step j's codes
    output at step j = codes[j] + change: the prediction of step j + 1 (an untrained head copies
    the last step: the output layer starts at zero).
"""

from __future__ import annotations

import torch
from torch import nn

from magtask import HeadSpec, hookimpl


class TransformerPredictor(nn.Module):
    train_defaults = {"epochs": 12, "batch_size": 32, "lr": 3e-3, "weight_decay": 0.01, "patience": 8}

    def __init__(self, in_shape, dim: int = 64, depth: int = 3, heads: int = 4, patch: int = 4, **_):
        super().__init__()
        c, t, h, w = in_shape
        self.patch = patch if h % patch == 0 and w % patch == 0 else 1
        p = self.patch
        self.grid = (h // p, w // p)
        self.embed = nn.Linear(c * p * p, dim)
        self.pos = nn.Parameter(torch.randn(1, 1, self.grid[0] * self.grid[1], dim) * 0.02)
        self.step = nn.Parameter(torch.randn(1, t, 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, c * p * p)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:  # (B, C, t, h, w) -> next-step predictions, same shape
        b, c, t, h, w = codes.shape
        p, (gh, gw) = self.patch, self.grid
        x = codes.reshape(b, c, t, gh, p, gw, p).permute(0, 2, 3, 5, 1, 4, 6).reshape(b, t, gh * gw, c * p * p)
        z = self.embed(x) + self.pos + self.step[:, :t]  # (B, t, S, D)
        s = gh * gw
        step_of = torch.arange(t, device=codes.device).repeat_interleave(s)
        mask = step_of[None, :] > step_of[:, None]  # True = may not attend (a later step)
        z = self.norm(self.blocks(z.reshape(b, t * s, -1), mask=mask))
        delta = self.out(z).reshape(b, t, gh, gw, c, p, p).permute(0, 4, 1, 2, 5, 3, 6).reshape(b, c, t, h, w)
        return codes + delta


@hookimpl
def register_heads(register):
    register(HeadSpec(name="transformer-predictor", task="predict", aliases=("transformer",),
                      build=TransformerPredictor, consumes="latents",
                      description="Transformer over spatial tokens, block-causal over latent steps (next step's codes)"))
