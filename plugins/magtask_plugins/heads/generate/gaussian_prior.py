"""Head `gaussian-prior` (alias `gaussian`): an unconditional mixture of low-rank Gaussians over the codes.

The class-conditional prior's model (magtask_plugins.blocks.code_mixture) with one group for all
training videos: k-means clusters of at least `min_members` videos over the whole code grid
(clustered on the codes smoothed over space by `smooth` cells), each a mean plus its top-`rank`
principal directions, fitted in closed form on the train split's codes alone (side inputs: none).
Samples are continuous; the generate task snaps them to the code grid with the tokenizer's
grid.snap. What was tried and what it scored: benchmarks/generate.md.
"""

from __future__ import annotations

import torch

from magtask import GenerateHead, HeadSpec, Option, hookimpl
from magtask_plugins.blocks.code_mixture import OPTIONS, CodeMixture


class GaussianPrior(torch.nn.Module, GenerateHead):
    conditional = False
    snap_to_grid = True

    def __init__(self, in_shape, components: int = 256, **options):
        """options: code_mixture.OPTIONS (rank, min_members, spread, smooth); others are ignored."""
        super().__init__()
        self.mixture = CodeMixture.for_head(in_shape, 1, components, "gaussian-prior", options)

    def fit(self, data) -> None:
        """A fitted head: data.x (N, C, t, h, w) codes; labels and side inputs unused."""
        self.mixture.fit(data.x, torch.zeros(len(data.x), dtype=torch.long), seed=data.seed)

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """labels (B,) (ignored) -> (B, C, t, h, w) continuous codes."""
        return self.mixture.sample(torch.zeros(len(labels), dtype=torch.long), generator)


@hookimpl
def register_heads(register):
    register(HeadSpec(
        name="gaussian-prior", task="generate", aliases=("gaussian",), consumes="latents",
        build=lambda cfg: GaussianPrior(cfg.in_shape, **cfg.options),
        side_inputs=(),
        options=(Option("components", int, 256, "k-means clusters", lo=1, hi=4096),
                 *OPTIONS),
        description="Unconditional mixture of low-rank Gaussians over the whole code grid (k-means clusters + PCA), "
                    "fitted on the codes alone; samples snapped to the code grid"))
