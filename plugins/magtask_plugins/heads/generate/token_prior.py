"""Head `token-prior` (alias `maskgit`): a class-conditional masked-token transformer over the token grid.

MaskGIT (Chang et al. 2022), the generator MAGVIT uses, over every token of a video's grid (t, h, w),
learnt from the train split's token indices and labels alone (side inputs: none):

    indices (B, t, h, w) -> a vocabulary of `vocab` token ids (default 16): the medoids of a k-means of
    the codes of the tokens the training grids use, weighted by their counts (vocab 0: every used id);
    every other id is read as the nearest vocabulary id by code distance on the grid (re-tokenised,
    the shipped tokenizer's real test videos stay one-dot with 16 of its 416 used tokens: valid 0.91,
    1.00 with 64) -> magtask_plugins.blocks.patch_maskgit.PatchMaskGIT: patches of `patch_t` x `patch` x `patch`
    tokens are the transformer's positions (2 x 4 x 4 on the default 8 x 16 x 16 grid: 64 positions),
    masking and the loss are per token.

Trained with MaskGIT's objective (cosine-schedule mask ratio, cross-entropy on masked tokens;
`loss_tokens` of them per grid scored, a uniform subset, to bound the output layer's cost on CPUs;
class dropout 0.1 so the same model also knows "no class"). Sampled by `steps` rounds of iterative
unmasking on the cosine schedule at `temperature`, optionally with classifier-free `guidance`. Samples
are token ids of the tokenizer's codebook (the task turns them into codes with the tokenizer's own
indices_to_codes): no training code is copied.

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
    # default data: 44 steps per epoch, sized from a probe's 0.7 s a step (10-12 min); on a contended machine it
    # took over 45 min. benchmarks/generate.md has the score-vs-training-time curve (no one-dot video yet)
    train_defaults = {"epochs": 24, "batch_size": 32, "lr": 2e-3, "weight_decay": 0.01, "patience": 24}

    def __init__(self, in_shape, grid, n_classes: int = 4, patch: int = 4, patch_t: int = 2, dim: int = 128,
                 depth: int = 3, heads: int = 4, emb: int = 16, loss_tokens: int = 256, steps: int = 12,
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
        self.codebook_size, self.vocab = int(grid.codebook_size), int(vocab)
        self.steps, self.temperature, self.guidance, self.noise = int(steps), float(temperature), float(guidance), float(noise)
        self.net = PatchMaskGIT((t, h, w), self.codebook_size, int(n_classes), patch=(pt, p), dim=int(dim),
                                depth=int(depth), heads=int(heads), emb=int(emb), loss_tokens=int(loss_tokens))
        # every token id -> itself if the training grids use it, else the nearest id they use (prepare() fills it)
        self.register_buffer("nearest_used", torch.arange(self.codebook_size))

    @torch.no_grad()
    def prepare(self, data) -> None:
        """See the training indices data.x (N, t, h, w) once: the token ids they use (with vocab = K > 0,
        K of them: the medoids of a k-means of the used tokens' codes weighted by their counts)."""
        counts = torch.bincount(data.x.long().flatten(), minlength=self.codebook_size)
        used = torch.nonzero(counts).squeeze(1)
        allc = self.grid.codes_from_indices(torch.arange(self.codebook_size), dim=-1)  # (codebook, C)
        if 0 < self.vocab < len(used):
            used = weighted_medoids(allc[used], counts[used].float(), self.vocab, data.seed, used)
        self.nearest_used.copy_(used[torch.cdist(allc, allc[used]).argmin(1)])
        self.net.allowed.zero_()
        self.net.allowed[used] = True

    def loss(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None,
             ratio: float | None = None) -> torch.Tensor:
        """x (B, t, h, w) token indices, y (B,) classes: MaskGIT's masked-token cross-entropy."""
        return self.net.loss(self.nearest_used[x.long()], y, generator, ratio)

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, generator: torch.Generator | None = None, chunk: int = 64) -> torch.Tensor:
        """labels (B,) -> token indices (B, t, h, w)."""
        self.eval()
        out = [self.net.sample(labels[i:i + chunk].long(), steps=self.steps, temperature=self.temperature,
                               noise=self.noise, guidance=self.guidance, generator=generator)
               for i in range(0, len(labels), chunk)]
        return torch.cat(out)


@hookimpl
def register_heads(register):
    register(HeadSpec(
        name="token-prior", task="generate", aliases=("maskgit",), consumes="indices",
        build=lambda cfg: TokenPrior(cfg.in_shape, cfg.grid, n_classes=cfg.n_classes, **cfg.options),
        side_inputs=(),
        options=(Option("steps", int, 12, "MaskGIT unmasking rounds (cosine schedule)", lo=1, hi=1024),
                 Option("temperature", float, 1.0, "sampling temperature", lo=1e-3, hi=100),
                 Option("guidance", float, 0.0, "classifier-free guidance scale (0: none)", lo=0, hi=20),
                 Option("vocab", int, 16, "tokens the model may use: 0 every one the training grids use, K > 0 "
                        "the K medoids of their codes (the others read as the nearest)", lo=0, hi=1 << 20),
                 Option("patch", int, 4, "tokens per patch side (a transformer position)", lo=1, hi=64),
                 Option("patch_t", int, 2, "latent steps per patch", lo=1, hi=64),
                 Option("dim", int, 128, "transformer width", lo=8, hi=2048),
                 Option("depth", int, 3, "transformer layers", lo=1, hi=48)),
        description="Class-conditional MaskGIT over the whole token grid (2x4x4-token patches as positions, "
                    "per-token masking), trained on the codes alone; sampled by iterative unmasking"))
