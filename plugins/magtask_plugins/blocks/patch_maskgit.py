"""A class-conditional masked-token transformer over a video's token grid, read in patches (MaskGIT).

The token grid (B, t, h, w) of indices is cut into p x p spatial patches per latent step; each patch
is one transformer position (t * h/p * w/p positions; 8 x 4 x 4 = 128 on the default data with
p = 4), but masking, the loss and unmasking are per token, so tokens inside a patch are still filled
over several rounds and condition on each other:

    per token: an embedding of its id (or of [mask]) + its place inside the patch
    per patch: the p*p token embeddings concatenated -> Linear -> + time / row / column embeddings
               + the class embedding (a "no class" one for class dropout)
    pre-norm transformer encoder -> per patch Linear -> p*p token features -> logits over the vocabulary

Ids are 0..vocab_size-1, whatever its owner makes them mean (token-prior: entries of its own small
vocabulary, not the codebook: the output layer's cost grows with vocab_size); `allowed` (vocab,) bool
marks the ids the model may propose (logits of the others are -inf). Training: MaskGIT's loss, a ratio
of each grid's tokens drawn from the cosine schedule is masked and predicted (cross-entropy on the
masked ones, or on `loss_tokens` of them per grid).
Sampling: from all masked, `steps` rounds of blocks.maskgit.unmask_round (cosine schedule, sampled at
`temperature`, the most confident kept); `guidance` > 0 mixes in classifier-free guidance
(logits + guidance * (class logits - no-class logits)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from magtask_plugins.blocks.maskgit import random_mask, unmask_round


class PatchMaskGIT(nn.Module):
    def __init__(self, grid: tuple[int, int, int], vocab_size: int, n_classes: int, patch: tuple[int, int] = (2, 4),
                 dim: int = 128, depth: int = 3, heads: int = 4, emb: int = 32, class_dropout: float = 0.1,
                 loss_tokens: int = 256):
        super().__init__()
        t, h, w = grid
        pt, p = (int(v) for v in patch)
        if t % pt or h % p or w % p:
            raise ValueError(f"patch {pt} x {p} x {p} does not divide the {t} x {h} x {w} token grid")
        self.grid, self.pt, self.p = (t, h, w), pt, p
        self.gt, self.gh, self.gw = t // pt, h // p, w // p
        self.n_classes, self.class_dropout, self.loss_tokens = int(n_classes), float(class_dropout), int(loss_tokens)
        self.vocab_size = int(vocab_size)
        self.mask_id = self.vocab_size
        pp = pt * p * p
        self.tok = nn.Embedding(self.vocab_size + 1, emb)
        self.sub = nn.Parameter(torch.randn(pp, emb) * 0.02)  # place inside the patch
        self.inp = nn.Linear(pp * emb, dim)
        self.t_pos = nn.Parameter(torch.randn(self.gt, 1, 1, dim) * 0.02)
        self.r_pos = nn.Parameter(torch.randn(1, self.gh, 1, dim) * 0.02)
        self.c_pos = nn.Parameter(torch.randn(1, 1, self.gw, dim) * 0.02)
        self.cls = nn.Embedding(self.n_classes + 1, dim)  # the last one: "no class"
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.body = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, pp * emb)
        self.head = nn.Linear(emb, self.vocab_size)
        self.register_buffer("allowed", torch.ones(self.vocab_size, dtype=torch.bool))

    def out_logits(self, f: torch.Tensor) -> torch.Tensor:
        """(..., emb) token features -> (..., vocab) logits, -inf where not allowed."""
        return self.head(f).masked_fill(~self.allowed, float("-inf"))

    # -- layout: (B, t, h, w, ...) <-> (B, gt, gh, gw, pt*p*p, ...) -------------------------------
    def to_patches(self, v: torch.Tensor) -> torch.Tensor:
        b, rest, (pt, p) = len(v), v.shape[4:], (self.pt, self.p)
        v = v.view(b, self.gt, pt, self.gh, p, self.gw, p, *rest).permute(0, 1, 3, 5, 2, 4, 6, *range(7, 7 + len(rest)))
        return v.reshape(b, self.gt, self.gh, self.gw, pt * p * p, *rest)

    def from_patches(self, v: torch.Tensor) -> torch.Tensor:
        b, rest, (pt, p) = len(v), v.shape[5:], (self.pt, self.p)
        v = v.reshape(b, self.gt, self.gh, self.gw, pt, p, p, *rest).permute(0, 1, 4, 2, 5, 3, 6, *range(7, 7 + len(rest)))
        return v.reshape(b, *self.grid, *rest)

    def features(self, v: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """v (B, t, h, w) vocabulary ids (mask_id where masked), labels (B,) (n_classes: no class)
        -> (B, t, h, w, emb) per-token features (self.head turns them into logits over the vocabulary)."""
        x = self.tok(self.to_patches(v)) + self.sub  # (B, t, gh, gw, pp, emb)
        x = self.inp(x.flatten(-2)) + self.t_pos + self.r_pos + self.c_pos + self.cls(labels)[:, None, None, None]
        b = len(v)
        hid = self.norm(self.body(x.reshape(b, -1, x.shape[-1])))
        f = self.out(hid).view(b, *x.shape[1:4], self.sub.shape[0], -1)
        return self.from_patches(f)

    def logits(self, v: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, t, h, w) ids, (B,) labels -> (B, t, h, w, vocab) logits."""
        return self.out_logits(self.features(v, labels))

    def loss(self, v: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None,
             ratio: float | None = None) -> torch.Tensor:
        """v (B, t, h, w) vocabulary ids, y (B,) classes: cross-entropy on the masked tokens."""
        b = len(v)
        flat = v.reshape(b, -1)
        mask = random_mask(torch.ones_like(flat, dtype=torch.bool), ratio, generator)
        labels = y.long().clone()
        if self.training and self.class_dropout > 0:
            labels[torch.rand(b, generator=generator) < self.class_dropout] = self.n_classes
        f = self.features(torch.where(mask, self.mask_id, flat).view_as(v), labels).reshape(b, flat.shape[1], -1)
        scored = mask
        if self.loss_tokens and mask.sum(1).max() > self.loss_tokens:  # a uniform subset of the masked tokens
            r = torch.rand(mask.shape, generator=generator).masked_fill(~mask, 2.0)
            scored = r.argsort(1).argsort(1) < torch.clamp(mask.sum(1, keepdim=True), max=self.loss_tokens)
        return F.cross_entropy(self.out_logits(f[scored]), flat[scored])

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, steps: int = 12, temperature: float = 1.0, noise: float = 4.5,
               guidance: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """labels (B,) -> (B, t, h, w) vocabulary ids, by `steps` rounds of iterative unmasking."""
        b = len(labels)
        n = self.grid[0] * self.grid[1] * self.grid[2]
        seq = torch.full((b, n), self.mask_id, dtype=torch.long)
        cand = torch.ones_like(seq, dtype=torch.bool)
        none = torch.full_like(labels, self.n_classes)
        steps = max(1, min(int(steps), n))
        for s in range(steps):
            masked = (seq == self.mask_id) & cand
            v = seq.view(b, *self.grid)
            lg = self.logits(v, labels).reshape(b, n, -1)
            if guidance > 0:
                lg = lg + guidance * (lg - self.logits(v, none).reshape(b, n, -1)).nan_to_num(0.0)
            logp = F.log_softmax(lg[masked] / max(temperature, 1e-6), -1)
            seq = unmask_round(seq, masked, logp, s, steps, n, self.mask_id, noise, generator)
        return seq.view(b, *self.grid)
