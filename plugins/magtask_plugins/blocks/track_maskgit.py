"""A class-conditional MaskGIT over a dot track's position tokens: the first stage of `token-prior`.

A track is the dot's centre per latent step, (B, t, 2) in cells (magtask_plugins.blocks.dot_windows.centres
of the code grid). Its tokens are the ABSOLUTE row and column of every step in 1/res cells,

    [row_0, col_0, row_1, col_1, ..., row_{t-1}, col_{t-1}]        2t tokens, each 0 .. size*res - 1

(absolute, not step-to-step displacements: a wrong token is then a local error, not a drift that
every later step inherits). A known token enters as a linear map of its value's features (the value
and its Fourier features), a masked one as a learnt vector; a pre-norm transformer over [class] + the
2t tokens gives, per token, a vector that is dotted with every candidate value's features (plus a
learnt bias per value) to give the logits. Values are numbers, not unrelated symbols, on both sides:
with a learnt embedding per value instead, the model stayed at the marginals (held-out CE 3.41 at
10 % masked after 500 steps, vs 3.10 with value features and 2.69 with two layers instead of four). Training: MaskGIT's cosine mask ratio, cross-entropy on the masked
tokens, the class dropped ("no class") 10 % of the time, tracks augmented by the frame's dihedral
group and time reversal (the judge's families are invariant to both). Sampling: `steps` rounds,
each samples every masked token, keeps the most confident (confidence + annealed Gumbel noise) and
re-masks the rest on the cosine schedule (magtask_plugins.blocks.maskgit).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from magtask_plugins.blocks.maskgit import random_mask, unmask_round


class TrackMaskGIT(nn.Module):
    def __init__(self, t: int, size: int, res: int = 4, n_classes: int = 4, dim: int = 128, depth: int = 2,
                 heads: int = 4, class_dropout: float = 0.1):
        super().__init__()
        self.t, self.size, self.res = int(t), int(size), int(res)
        self.vocab = self.size * self.res  # values per coordinate
        self.length = 2 * self.t
        self.mask_id = self.vocab
        self.n_classes, self.class_dropout = int(n_classes), float(class_dropout)
        self.register_buffer("freqs", torch.tensor([0.5, 1, 2, 4, 8, 16, 32]) * math.pi / self.vocab,
                             persistent=False)
        n_feat = 2 * len(self.freqs) + 1
        self.masked = nn.Parameter(torch.randn(dim) * 0.5)
        self.num = nn.Linear(n_feat, dim)
        self.pos = nn.Parameter(torch.randn(self.length + 1, dim) * 0.5)
        self.cls = nn.Embedding(self.n_classes + 1, dim)  # the last one: "no class"
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.body = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_feat)
        self.value_bias = nn.Parameter(torch.zeros(self.vocab))

    def value_features(self, values: torch.Tensor) -> torch.Tensor:
        """(...) token values -> (..., 2F + 1): the value itself (centred) and its Fourier features."""
        ang = values.float()[..., None] * self.freqs
        return torch.cat([values.float()[..., None] / self.vocab - 0.5, ang.sin(), ang.cos()], -1)

    # -- tracks <-> tokens --------------------------------------------------------------------------
    def tokens(self, track: torch.Tensor) -> torch.Tensor:
        """(B, t, 2) centres in cells -> (B, 2t) tokens."""
        return (track * self.res).round().long().clamp(0, self.vocab - 1).flatten(1)

    def track(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, 2t) tokens -> (B, t, 2) centres in 1/res cells (long)."""
        return tokens.view(len(tokens), self.t, 2)

    def augment(self, track: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Random transpose, row flip, column flip and time reversal of (B, t, 2) tracks in cells."""
        top = self.size - 1
        r = torch.rand(4, len(track), 1, 1, generator=generator) < 0.5
        track = torch.where(r[0], track.flip(-1), track)
        track = torch.where(r[1] & torch.tensor([True, False]), top - track, track)
        track = torch.where(r[2] & torch.tensor([False, True]), top - track, track)
        return torch.where(r[3], track.flip(1), track)

    # -- the network --------------------------------------------------------------------------------
    def forward(self, seq: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """seq (B, 2t) tokens (mask_id where masked), labels (B,) -> (B, 2t, vocab) logits."""
        known = (seq != self.mask_id)[..., None]
        x = torch.where(known, self.num(self.value_features(seq.clamp_max(self.vocab - 1))), self.masked)
        h = torch.cat([self.cls(labels)[:, None], x], 1) + self.pos
        out = self.head(self.norm(self.body(h))[:, 1:])
        return out @ self.value_features(torch.arange(self.vocab)).T + self.value_bias

    def loss(self, track: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None,
             ratio: float | None = None) -> torch.Tensor:
        """track (B, t, 2) in cells: cross-entropy on the masked tokens (ratio: a fixed mask fraction)."""
        seq = self.tokens(track)
        mask = random_mask(torch.ones_like(seq, dtype=torch.bool), ratio, generator)
        b = len(seq)
        labels = labels.long().clone()
        if self.training and self.class_dropout > 0:
            labels[torch.rand(b, generator=generator) < self.class_dropout] = self.n_classes
        logits = self(torch.where(mask, self.mask_id, seq), labels)
        return F.cross_entropy(logits[mask], seq[mask])

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, steps: int = 16, temperature: float = 1.0, noise: float = 2.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """labels (B,) -> (B, t, 2) long: centres in 1/res cells."""
        seq = torch.full((len(labels), self.length), self.mask_id)
        steps = max(1, int(steps))
        for s in range(steps):
            masked = seq == self.mask_id
            logp = F.log_softmax(self(seq, labels.long())[masked] / max(temperature, 1e-6), -1)
            seq = unmask_round(seq, masked, logp, s, steps, self.length, self.mask_id, noise, generator)
        return self.track(seq)
