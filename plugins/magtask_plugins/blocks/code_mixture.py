"""A mixture of low-rank Gaussians over whole code grids, one mixture per group (class) or one in all.

Fitted in closed form on the train split's codes alone: each group's codes (N_g, C, t, h, w) are split
by k-means into `components` clusters of at least `min_members` videos each (so that no component is
one training video: its mean is an average, never a copy). The clustering distance is taken between
the codes smoothed over (h, w) by a Gaussian of `smooth` cells (0: raw codes): between raw codes two
grids whose content sits in different cells are equally far apart however far apart those cells are,
so a cluster gathers content from all over the grid and its mean is several faint copies of it.
Each cluster then gets the mean of its raw codes, D = C * t * h * w values (8 192 on the default data),
and its top-`rank` principal directions with their variances (probabilistic PCA without the diagonal
residual, which would only sprinkle noise over the grid):

    x = mean_k + V_k diag(s_k) z * spread,   k ~ Categorical(cluster sizes),  z ~ N(0, I_rank)

Samples are continuous code values; the generate task puts them on the code grid with the tokenizer's
grid.snap (snap_to_grid). Why a mixture and not one Gaussian per class: a linear model of the codes
averages dot positions into several faint dots (issue 18's probe: one PCA Gaussian per class, valid
0.12-0.18); a tight cluster's mean keeps one dot where its members' dots agree.

Memory: groups * components * (rank + 1) * D floats; `check_size` refuses before work when that is
more than MAX_NUMBERS.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from magtask import MagtaskError, Option

MAX_NUMBERS = 64_000_000  # 256 MB of float32 parameters

# the head options every mixture head shares (each head adds its own `components`), and their defaults
OPTIONS = (Option("rank", int, 1, "principal directions of each cluster's Gaussian", lo=1, hi=256),
           Option("min_members", int, 4, "fewest training videos in a cluster (smaller ones are merged)",
                  lo=2, hi=10_000),
           Option("spread", float, 1.0, "scale of the Gaussian draw around a cluster's mean", lo=0, hi=10),
           Option("smooth", float, 2.0, "clustering distance between codes smoothed over space by a "
                  "Gaussian of this many cells (0: raw codes)", lo=0, hi=64))
DEFAULTS = {o.name: o.default for o in OPTIONS}


def kmeans(x: torch.Tensor, m: int, iters: int = 20, seed: int = 0) -> torch.Tensor:
    """(N, D) -> (N,) cluster of each row, m clusters (fewer rows than m: one row per cluster)."""
    m = min(m, len(x))
    gen = torch.Generator().manual_seed(seed)
    cen = x[torch.randperm(len(x), generator=gen)[:m]].clone()
    for _ in range(iters):
        a = torch.cdist(x, cen).argmin(1)
        for j in range(m):
            if (a == j).any():
                cen[j] = x[a == j].mean(0)
    return torch.cdist(x, cen).argmin(1)


def merge_small(x: torch.Tensor, a: torch.Tensor, min_members: int) -> torch.Tensor:
    """Clusters a (N,) of rows x: each cluster smaller than min_members joins the nearest other cluster
    (by centroid), smallest first, until none is (or one cluster is left). Returns labels 0..m'-1."""
    a = a.clone()
    while True:
        ids, counts = torch.unique(a, return_counts=True)
        if len(ids) <= 1 or counts.min() >= min_members:
            break
        small = ids[counts.argmin()]
        cen = torch.stack([x[a == i].mean(0) for i in ids])
        d = torch.cdist(cen[ids == small], cen)[0]
        d[ids == small] = float("inf")
        a[a == small] = ids[d.argmin()]
    return torch.unique(a, return_inverse=True)[1]


def smoothed(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """(N, C, t, h, w) -> the same, each (h, w) plane convolved with a Gaussian of sigma cells
    (edges replicated); sigma 0: x itself."""
    if sigma <= 0:
        return x
    r = max(1, int(math.ceil(3 * sigma)))
    k = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float32) ** 2 / (2 * sigma * sigma))
    k = (k / k.sum()).to(x.dtype)
    n, c, t, h, w = x.shape
    z = x.reshape(n * c * t, 1, h, w)
    z = F.conv2d(F.pad(z, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    z = F.conv2d(F.pad(z, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return z.view(n, c, t, h, w)


def cluster(x: torch.Tensor, m: int, min_members: int, smooth: float = 0.0, seed: int = 0) -> torch.Tensor:
    """x (N, C, t, h, w) codes -> (N,) cluster labels 0..m'-1 (m' <= m): k-means on the codes smoothed
    by `smooth` cells, clusters smaller than min_members merged into their nearest."""
    f = smoothed(x.float(), smooth).reshape(len(x), -1)
    return merge_small(f, kmeans(f, m, seed=seed), min_members)


class CodeMixture(nn.Module):
    def __init__(self, shape: tuple[int, ...], groups: int = 1, components: int = 32, rank: int = DEFAULTS["rank"],
                 min_members: int = DEFAULTS["min_members"], spread: float = DEFAULTS["spread"],
                 smooth: float = DEFAULTS["smooth"]):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        d = math.prod(self.shape)
        self.g, self.m, self.rank = int(groups), int(components), int(rank)
        self.min_members, self.spread, self.smooth = max(2, int(min_members)), float(spread), float(smooth)
        self.register_buffer("weights", torch.zeros(self.g, self.m))  # cluster sizes (0: no cluster)
        self.register_buffer("mean", torch.zeros(self.g, self.m, d))
        self.register_buffer("directions", torch.zeros(self.g, self.m, self.rank, d))
        self.register_buffer("scales", torch.zeros(self.g, self.m, self.rank))

    @classmethod
    def for_head(cls, shape, groups: int, components: int, head: str, options: dict) -> "CodeMixture":
        """A mixture built from a head's options (the OPTIONS above, defaults where absent), its size
        checked first (check_size)."""
        kw = {k: options.get(k, v) for k, v in DEFAULTS.items()}
        cls.check_size(shape, groups, components, kw["rank"], head)
        return cls(shape, groups, components, **kw)

    @staticmethod
    def check_size(shape, groups: int, components: int, rank: int, head: str) -> None:
        n = groups * components * (rank + 1) * math.prod(shape)
        if n > MAX_NUMBERS:
            raise MagtaskError(f"{head}: {groups} x {components} components of rank {rank} over {math.prod(shape)} "
                               f"code values is {n / 1e6:.0f} M numbers (limit {MAX_NUMBERS / 1e6:.0f} M); "
                               "use fewer: -o components=N -o rank=R")

    @torch.no_grad()
    def fit(self, x: torch.Tensor, groups: torch.Tensor, seed: int = 0) -> None:
        """x (N, *shape) codes, shape (C, t, h, w); groups (N,) in 0..g-1 (a group with fewer than 2 videos
        gets no cluster)."""
        x = x.float().reshape(len(x), *self.shape)
        self.weights.zero_()
        for g in range(self.g):
            xg = x[groups == g]
            if len(xg) < 2:
                continue
            m = min(self.m, max(1, len(xg) // self.min_members))
            a = cluster(xg, m, min(self.min_members, len(xg)), self.smooth, seed=seed + g)
            xg = xg.reshape(len(xg), -1)
            for j in range(int(a.max()) + 1):
                xj = xg[a == j]
                mu = xj.mean(0)
                _, s, vh = torch.linalg.svd(xj - mu, full_matrices=False)
                k = min(self.rank, len(s))
                self.mean[g, j] = mu
                self.directions[g, j, :k] = vh[:k]
                self.scales[g, j, :k] = s[:k] / math.sqrt(max(len(xj) - 1, 1))
                self.weights[g, j] = len(xj)

    def fitted(self, groups: torch.Tensor) -> torch.Tensor:
        return self.weights[groups].sum(1) > 0

    @torch.no_grad()
    def sample(self, groups: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """groups (B,) -> (B, *shape) continuous codes."""
        comp = torch.multinomial(self.weights[groups], 1, generator=generator).squeeze(1)
        z = torch.randn(len(groups), self.rank, generator=generator) * self.scales[groups, comp] * self.spread
        x = self.mean[groups, comp] + torch.einsum("bk,bkd->bd", z, self.directions[groups, comp])
        return x.view(len(groups), *self.shape)
