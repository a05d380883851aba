"""Head `class-conditional-prior`: one Gaussian prior per class, sampled by class.

Each class gets the same low-rank-plus-diagonal Gaussian as `gaussian-prior` (top-k principal
directions + residual variance, fitted in closed form on that class's training latents); a sample of
class c is drawn from class c's Gaussian and snapped to the FSQ grid before decoding.
"""

from __future__ import annotations

from magtask import HeadSpec, hookimpl
from magtask_plugins.gaussian_prior import GaussianPrior


class ClassConditionalPrior(GaussianPrior):
    conditional = True

    def __init__(self, in_shape, n_classes: int = 4, rank: int = 32, **_):
        super().__init__(in_shape, n_classes=n_classes, rank=rank, groups=n_classes)


@hookimpl
def register_heads(register):
    register(HeadSpec(
        name="class-conditional-prior", task="generate", aliases=("class-conditional",), consumes="latents",
        build=lambda **cfg: ClassConditionalPrior(**cfg),
        description="One Gaussian per class over flattened latents (top-32 PCA + diagonal residual); samples "
                    "snapped to the FSQ grid before decoding"))
