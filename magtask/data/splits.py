"""Stratified, fixed train/val/test splits: they depend on the labels and a seed, never on a head."""

from __future__ import annotations

import numpy as np

SPLIT_NAMES = ("train", "val", "test")
TRAIN, VAL, TEST = 0, 1, 2
FRACTIONS = (0.7, 0.15, 0.15)


def stratified_split(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N,) uint8 of 0/1/2: within each class, 70 % train, 15 % val, 15 % test, at random."""
    labels = np.asarray(labels)
    split = np.zeros(len(labels), dtype=np.uint8)
    rng = np.random.default_rng([seed, 7])
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        # at least one test and one val video per class once a class has three
        n_test = max(int(round(len(idx) * FRACTIONS[2])), int(len(idx) >= 3))
        n_val = max(int(round(len(idx) * FRACTIONS[1])), int(len(idx) >= 3))
        split[idx[:n_test]] = TEST
        split[idx[n_test:n_test + n_val]] = VAL
    return split
