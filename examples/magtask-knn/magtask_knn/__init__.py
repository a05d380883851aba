"""magtask-knn: classify videos by majority vote of their k nearest training codes.

A head that is *fitted*, not trained: it has fit(data), so magtask calls fit instead of running
gradient descent. Its one option, k, is set with `magtask run classify knn -o k=3`; its state
(the training codes it keeps) is saved to the run dir through state_dict / load_state_dict.
"""

from __future__ import annotations

import torch

from magtask import ClassifyHead, HeadSpec, Option, hookimpl


class KNNClassifier(ClassifyHead):
    scores = "votes"  # vote counts: magtask apply divides them by their sum

    def __init__(self, n_classes: int, k: int = 5):
        self.k, self.n_classes = k, n_classes
        self.x = self.y = None

    def fit(self, data) -> None:
        self.x, self.y = data.x.flatten(1).float(), data.y.long()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(B, *in_shape) -> (B, n_classes) vote counts: the class with most votes wins."""
        if self.x is None:
            raise RuntimeError("fit() first")
        d = torch.cdist(x.flatten(1).float(), self.x)  # (B, N_train)
        nearest = d.topk(min(self.k, len(self.x)), largest=False).indices
        return torch.nn.functional.one_hot(self.y[nearest], self.n_classes).sum(1).float()

    def state_dict(self) -> dict:
        return {} if self.x is None else {"x": self.x, "y": self.y}

    def load_state_dict(self, state: dict) -> None:
        self.x, self.y = state.get("x"), state.get("y")


@hookimpl
def register_heads(register):
    register(HeadSpec(name="knn-classifier", task="classify", aliases=("knn",),
                      build=lambda cfg: KNNClassifier(cfg.n_classes, **cfg.options), consumes="latents",
                      options=(Option("k", int, 5, "neighbours that vote", lo=1),),
                      description="k nearest training codes vote; fitted, not trained"))
