"""The independent judge classifies real held-out videos from their tracked dots."""

import numpy as np

from magtask.data.dataset import load_dataset
from magtask.data.generate import generate_dataset
from magtask.trajectory_eval import train_judge


def test_judge_is_accurate_on_real_test_videos(tmp_path):
    generate_dataset(tmp_path / "d.safetensors", per_class=60, seed=21)
    ds = load_dataset(tmp_path / "d.safetensors")
    judge = train_judge(ds)
    assert judge.test_accuracy >= 0.9
    test = ds.indices("test")
    pred = judge.predict(np.asarray(ds.videos[test]))
    assert (pred == ds.labels[test]).mean() == judge.test_accuracy
    # a blank video has no track: the judge must still answer (no crash), whatever it says
    blank = np.full((2, 16, 3, 64, 64), 235, np.uint8)
    assert judge.predict(blank).shape == (2,)
