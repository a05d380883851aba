"""A mixture of low-rank Gaussians over whole code grids, one mixture per group (class) or one in all.

Fitted in closed form on the train split's codes alone: each group's flattened codes (N_g, D),
D = C * t * h * w (8 192 on the default data), are split by k-means into `components` clusters of at
least `min_members` videos each (so that no component is one training video: its mean is an average,
never a copy); each cluster gets a mean and its top-`rank` principal directions with their variances
(probabilistic PCA without the diagonal residual, which would only sprinkle noise over the grid):

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
from torch import nn

from magtask import MagtaskError

MAX_NUMBERS = 64_000_000  # 256 MB of float32 parameters


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


class CodeMixture(nn.Module):
    def __init__(self, shape: tuple[int, ...], groups: int = 1, components: int = 32, rank: int = 4,
                 min_members: int = 4, spread: float = 1.0):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        d = math.prod(self.shape)
        self.g, self.m, self.rank = int(groups), int(components), int(rank)
        self.min_members, self.spread = max(2, int(min_members)), float(spread)
        self.register_buffer("weights", torch.zeros(self.g, self.m))  # cluster sizes (0: no cluster)
        self.register_buffer("mean", torch.zeros(self.g, self.m, d))
        self.register_buffer("directions", torch.zeros(self.g, self.m, self.rank, d))
        self.register_buffer("scales", torch.zeros(self.g, self.m, self.rank))

    @staticmethod
    def check_size(shape, groups: int, components: int, rank: int, head: str) -> None:
        n = groups * components * (rank + 1) * math.prod(shape)
        if n > MAX_NUMBERS:
            raise MagtaskError(f"{head}: {groups} x {components} components of rank {rank} over {math.prod(shape)} "
                               f"code values is {n / 1e6:.0f} M numbers (limit {MAX_NUMBERS / 1e6:.0f} M); "
                               "use fewer: -o components=N -o rank=R")

    @torch.no_grad()
    def fit(self, x: torch.Tensor, groups: torch.Tensor, seed: int = 0) -> None:
        """x (N, *shape) codes, groups (N,) in 0..g-1 (a group with fewer than 2 videos gets no cluster)."""
        x = x.reshape(len(x), -1).float()
        self.weights.zero_()
        for g in range(self.g):
            xg = x[groups == g]
            if len(xg) < 2:
                continue
            m = min(self.m, max(1, len(xg) // self.min_members))
            a = merge_small(xg, kmeans(xg, m, seed=seed + g), min(self.min_members, len(xg)))
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
