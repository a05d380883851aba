"""Head `class-conditional-prior` (alias `class-conditional`): one code prior per class, sampled by class.

The seed plan's design, learnt from the train split's codes and labels alone (side inputs: none):
per class, a mixture of low-rank Gaussians over the whole code grid (magtask_plugins.blocks.code_mixture:
k-means clusters of at least `min_members` videos, clustered on the codes smoothed over space by
`smooth` cells, each the mean of its codes plus its top-`rank` principal directions), fitted in
closed form. A sample of class c picks a cluster of class c in proportion to its size and draws from
its Gaussian; the generate task snaps it to the code grid with the tokenizer's grid.snap. Measured
alternatives and their scores: benchmarks/generate.md.
"""

from __future__ import annotations

import torch

from magtask import GenerateHead, HeadSpec, MagtaskError, Option, hookimpl
from magtask_plugins.blocks.code_mixture import OPTIONS, CodeMixture


class ClassConditionalPrior(torch.nn.Module, GenerateHead):
    conditional = True
    snap_to_grid = True

    def __init__(self, in_shape, n_classes: int = 4, components: int = 64, name: str = "class-conditional-prior",
                 **options):
        """options: code_mixture.OPTIONS (rank, min_members, spread, smooth); others are ignored."""
        super().__init__()
        self.n_classes = int(n_classes)
        self.mixture = CodeMixture.for_head(in_shape, self.n_classes, components, name, options)

    def fit(self, data) -> None:
        """A fitted head: data.x (N, C, t, h, w) codes, data.y (N,) classes; no side input."""
        self.mixture.fit(data.x, data.y.long(), seed=data.seed)

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """labels (B,) -> (B, C, t, h, w) continuous codes (snapped to the grid by the task)."""
        labels = labels.long()
        if labels.min() < 0 or labels.max() >= self.n_classes or not bool(self.mixture.fitted(labels).all()):
            raise MagtaskError("this prior was not fitted for a requested class (fewer than two training videos)")
        return self.mixture.sample(labels, generator)


@hookimpl
def register_heads(register):
    register(HeadSpec(
        name="class-conditional-prior", task="generate", aliases=("class-conditional",), consumes="latents",
        build=lambda cfg: ClassConditionalPrior(cfg.in_shape, n_classes=cfg.n_classes, **cfg.options),
        side_inputs=(),
        options=(Option("components", int, 64, "k-means clusters per class", lo=1, hi=4096),
                 *OPTIONS),
        description="Per class, a mixture of low-rank Gaussians over the whole code grid (k-means clusters + "
                    "PCA), fitted on the codes alone; samples snapped to the code grid"))
