"""Head `gaussian-prior`: one Gaussian over the flattened latents of every training video.

A full covariance over 8 192 latent values (4 x 8 x 16 x 16) would need 67 M numbers from 1 400
videos, so the covariance is low-rank plus diagonal (probabilistic-PCA style):

    x = mean + V_k diag(sqrt(lambda_k)) z + sqrt(residual) e,   z ~ N(0, I_k), e ~ N(0, I_D)

V_k are the top-k principal directions of the training latents, lambda_k their variances, and
`residual` the per-value variance the k directions leave unexplained. It is fitted in closed form
(one SVD), not trained. The latents it models are the cached quantized latents (on the FSQ grid);
its samples are continuous and are snapped to the nearest FSQ grid point (tokenizer.quantize) before
decoding, so the decoder only ever sees codes it was trained on. A Gaussian knows nothing of "one dot":
expect blurred or doubled dots, and see valid_fraction.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from magtask import GenerateHead, HeadSpec, MagtaskError, Option, hookimpl


class GaussianPrior(nn.Module, GenerateHead):
    conditional = False
    snap_to_grid = True

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

    def fit(self, data) -> None:
        """A fitted head: data.x (N, C, t, h, w) latents (one Gaussian over all of them)."""
        self.fit_groups(data.x, data.y)

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
        """labels (B,) -> latents (B, C, t, h, w), continuous (the task snaps them to the grid)."""
        g = self._group(labels.long().clamp_min(0))
        if not bool(self.fitted[g].all()):
            raise MagtaskError("this prior was not fitted for a requested class (too few training videos)")
        b, d = len(g), self.mean.shape[1]
        z = torch.randn(b, self.rank, generator=generator)
        e = torch.randn(b, d, generator=generator)
        x = self.mean[g] + torch.einsum("bk,bkd->bd", z * self.scales[g], self.components[g]) + e * self.residual_std[g]
        return x.view(b, *self.in_shape)


@hookimpl
def register_heads(register):
    register(HeadSpec(
        name="gaussian-prior", task="generate", aliases=("gaussian",), consumes="latents",
        build=lambda cfg: GaussianPrior(cfg.in_shape, rank=cfg.options["rank"]),
        options=(Option("rank", int, 32, "principal directions kept", lo=1, hi=4096),),
        description="Unconditional Gaussian over flattened latents (top-32 PCA + diagonal residual, fitted in "
                    "closed form); samples snapped to the FSQ grid before decoding"))
