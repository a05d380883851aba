"""magtask-knn: classify videos by majority vote of their k nearest training codes.

A head that is *fitted*, not trained: it has fit(x, y), so magtask's shared loop calls fit
instead of running gradient descent.
"""

from __future__ import annotations

import torch

from magtask import HeadSpec, hookimpl


class KNNClassifier:
    def __init__(self, in_shape, n_classes: int, k: int = 5, **_):
        self.k, self.n_classes = k, n_classes
        self.x = self.y = None

    def fit(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x.flatten(1).float(), y.long()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(B, *in_shape) -> (B, n_classes) vote counts: the class with most votes wins."""
        if self.x is None:
            raise RuntimeError("fit() first")
        d = torch.cdist(x.flatten(1).float(), self.x)  # (B, N_train)
        nearest = d.topk(min(self.k, len(self.x)), largest=False).indices
        return torch.nn.functional.one_hot(self.y[nearest], self.n_classes).sum(1).float()


@hookimpl
def register_heads(register):
    register(HeadSpec(name="knn-classifier", task="classify", aliases=("knn",), build=KNNClassifier,
                      consumes="latents", description="k nearest training codes vote (k=5); fitted, not trained"))
