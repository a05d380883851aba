"""Head `token-prior` (alias `maskgit`): a class-conditional masked-token transformer over token indices.

MaskGIT (Chang et al. 2022), the generator MAGVIT itself uses, over the sparse view of a video's
tokens (magtask_plugins.dot_windows): almost every cell holds the background token, so per latent
step the sequence holds only where the dot's k x k window sits and the k x k token indices inside it:

    indices (B, t, h, w), e.g. 8 x 16 x 16 = 2 048 tokens, ~83 % of them the background token
      -> per step: [row, col] of the window (the k x k box with the most non-background mass)
                   + its k x k indices (default k = 4)                  8 x (2 + 16) = 144 tokens
      -> tokens of one step in groups of g (default 4; row/col padded to a group) concatenated and
         projected to one transformer position: 8 x 5 = 40 positions
      -> [class] token + positions -> pre-norm transformer (depth 4, width 128)
      -> each position back to g token features -> logits against the (tied) token embedding,
         restricted to the slot's kind (row, col, or one of the codes the training windows use)
Training: the tokens are masked with a ratio drawn from MaskGIT's cosine schedule; cross-entropy on
the masked window tokens plus (weighted by `position_weight`) on the masked row/col tokens. The class
is dropped ("no class" token) 10 % of the time, so samples can use classifier-free guidance
(`guidance`, off by default).
Sampling: start fully masked; unmask the rows and cols first (`position_steps` rounds: the track,
which carries the class), then the window tokens (`steps` rounds); in each round every masked token
of the phase is sampled, the most confident kept (confidence + annealed Gumbel noise, as in MaskGIT)
and the rest re-masked, following the cosine schedule. The windows are then pasted onto a grid of
the background token (the most common token of the training videos). Samples are token indices:
always on the codebook.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from magtask import HeadSpec, hookimpl
from magtask_plugins.dot_windows import crop, index_mass, paste, window_corners

CODE, ROW, COL, PAD = 0, 1, 2, 3  # slot kinds


def _fit(n: int, want: int) -> int:
    """The largest divisor of n that is <= want."""
    return max(d for d in range(1, min(n, want) + 1) if n % d == 0)


class TokenPrior(nn.Module):
    conditional = True
    # 44 steps per epoch of the default 1 400 training videos, ~17-33 s per epoch on 2 shared cores
    train_defaults = {"epochs": 12, "batch_size": 32, "lr": 2e-3, "weight_decay": 0.01, "patience": 12}

    def __init__(self, in_shape, n_classes: int = 4, codebook_size: int = 1000, levels=None, window: int = 4,
                 group: int = 4, dim: int = 128, depth: int = 4, heads: int = 4, emb: int = 32,
                 max_vocab: int = 1024, class_dropout: float = 0.1, steps: int = 12, position_steps: int = 8,
                 guidance: float = 0.0, temperature: float = 1.0, noise: float = 4.5,
                 position_weight: float = 1.0, **_):
        super().__init__()
        t, h, w = (int(s) for s in in_shape)
        self.grid = (t, h, w)
        self.levels = None if levels is None else [int(l) for l in levels]
        self.k = k = max(1, min(int(window), h, w))
        self.n_rows, self.n_cols = h - k + 1, w - k + 1
        self.g = g = _fit(k * k, group)
        self.lead = g * math.ceil(2 / g)  # row, col (+ padding to a whole group)
        self.slots = self.lead + k * k  # tokens per latent step
        self.positions = t * self.slots // g
        # token ids: codes 0..vocab-1 | rows | cols | pad | mask
        self.codebook_size = int(codebook_size)
        self.vocab = min(int(max_vocab), self.codebook_size)
        self.row0 = self.vocab
        self.col0 = self.row0 + self.n_rows
        self.pad_id = self.col0 + self.n_cols
        self.mask_id = self.pad_id + 1
        kind = torch.full((self.slots,), PAD)
        kind[0], kind[1], kind[self.lead:] = ROW, COL, CODE
        self.register_buffer("kind", kind.repeat(t), persistent=False)  # (L,)
        # The codes the training windows use (prepare() fills these): the model predicts only among them;
        # `compact` maps a codebook index to its place in `used`. `background`: the token outside windows.
        self.register_buffer("used", torch.arange(self.vocab))
        self.register_buffer("n_used", torch.tensor(self.vocab))
        self.register_buffer("compact", torch.arange(self.codebook_size).clamp_max(self.vocab - 1))
        self.register_buffer("background", torch.tensor(0))
        self.n_classes = int(n_classes)
        self.class_dropout, self.steps, self.position_steps = class_dropout, int(steps), int(position_steps)
        self.guidance, self.temperature, self.noise = guidance, temperature, noise
        self.position_weight = float(position_weight)
        self.tok_emb = nn.Embedding(self.mask_id + 1, emb)  # also the output embedding (tied)
        self.slot_emb = nn.Parameter(torch.randn(self.slots, emb) * 0.02)  # which slot of its step
        self.inp = nn.Linear(g * emb, dim)
        # as large as the token features at init: with 0.02 (as before) every masked position looked alike
        # and the model ignored its context (same loss at 10 % and 90 % masked)
        self.pos = nn.Parameter(torch.randn(self.positions + 1, dim) * 0.5)
        self.cls = nn.Embedding(self.n_classes + 1, dim)  # the last one: "no class"
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.body = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, g * emb)
        self.out_bias = nn.Parameter(torch.zeros(self.pad_id))

    @torch.no_grad()
    def prepare(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """See the training indices once: the background token, and the codes the windows use (the most
        frequent `vocab` of them; a code outside those is read as the most frequent one)."""
        self.background.fill_(int(torch.bincount(x.flatten().long(), minlength=self.codebook_size).argmax()))
        win = self.windows(x.long())[0]
        counts = torch.bincount(win.flatten(), minlength=self.codebook_size)
        order = counts.argsort(descending=True)
        k = min(self.vocab, int((counts > 0).sum()))
        self.used.zero_()
        self.used[:k] = order[:k].sort().values
        self.n_used.fill_(k)
        self.compact.fill_(int((self.used[:k] == order[0]).nonzero()[0, 0]))
        self.compact[self.used[:k]] = torch.arange(k)

    # -- layout: indices (B, t, h, w) <-> sequence (B, L), L = t * slots -----------------------------
    def windows(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, t, h, w) -> (windows (B, t, k*k) codebook indices, corners (B, t, 2))."""
        corners = window_corners(index_mass(idx, int(self.background), self.levels), self.k)
        return crop(idx, corners, self.k).flatten(2), corners

    def to_seq(self, idx: torch.Tensor) -> torch.Tensor:
        win, corners = self.windows(idx.long())
        b, t = win.shape[:2]
        lead = torch.full((b, t, self.lead), self.pad_id, dtype=torch.long)
        lead[..., 0] = self.row0 + corners[..., 0]
        lead[..., 1] = self.col0 + corners[..., 1]
        return torch.cat([lead, self.compact[win]], -1).reshape(b, -1)

    def from_seq(self, seq: torch.Tensor) -> torch.Tensor:
        b = seq.shape[0]
        t, h, w = self.grid
        s = seq.view(b, t, self.slots)
        corners = torch.stack([(s[..., 0] - self.row0).clamp(0, self.n_rows - 1),
                               (s[..., 1] - self.col0).clamp(0, self.n_cols - 1)], -1)
        win = self.used[s[..., self.lead:].clamp(0, int(self.n_used) - 1)].view(b, t, self.k, self.k)
        return paste(win, corners, self.background, h, w)

    # -- the network ------------------------------------------------------------------------------
    def features(self, seq: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """seq (B, L) token ids, labels (B,) (n_classes: none) -> (B, L, emb)."""
        b, t = seq.shape[0], self.grid[0]
        e = self.tok_emb(seq).view(b, t, self.slots, -1) + self.slot_emb
        x = self.inp(e.reshape(b, self.positions, -1))  # (B, P, dim)
        x = torch.cat([self.cls(labels)[:, None], x], 1) + self.pos
        x = self.norm(self.body(x))[:, 1:]
        f = self.out(x).view(b, t, self.slots, -1) + self.slot_emb
        return f.reshape(b, t * self.slots, -1)

    def logits(self, feats: torch.Tensor, kinds: torch.Tensor) -> torch.Tensor:
        """(M, emb) features of slots of these kinds (M,) -> (M, pad_id) logits, -inf off the slot's kind."""
        logit = feats @ self.tok_emb.weight[:self.pad_id].T + self.out_bias
        ids = torch.arange(self.pad_id)
        allowed = torch.stack([ids < int(self.n_used), (ids >= self.row0) & (ids < self.col0),
                               (ids >= self.col0) & (ids < self.pad_id), torch.zeros_like(ids, dtype=torch.bool)])
        return logit.masked_fill(~allowed[kinds], float("-inf"))

    def loss(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x (B, t, h, w) indices, y (B,) classes: cross-entropy on randomly masked tokens."""
        seq = self.to_seq(x)
        b, n = seq.shape
        real = self.kind != PAD
        n_real = int(real.sum())
        u = torch.rand(b, 1, generator=generator)
        n_mask = (torch.cos(u * math.pi / 2) * n_real).ceil().clamp(1, n_real)  # MaskGIT's cosine schedule
        r = torch.rand(b, n, generator=generator).masked_fill(~real, 2.0)
        mask = r.argsort(1).argsort(1) < n_mask
        labels = y.long().clone()
        if self.training and self.class_dropout > 0:
            drop = torch.rand(b, generator=generator) < self.class_dropout
            labels[drop] = self.n_classes
        feats = self.features(torch.where(mask, self.mask_id, seq), labels)
        kinds = self.kind.expand(b, n)[mask]
        ce = F.cross_entropy(self.logits(feats[mask], kinds), seq[mask], reduction="none")
        is_pos = kinds != CODE
        code_loss = ce[~is_pos].sum() / max(int((~is_pos).sum()), 1)
        pos_loss = ce[is_pos].sum() / max(int(is_pos.sum()), 1)
        return code_loss + self.position_weight * pos_loss

    @torch.no_grad()
    def _logprobs(self, seq: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """log-probabilities (M, pad_id) for the slots `rows` (B, L) bool."""
        kinds = self.kind.expand_as(rows)[rows]
        logit = self.logits(self.features(seq, labels)[rows], kinds)
        if self.guidance:
            fu = self.features(seq, torch.full_like(labels, self.n_classes))
            uncond = self.logits(fu[rows], kinds)
            logit = torch.where(torch.isfinite(logit), logit + self.guidance * (logit - uncond), logit)
        return F.log_softmax(logit / max(self.temperature, 1e-6), -1)

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, generator: torch.Generator | None = None, chunk: int = 64) -> torch.Tensor:
        """labels (B,) -> indices (B, t, h, w), by iterative unmasking."""
        self.eval()
        return torch.cat([self._sample(labels[i:i + chunk].long(), generator) for i in range(0, len(labels), chunk)])

    def _sample(self, labels: torch.Tensor, generator) -> torch.Tensor:
        b, n = len(labels), len(self.kind)
        real = (self.kind != PAD).expand(b, n)
        seq = torch.where(real, self.mask_id, self.pad_id)
        is_pos = (self.kind == ROW) | (self.kind == COL)
        phases = [(is_pos, self.position_steps), (self.kind == CODE, self.steps)] if self.position_steps > 0 \
            else [(self.kind != PAD, self.steps)]
        for cand, n_steps in phases:
            seq = self._unmask(seq, labels, cand.expand(b, n), max(int(n_steps), 1), generator)
        return self.from_seq(seq)

    def _unmask(self, seq, labels, cand, n_steps: int, generator) -> torch.Tensor:
        """MaskGIT rounds over the still-masked slots `cand` (B, L) until none of them is masked."""
        b = len(seq)
        total = int(cand[0].sum())
        for s in range(n_steps):
            masked = (seq == self.mask_id) & cand
            logp = self._logprobs(seq, labels, masked)
            pick = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(1)
            frac = (s + 1) / n_steps
            gumbel = -torch.log(-torch.log(torch.rand(len(pick), generator=generator).clamp(1e-20, 1)))
            conf = torch.full(seq.shape, float("inf"))
            conf[masked] = logp.gather(1, pick[:, None]).squeeze(1) + self.noise * (1 - frac) * gumbel
            proposal = seq.clone()
            proposal[masked] = pick
            keep_masked = int(math.floor(total * math.cos(math.pi / 2 * frac)))
            keep_masked = min(keep_masked, int(masked.sum(1).min()) - 1) if s < n_steps - 1 else 0
            if keep_masked > 0:
                cut = conf.sort(1).values[:, keep_masked - 1:keep_masked]
                proposal[(conf <= cut) & masked] = self.mask_id
            seq = proposal
        return seq


@hookimpl
def register_heads(register):
    register(HeadSpec(
        name="token-prior", task="generate", aliases=("maskgit",), consumes="indices",
        build=lambda **cfg: TokenPrior(**cfg),
        description="Class-conditional MaskGIT over the dot's track and a 4x4 window of token indices per "
                    "latent step, pasted onto the background token; samples are always on the codebook"))
