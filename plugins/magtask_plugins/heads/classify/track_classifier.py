"""Head `track-classifier`: read the dot's track off the code grid, describe its motion, classify.

Built for label efficiency. The tokenizer never sees labels, but its codes say where the dot is:
in each latent time step the cells whose code differs from the video's background code are the
dot's, so their distance-weighted centroid is the dot's position (about half a pixel from the truth
on the default data). The four families differ in how the dot moves, so the head describes the
track by how well simple motion models fit it, each fit's residual relative to the track's size
(so where the track is and how big it is do not matter):
    poly1..poly4  a polynomial of degree 1..4 in time (constant velocity, constant acceleration, ...)
    line          the spread across the track's main direction (is the path straight?)
    conic         the best conic section through the points (ellipses, parabolas and lines are conics;
                  a projected helix is not)
A two-layer MLP on these few numbers, fitted full-batch (a fitted head: the features are computed
once), needs only a handful of labelled videos. The features are
hand-chosen for trajectory videos, which is the point and the limit of this head: `mlp-classifier`
learns from the raw code grid instead.
"""

from __future__ import annotations

import torch
from torch import nn

from magtask import ClassifyHead, HeadSpec, MagtaskError, Option, hookimpl
from magtask_plugins.blocks.dot_windows import code_track

FEATURES = ("poly1", "poly2", "poly3", "poly4", "line", "conic")


MIN_STEPS = 6  # the motion-model fits need at least this many positions


def motion_features(track: torch.Tensor) -> torch.Tensor:
    """(B, T, 2) positions -> (B, len(FEATURES)) log relative residuals of the motion-model fits."""
    c = track.double()
    n, t, _ = c.shape
    if t < MIN_STEPS:
        raise MagtaskError(f"a track needs at least {MIN_STEPS} steps for these fits, got {t}")
    c = c - c.mean(1, keepdim=True)
    scale = c.pow(2).sum((1, 2)).div(t).sqrt().clamp_min(1e-9)
    time = torch.linspace(-1, 1, t, dtype=c.dtype)
    out = []
    for deg in (1, 2, 3, 4):
        v = torch.stack([time ** k for k in range(deg + 1)], 1)  # (T, deg+1)
        fit = v @ torch.linalg.pinv(v)
        r = c - fit @ c
        out.append(r.pow(2).sum((1, 2)).div(t).sqrt() / scale)
    s = torch.linalg.svdvals(c)  # (B, 2): spread along and across the main direction
    out.append(s[:, 1] / s[:, 0].clamp_min(1e-9))
    u = c / scale[:, None, None]
    x, y = u[..., 0], u[..., 1]
    design = torch.stack([x * x, x * y, y * y, x, y, torch.ones_like(x)], -1)  # (B, T, 6)
    sv = torch.linalg.svdvals(design)
    out.append(sv[:, -1] / sv[:, 0].clamp_min(1e-9))
    return torch.log(torch.stack(out, 1) + 1e-4).float()


class TrackClassifier(nn.Module, ClassifyHead):
    """Fitted, not trained by the shared loop: the features are computed once, then the MLP is fitted
    full-batch on them (standardised by the training set's mean and spread, kept as buffers)."""

    def __init__(self, n_classes: int, hidden: int = 64, steps: int = 300):
        super().__init__()
        self.steps = steps
        self.register_buffer("mean", torch.zeros(len(FEATURES)))
        self.register_buffer("std", torch.ones(len(FEATURES)))
        self.mlp = nn.Sequential(nn.Linear(len(FEATURES), hidden), nn.GELU(), nn.Linear(hidden, n_classes))

    @staticmethod
    def features(codes: torch.Tensor, batch: int = 256) -> torch.Tensor:
        return torch.cat([motion_features(code_track(codes[i:i + batch])) for i in range(0, len(codes), batch)])

    def fit(self, data) -> None:
        """A fitted head: the features of data.x (N, C, t, h, w), an MLP fitted full-batch on data.y."""
        f, labels = self.features(data.x), data.y
        self.mean.copy_(f.mean(0))
        self.std.copy_(f.std(0, unbiased=False).clamp_min(0.05))
        z = (f - self.mean) / self.std
        opt = torch.optim.AdamW(self.mlp.parameters(), lr=1e-2, weight_decay=1e-3)
        self.train()
        for _ in range(self.steps):
            loss = nn.functional.cross_entropy(self.mlp(z), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        self.eval()

    def forward(self, codes: torch.Tensor) -> torch.Tensor:  # (B, C, t, h, w) -> (B, n_classes)
        return self.mlp((self.features(codes) - self.mean) / self.std)


def build(cfg) -> TrackClassifier:
    t = int(cfg.in_shape[1])
    if t < MIN_STEPS:
        raise MagtaskError(f"track-classifier fits motion models to the dot's track over the latent steps and needs "
                           f"at least {MIN_STEPS}; this tokenizer gives {t} for {cfg.frames}-frame videos "
                           f"(use mlp-classifier, or longer videos)")
    return TrackClassifier(cfg.n_classes, **cfg.options)


@hookimpl
def register_heads(register):
    register(HeadSpec(name="track-classifier", task="classify", aliases=("track",),
                      build=build, consumes="latents",
                      side_inputs=("task_features",),
                      options=(Option("hidden", int, 64, "hidden units of the MLP", lo=1, hi=4096),
                               Option("steps", int, 300, "full-batch optimiser steps of the fit", lo=1, hi=100_000)),
                      description="Dot track read off the code grid -> motion-model fit residuals -> tiny MLP "
                                  "(label-efficient)"))
