"""The trunk both predict heads share: read the dot off each latent step as points, let a temporal
core (LSTM or transformer, the head's choice) move the points one step on, draw the next step's
codes around them.

    codes (B, C, t, h, w)
      -> one-hot FSQ levels + (x, y) grid, two 3x3 convs per step        f   (B*t, W, h, w)
      -> K soft-argmax points per step (a softmax map over the grid plus a
         sub-token offset map) and the features pooled under each map     p   (B, t, K, 2), d (B, t, K, W)
      -> core(tokens (B, t, K, D)) -> (B, t, D), causal over steps          z
      -> next points q = p + linear(z) and a descriptor e = linear(z)
      -> render: convs over [f, e, maps(q), maps(p)] -> sum(levels) logits per position
    output at step j = logits of step j + 1's codes, from steps 0..j only.

Why points: regressing codes (or classifying them position by position) leaves the model unsure
where the dot goes, and an unsure dot is averaged away or erased. Here "where" is a few numbers
that a small core extrapolates, and the render convs, given exact relative coordinates, draw a
crisp dot there. aux_loss() pulls each predicted point towards the point read off the true next
step (teacher forcing, stop-gradient), which makes the points track the dot.
"""

from __future__ import annotations

import torch
from torch import nn

from magtask_plugins import fsq_levels

AUX_WEIGHT = 100.0  # on squared distances in grid units of [-1, 1]


class PointTrack(nn.Module):
    predicts = "levels"

    def __init__(self, in_shape, levels, core: nn.Module, token_dim: int, core_dim: int, width: int = 32,
                 points: int = 2):
        super().__init__()
        c, _, h, w = in_shape
        self.levels, self.k, self.width = [int(l) for l in levels], points, width
        nl = sum(self.levels)
        gy, gx = torch.meshgrid((torch.arange(h) + 0.5) / h * 2 - 1, (torch.arange(w) + 0.5) / w * 2 - 1,
                                indexing="ij")
        self.register_buffer("grid", torch.stack([gx, gy]), persistent=False)  # (2, h, w) in [-1, 1]
        self.half_token = 1.0 / max(h, w)
        self.stem = nn.Sequential(nn.Conv2d(nl + 2, width, 3, padding=1), nn.GELU(),
                                  nn.Conv2d(width, width, 3, padding=1), nn.GELU())
        self.read = nn.Conv2d(width, 3 * points, 1)  # K attention logits, 2K sub-token offsets
        self.token = nn.Linear(2 + width, token_dim)
        self.core = core
        self.to_q = nn.Linear(core_dim, 2 * points)
        nn.init.zeros_(self.to_q.weight)
        nn.init.zeros_(self.to_q.bias)
        self.to_e = nn.Linear(core_dim, width)
        self.render = nn.Sequential(nn.Conv2d(2 * width + 6 * points, width, 3, padding=1), nn.GELU(),
                                    nn.Conv2d(width, width, 3, padding=1), nn.GELU(), nn.Conv2d(width, nl, 1))
        self._aux = None

    def maps(self, pts: torch.Tensor) -> torch.Tensor:  # (N, K, 2) -> (N, 3K, h, w): offsets and a bump
        d = self.grid[None, None] - pts[..., None, None]  # (N, K, 2, h, w)
        bump = torch.exp(-(d ** 2).sum(2) / (2 * self.half_token) ** 2)
        return torch.cat([(d * 4).flatten(1, 2), bump], 1)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        b, _, t, h, w = codes.shape
        k = self.k
        x = fsq_levels.one_hot(codes, self.levels).transpose(1, 2).reshape(b * t, -1, h, w)
        f = self.stem(torch.cat([x, self.grid.expand(b * t, -1, -1, -1)], 1))  # (bt, W, h, w)
        r = self.read(f)
        att = r[:, :k].flatten(2).softmax(-1)  # (bt, K, hw)
        off = torch.tanh(r[:, k:].reshape(b * t, k, 2, h * w)) * self.half_token
        p = ((self.grid.flatten(1) + off) * att[:, :, None]).sum(-1)  # (bt, K, 2)
        d = torch.einsum("bkn,bcn->bkc", att, f.flatten(2))  # (bt, K, W)
        z = self.core(self.token(torch.cat([p, d], -1)).reshape(b, t, k, -1)).reshape(b * t, -1)
        q = p + self.to_q(z).reshape(b * t, k, 2)  # the points of step j + 1
        self._aux = (q.reshape(b, t, k, 2), p.reshape(b, t, k, 2))
        e = self.to_e(z)[:, :, None, None].expand(-1, -1, h, w)
        logits = self.render(torch.cat([f, e, self.maps(q), self.maps(p)], 1))
        return logits.reshape(b, t, -1, h, w).transpose(1, 2)

    def aux_loss(self) -> torch.Tensor:
        """After a forward over a whole clip: predicted points vs the points read off the true next step."""
        q, p = self._aux
        return AUX_WEIGHT * ((q[:, :-1] - p[:, 1:].detach()) ** 2).sum(-1).mean()
