"""Head `token-prior` (alias `maskgit`): a class-conditional masked-token transformer over token indices.

MaskGIT (Chang et al. 2022), the generator MAGVIT itself uses, made small enough for 2 CPU cores:

    indices (B, t, h, w), e.g. 8 x 16 x 16 = 2 048 tokens from a 1 000-code FSQ codebook
      -> each token: a shared embedding (codebook + [MASK]) + its place inside its group
      -> group g = gt x gh x gw neighbouring tokens (default 2 x 4 x 4 = 32) concatenated, projected to
         one transformer position: 4 x 4 x 4 = 64 positions (so attention costs 64^2, not 2 048^2)
      -> [class] token + positions -> pre-norm transformer (depth 3, width 128)
      -> each position back to g token features -> logits against the (tied) codebook embedding
Training: every token is masked independently with a ratio drawn from MaskGIT's cosine schedule;
cross-entropy on (at most 256 per video, drawn at random) masked tokens. The class is dropped
(replaced by a "no class" token) 10 % of the time, so samples can use classifier-free guidance
(`guidance`, off by default: it doubles sampling time and did not help in a short trial).
Sampling: start fully masked; in each of `steps` rounds sample every masked token, keep the most
confident ones (confidence + annealed Gumbel noise, as in MaskGIT) and re-mask the rest, following
the cosine schedule until nothing is masked. Samples are token indices: always on the codebook.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from magtask import HeadSpec, hookimpl


def _fit(n: int, want: int) -> int:
    """The largest divisor of n that is <= want."""
    return max(d for d in range(1, min(n, want) + 1) if n % d == 0)


class TokenPrior(nn.Module):
    conditional = True
    # 8 epochs of the default dataset's 1 400 training videos: about 350 steps, ~4 min on 2 shared cores
    train_defaults = {"epochs": 8, "batch_size": 32, "lr": 2e-3, "weight_decay": 0.01, "patience": 8}

    def __init__(self, in_shape, n_classes: int = 4, codebook_size: int = 1000, dim: int = 128, depth: int = 3,
                 heads: int = 4, group=(2, 4, 4), emb: int = 32, max_vocab: int = 1024, class_dropout: float = 0.1,
                 loss_tokens: int = 256, steps: int = 12, guidance: float = 0.0, temperature: float = 1.0,
                 noise: float = 4.5, **_):
        super().__init__()
        t, h, w = (int(s) for s in in_shape)
        self.grid = (t, h, w)
        self.group = (_fit(t, group[0]), _fit(h, group[1]), _fit(w, group[2]))
        gt, gh, gw = self.group
        self.positions = (t // gt) * (h // gh) * (w // gw)
        self.g = gt * gh * gw
        # The codes the training videos use (prepare() fills these): the model predicts only among them,
        # so a big codebook costs nothing; `compact` maps a codebook index to its place in `used`.
        self.codebook_size = int(codebook_size)
        self.vocab = min(int(max_vocab), self.codebook_size)
        self.mask_id = self.vocab
        self.register_buffer("used", torch.arange(self.vocab))
        self.register_buffer("n_used", torch.tensor(self.vocab))
        self.register_buffer("compact", torch.arange(self.codebook_size).clamp_max(self.vocab - 1))
        self.n_classes = int(n_classes)
        self.class_dropout, self.steps, self.loss_tokens = class_dropout, int(steps), int(loss_tokens)
        self.guidance, self.temperature, self.noise = guidance, temperature, noise
        self.tok_emb = nn.Embedding(self.vocab + 1, emb)  # + [MASK]; also the output codebook (tied)
        self.sub_emb = nn.Parameter(torch.randn(self.g, emb) * 0.02)  # where in its group a token sits
        self.inp = nn.Linear(self.g * emb, dim)
        self.pos = nn.Parameter(torch.randn(self.positions + 1, dim) * 0.02)
        self.cls = nn.Embedding(self.n_classes + 1, dim)  # the last one: "no class"
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.body = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, self.g * emb)
        self.out_bias = nn.Parameter(torch.zeros(self.vocab))

    @torch.no_grad()
    def prepare(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """See the training indices once: keep the codes they use (the most frequent `vocab` of them; a
        code outside those is read as the most frequent one)."""
        counts = torch.bincount(x.flatten().long(), minlength=self.codebook_size)
        order = counts.argsort(descending=True)
        k = min(self.vocab, int((counts > 0).sum()))
        self.used.zero_()
        self.used[:k] = order[:k].sort().values
        self.n_used.fill_(k)
        self.compact.fill_(int((self.used[:k] == order[0]).nonzero()[0, 0]))
        self.compact[self.used[:k]] = torch.arange(k)

    # -- layout: (B, t, h, w) <-> (B, L) with the tokens of one group adjacent ---------------------
    def to_seq(self, idx: torch.Tensor) -> torch.Tensor:
        b = idx.shape[0]
        (t, h, w), (gt, gh, gw) = self.grid, self.group
        x = idx.reshape(b, t // gt, gt, h // gh, gh, w // gw, gw).permute(0, 1, 3, 5, 2, 4, 6)
        return x.reshape(b, -1)

    def from_seq(self, seq: torch.Tensor) -> torch.Tensor:
        b = seq.shape[0]
        (t, h, w), (gt, gh, gw) = self.grid, self.group
        x = seq.reshape(b, t // gt, h // gh, w // gw, gt, gh, gw).permute(0, 1, 4, 2, 5, 3, 6)
        return x.reshape(b, t, h, w)

    # -- the network ------------------------------------------------------------------------------
    def features(self, seq: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """seq (B, L) token ids (mask_id where masked), labels (B,) (n_classes: none) -> (B, L, emb)."""
        b = seq.shape[0]
        e = self.tok_emb(seq).view(b, self.positions, self.g, -1) + self.sub_emb
        x = self.inp(e.flatten(2))  # (B, P, dim)
        x = torch.cat([self.cls(labels)[:, None], x], 1) + self.pos
        x = self.norm(self.body(x))[:, 1:]
        f = self.out(x).view(b, self.positions, self.g, -1) + self.sub_emb
        return f.reshape(b, self.positions * self.g, -1)

    def logits(self, feats: torch.Tensor) -> torch.Tensor:
        """(M, emb) -> (M, n_used) logits over the used codes (compact ids)."""
        k = int(self.n_used)
        return feats @ self.tok_emb.weight[:k].T + self.out_bias[:k]

    def loss(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x (B, t, h, w) indices, y (B,) classes: cross-entropy on randomly masked tokens."""
        seq = self.to_seq(self.compact[x.long()])
        b, n = seq.shape
        u = torch.rand(b, 1, generator=generator)
        n_mask = (torch.cos(u * math.pi / 2) * n).ceil().clamp(1, n)  # MaskGIT's cosine schedule
        ranks = torch.rand(b, n, generator=generator).argsort(1).argsort(1)
        mask = ranks < n_mask
        labels = y.long().clone()
        if self.training and self.class_dropout > 0:
            drop = torch.rand(b, generator=generator) < self.class_dropout
            labels[drop] = self.n_classes
        feats = self.features(torch.where(mask, self.mask_id, seq), labels)
        # the loss reads at most `loss_tokens` masked tokens per video, drawn at random (an unbiased
        # estimate of the mean over all masked tokens, at a fraction of the cost of 2 048 softmaxes)
        scored = mask & (ranks < self.loss_tokens)
        return F.cross_entropy(self.logits(feats[scored]), seq[scored])

    @torch.no_grad()
    def _guided_logprobs(self, seq: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """log-probabilities (B, L, V) for positions `rows` (B, L) bool; -inf rows elsewhere."""
        f = self.features(seq, labels)
        logit = self.logits(f[rows])
        if self.guidance:
            fu = self.features(seq, torch.full_like(labels, self.n_classes))
            logit = logit + self.guidance * (logit - self.logits(fu[rows]))
        return F.log_softmax(logit / max(self.temperature, 1e-6), -1)

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, generator: torch.Generator | None = None, chunk: int = 8) -> torch.Tensor:
        """labels (B,) -> indices (B, t, h, w), by iterative unmasking."""
        self.eval()
        return torch.cat([self._sample(labels[i:i + chunk].long(), generator) for i in range(0, len(labels), chunk)])

    def _sample(self, labels: torch.Tensor, generator) -> torch.Tensor:
        b, n = len(labels), self.positions * self.g
        seq = torch.full((b, n), self.mask_id, dtype=torch.long)
        for s in range(self.steps):
            masked = seq == self.mask_id
            logp = self._guided_logprobs(seq, labels, masked)  # (M, V) for the masked tokens
            pick = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(1)
            conf = torch.full((b, n), float("inf"))
            frac = (s + 1) / self.steps
            gumbel = -torch.log(-torch.log(torch.rand(len(pick), generator=generator).clamp(1e-20, 1)))
            conf[masked] = logp.gather(1, pick[:, None]).squeeze(1) + self.noise * (1 - frac) * gumbel
            proposal = seq.clone()
            proposal[masked] = pick
            keep_masked = int(math.floor(n * math.cos(math.pi / 2 * frac)))
            keep_masked = min(keep_masked, int(masked.sum(1).min()) - 1) if s < self.steps - 1 else 0
            if keep_masked > 0:
                cut = conf.sort(1).values[:, keep_masked - 1:keep_masked]
                proposal[conf <= cut] = self.mask_id
            seq = proposal
        return self.from_seq(self.used[seq])


@hookimpl
def register_heads(register):
    register(HeadSpec(
        name="token-prior", task="generate", aliases=("maskgit",), consumes="indices",
        build=lambda **cfg: TokenPrior(**cfg),
        description="Class-conditional masked-token transformer over token indices (MaskGIT iterative "
                    "unmasking, 2x4x4 token groups per position); samples are always on the codebook"))
