"""Low-rank Gaussians over flattened vectors, one per group (probabilistic-PCA style), fitted in closed form.

`track-prior` uses one per (class, cluster) over the dot's frame track. A full covariance over D
values needs D^2 numbers, so the covariance is low-rank plus diagonal:

    x = mean + V_k diag(sqrt(lambda_k)) z + sqrt(residual) e,   z ~ N(0, I_k), e ~ N(0, I_D)

V_k are the top-k principal directions of the group's rows, lambda_k their variances, and
`residual` the per-value variance the k directions leave unexplained (one SVD per group).
(The first `gaussian-prior` head was this over whole code grids: valid 0.000, benchmarks/generate.md.)
"""

from __future__ import annotations

import math

import torch
from torch import nn

from magtask import MagtaskError


class LowRankGaussians(nn.Module):
    def __init__(self, in_shape, n_classes: int = 4, rank: int = 32, groups: int | None = None, **_):
        super().__init__()
        self.in_shape = tuple(int(s) for s in in_shape)
        d = math.prod(self.in_shape)
        g = 1 if groups is None else int(groups)  # one Gaussian, or one per class
        self.rank = int(rank)
        self.register_buffer("mean", torch.zeros(g, d))
        self.register_buffer("components", torch.zeros(g, self.rank, d))  # rows: principal directions
        self.register_buffer("scales", torch.zeros(g, self.rank))  # sqrt of their variances
        self.register_buffer("residual_std", torch.zeros(g, d))
        self.register_buffer("fitted", torch.zeros(g, dtype=torch.bool))

    def _group(self, y: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(y) if self.mean.shape[0] == 1 else y

    @torch.no_grad()
    def fit_groups(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """x (N, ...) rows, y (N,) their group: the mean, top-k directions and residual per group."""
        x = x.reshape(len(x), -1).double()
        groups = self._group(y.long())
        for g in range(self.mean.shape[0]):
            xg = x[groups == g]
            if len(xg) < 2:
                continue  # no prior for a group with fewer than two videos (sampling it is refused)
            mu = xg.mean(0)
            xc = xg - mu
            _, s, vh = torch.linalg.svd(xc, full_matrices=False)
            k = min(self.rank, len(s))
            var = s[:k] ** 2 / (len(xg) - 1)
            explained = (vh[:k] ** 2 * var[:, None]).sum(0)
            resid = (xc.pow(2).sum(0) / (len(xg) - 1) - explained).clamp_min(1e-6)
            self.mean[g] = mu.float()
            self.components[g, :k] = vh[:k].float()
            self.scales[g, :k] = var.sqrt().float()
            self.residual_std[g] = resid.sqrt().float()
            self.fitted[g] = True

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """labels (B,) groups -> (B, *in_shape) samples."""
        g = self._group(labels.long().clamp_min(0))
        if not bool(self.fitted[g].all()):
            raise MagtaskError("this prior was not fitted for a requested class (too few training videos)")
        b, d = len(g), self.mean.shape[1]
        z = torch.randn(b, self.rank, generator=generator)
        e = torch.randn(b, d, generator=generator)
        x = self.mean[g] + torch.einsum("bk,bkd->bd", z * self.scales[g], self.components[g]) + e * self.residual_std[g]
        return x.view(b, *self.in_shape)
