"""The independent judge: which trajectory family does a video show?

It tracks the dot (metrics.dot_centroids, the same tracker for real, generated and predicted videos)
and classifies the track from rotation-, scale- and mirror-invariant features (speeds, turning
angles, pairwise distances). It is trained only on real train-split videos, never on a head's
output, and its own accuracy on the real test split is reported beside every score it gives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from magtask.data.splits import TEST, TRAIN
from magtask.metrics import dot_centroids


def track_features(centres: np.ndarray) -> np.ndarray:
    """(N, T, 2) dot centres (NaN where no dot) -> (N, F) float32 features."""
    c = np.asarray(centres, dtype=np.float64)
    c = fill_gaps(c)
    v = np.diff(c, axis=1)
    step = np.linalg.norm(v, axis=-1)
    mean_step = step.mean(axis=1, keepdims=True).clip(min=1e-6)
    speed = step / mean_step
    ang = np.arctan2(v[..., 1], v[..., 0])
    turn = (np.diff(ang, axis=1) + np.pi) % (2 * np.pi) - np.pi
    turn = turn * np.sign(turn.sum(axis=1, keepdims=True) + 1e-9)
    total = np.abs(turn.sum(axis=1, keepdims=True)) / (2 * np.pi)
    p = c / (mean_step[:, :, None] * c.shape[1])
    pair = np.linalg.norm(p[:, :, None] - p[:, None, :], axis=-1).reshape(len(p), -1)
    return np.nan_to_num(np.concatenate([speed, turn, total, pair], axis=1), nan=0.0, posinf=0.0,
                         neginf=0.0).astype(np.float32)


def fill_gaps(c: np.ndarray) -> np.ndarray:
    """Frames without a dot take the nearest earlier (else later) frame's centre; all-NaN stays 0."""
    c = c.copy()
    n, t, _ = c.shape
    for k in range(1, t):
        gap = np.isnan(c[:, k, 0])
        c[gap, k] = c[gap, k - 1]
    for k in range(t - 2, -1, -1):
        gap = np.isnan(c[:, k, 0])
        c[gap, k] = c[gap, k + 1]
    return np.nan_to_num(c, nan=0.0)


@dataclass
class Judge:
    model: torch.nn.Module
    mean: np.ndarray
    std: np.ndarray
    frames: int
    test_accuracy: float  # on the real test split: how far to trust its verdicts

    @torch.no_grad()
    def predict(self, videos) -> np.ndarray:
        """videos (N, T, 3, H, W), uint8 or float in [0, 1], with T == the frames it was trained on."""
        if len(videos) == 0:
            return np.zeros(0, dtype=np.int64)
        if videos.shape[1] != self.frames:
            raise ValueError(f"the judge was trained on {self.frames}-frame videos, got {videos.shape[1]}")
        x = (track_features(dot_centroids(videos)) - self.mean) / self.std
        return self.model(torch.from_numpy(x)).argmax(1).numpy()


def train_judge(dataset, seed: int = 0, steps: int = 400, batch: int = 256) -> Judge:
    """Fit the judge on the real train split; measure it on the real test split."""
    train_idx, test_idx = dataset.indices(TRAIN), dataset.indices(TEST)

    def feats(idx):
        return np.concatenate([track_features(dot_centroids(np.asarray(dataset.videos[idx[i:i + batch]])))
                               for i in range(0, len(idx), batch)])

    x_tr, x_te = feats(train_idx), feats(test_idx)
    mean, std = x_tr.mean(0), x_tr.std(0) + 1e-6
    y_tr = torch.from_numpy(np.asarray(dataset.labels[train_idx]))
    gen = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(x_tr.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, len(dataset.class_names)))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (1.0 / max(p.shape[-1], 1)) ** 0.5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt = torch.from_numpy((x_tr - mean) / std)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(xt), y_tr).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy((x_te - mean) / std)).argmax(1).numpy()
    acc = float((pred == np.asarray(dataset.labels[test_idx])).mean()) if len(test_idx) else float("nan")
    return Judge(model=model, mean=mean, std=std, frames=dataset.frames, test_accuracy=acc)
