"""Head `token-prior` (alias `maskgit`): a class-conditional masked-token transformer over the token grid.

MaskGIT (Chang et al. 2022), the generator MAGVIT uses, over every token of a video's grid (t, h, w),
learnt from the train split's token indices and labels alone (side inputs: none):

    indices (B, t, h, w) -> a vocabulary of `vocab` token ids (default 16): the medoids of a k-means of
    the codes of the tokens the training grids use, weighted by their counts; every other id is read
    as the nearest vocabulary id by code distance on the grid (benchmarks/generate.md: what that costs
    the real test videos) -> magtask_plugins.blocks.patch_maskgit.PatchMaskGIT over vocabulary entries
    (its output layer scores `vocab` entries, not the codebook): patches of `patch_t` x `patch` x `patch`
    tokens are the transformer's positions (2 x 4 x 4 on the default 8 x 16 x 16 grid: 64 positions),
    masking and the loss are per token.

Trained with MaskGIT's objective (cosine-schedule mask ratio, cross-entropy on every masked token;
`loss_tokens` > 0 scores a uniform subset of that many per grid instead; class dropout 0.1 so the
same model also knows "no class"). Sampled by `steps` rounds of iterative unmasking on the cosine
schedule at `temperature`, optionally with classifier-free `guidance`. Samples are token ids of the
tokenizer's codebook (the task turns them into codes with the tokenizer's own indices_to_codes): no
training code is copied.

Scale: a grid of more than MAX_POSITIONS patches is refused before work, with the patch options that fit.
"""

from __future__ import annotations

import math

import torch

from magtask import GenerateHead, HeadSpec, MagtaskError, Option, hookimpl
from magtask_plugins.blocks.patch_maskgit import PatchMaskGIT

MAX_POSITIONS = 1024


def fitting_patch(size: int, want: int) -> int:
    """The largest divisor of size that is at most want."""
    return max(d for d in range(1, min(size, want) + 1) if size % d == 0)


def weighted_medoids(x: torch.Tensor, w: torch.Tensor, k: int, seed: int, ids: torch.Tensor) -> torch.Tensor:
    """Rows x (N, C) with weights w (N,) -> the ids of k (or fewer, if they coincide) medoids of a weighted
    k-means, sorted."""
    gen = torch.Generator().manual_seed(seed)
    cen = x[torch.multinomial(w, k, generator=gen)].clone()
    for _ in range(30):
        a = torch.cdist(x, cen).argmin(1)
        for j in range(k):
            if (a == j).any():
                cen[j] = (x[a == j] * w[a == j, None]).sum(0) / w[a == j].sum()
    return ids[torch.cdist(cen, x).argmin(1)].unique()


class TokenPrior(torch.nn.Module, GenerateHead):
    conditional = True
    # default data: 44 steps per epoch; benchmarks/generate.md has the measured training time and the
    # score-vs-training-time curve
    train_defaults = {"epochs": 90, "batch_size": 32, "lr": 3e-3, "weight_decay": 0.01, "patience": 90}

    def __init__(self, in_shape, grid, n_classes: int = 4, patch: int = 4, patch_t: int = 2, dim: int = 128,
                 depth: int = 3, heads: int = 4, emb: int = 16, loss_tokens: int = 0, steps: int = 12,
                 temperature: float = 1.0, guidance: float = 0.0, noise: float = 4.5, vocab: int = 16, **_):
        super().__init__()
        if grid is None or not grid.quantized:
            raise MagtaskError("token-prior models token indices; this tokenizer has continuous latents (no code grid)")
        t, h, w = (int(s) for s in in_shape)
        pt, p = fitting_patch(t, patch_t), fitting_patch(math.gcd(h, w), patch)
        n_pos = (t // pt) * (h // p) * (w // p)
        if n_pos > MAX_POSITIONS:
            raise MagtaskError(f"token-prior: a {t} x {h} x {w} token grid in {pt} x {p} x {p} patches is {n_pos} "
                               f"transformer positions (limit {MAX_POSITIONS}); use bigger patches, e.g. "
                               f"-o patch={2 * p} -o patch_t={min(2 * pt, t)}")
        self.grid = grid
        self.codebook_size, self.vocab = int(grid.codebook_size), max(1, int(vocab))
        self.steps, self.temperature, self.guidance, self.noise = int(steps), float(temperature), float(guidance), float(noise)
        self.net = PatchMaskGIT((t, h, w), self.vocab, int(n_classes), patch=(pt, p), dim=int(dim),
                                depth=int(depth), heads=int(heads), emb=int(emb), loss_tokens=int(loss_tokens))
        # the codebook id of each vocabulary entry (prepare() fills it; the transformer scores only these)
        self.register_buffer("vocab_ids", torch.zeros(self.vocab, dtype=torch.long))

    @torch.no_grad()
    def prepare(self, data) -> None:
        """See the training indices data.x (N, t, h, w) once and choose the vocabulary: the medoids of a
        k-means of the used tokens' codes weighted by their counts (every used id if there are at most
        `vocab`; fewer used ids than `vocab` leave the rest of the entries disallowed)."""
        counts = torch.bincount(data.x.long().flatten(), minlength=self.codebook_size)
        used = torch.nonzero(counts).squeeze(1)
        if len(used) > self.vocab:
            med = weighted_medoids(self.grid.codes_from_indices(used, dim=-1), counts[used].float(), self.vocab,
                                   data.seed, used)
            rest = used[~torch.isin(used, med)]
            used = torch.cat([med, rest[counts[rest].argsort(descending=True)][:self.vocab - len(med)]]).sort().values
        self.vocab_ids.zero_()
        self.vocab_ids[:len(used)] = used
        self.net.allowed.zero_()
        self.net.allowed[:len(used)] = True

    def to_vocab(self, ids: torch.Tensor) -> torch.Tensor:
        """Codebook ids (any shape) -> the vocabulary entry nearest to each by code distance on the grid."""
        n = int(self.net.allowed.sum())
        codes = self.grid.codes_from_indices(ids.long().flatten(), dim=-1)
        return torch.cdist(codes, self.grid.codes_from_indices(self.vocab_ids[:n], dim=-1)).argmin(1).view(ids.shape)

    def loss(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None,
             ratio: float | None = None) -> torch.Tensor:
        """x (B, t, h, w) token indices, y (B,) classes: MaskGIT's masked-token cross-entropy."""
        return self.net.loss(self.to_vocab(x), y, generator, ratio)

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, generator: torch.Generator | None = None, chunk: int = 64) -> torch.Tensor:
        """labels (B,) -> token indices (B, t, h, w)."""
        self.eval()
        out = [self.net.sample(labels[i:i + chunk].long(), steps=self.steps, temperature=self.temperature,
                               noise=self.noise, guidance=self.guidance, generator=generator)
               for i in range(0, len(labels), chunk)]
        return self.vocab_ids[torch.cat(out)]


@hookimpl
def register_heads(register):
    register(HeadSpec(
        name="token-prior", task="generate", aliases=("maskgit",), consumes="indices",
        build=lambda cfg: TokenPrior(cfg.in_shape, cfg.grid, n_classes=cfg.n_classes, **cfg.options),
        side_inputs=(),
        options=(Option("steps", int, 12, "MaskGIT unmasking rounds (cosine schedule)", lo=1, hi=1024),
                 Option("temperature", float, 1.0, "sampling temperature", lo=1e-3, hi=100),
                 Option("guidance", float, 0.0, "classifier-free guidance scale (0: none)", lo=0, hi=20),
                 Option("vocab", int, 16, "tokens the model may use: the K medoids of the training grids' codes "
                        "(every other id is read as the nearest of them)", lo=1, hi=4096),
                 Option("patch", int, 4, "tokens per patch side (a transformer position)", lo=1, hi=64),
                 Option("patch_t", int, 2, "latent steps per patch", lo=1, hi=64),
                 Option("dim", int, 128, "transformer width", lo=8, hi=2048),
                 Option("depth", int, 3, "transformer layers", lo=1, hi=48)),
        description="Class-conditional MaskGIT over the whole token grid (2x4x4-token patches as positions, "
                    "per-token masking), trained on the codes alone; sampled by iterative unmasking"))
