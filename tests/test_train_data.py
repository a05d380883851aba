"""Tokenizer training reads its videos on demand: the pooled train split of several datasets."""

import numpy as np

from magtask.data.dataset import load_dataset
from magtask.data.generate import generate_dataset
from magtask.tensorfile import FileArray
from magtask.tokenizer.train import _Pool


def test_pool_equals_the_concatenated_splits(tiny_dataset, tmp_path):
    other = tmp_path / "other.safetensors"
    generate_dataset(other, per_class=3, seed=9)
    sets = [load_dataset(tiny_dataset), load_dataset(other)]
    assert isinstance(sets[0].videos, FileArray)  # nothing read yet
    pool = _Pool(sets, "train")
    full = np.concatenate([np.asarray(d.videos)[np.sort(d.indices("train"))] for d in sets])
    assert len(pool) == len(full)
    pos = np.array([len(full) - 1, 0, 5, len(full) - 2, 5])  # both datasets, any order, repeats
    assert np.array_equal(pool[pos].numpy(), full[pos])
