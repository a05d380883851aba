import math

import numpy as np
import pytest
import torch

from magtask import metrics, trajectory_eval
from magtask.data.dataset import load_dataset
from magtask.data.generate import generate_dataset


@pytest.fixture(scope="module", params=["seed", "varied", "bright"])
def data(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / f"{request.param}.safetensors"
    generate_dataset(path, per_class=6, seed=3, style=request.param)
    return load_dataset(path)


def test_tracker_matches_ground_truth(data):
    v = np.asarray(data.videos)
    c = trajectory_eval.dot_centroids(v)
    err = np.sqrt(((c - data.centres) ** 2).sum(-1))
    assert err.max() < 0.1
    assert trajectory_eval.centre_error_px(v, data.centres) < 0.05
    assert trajectory_eval.one_dot_valid(v).all()


def test_blank_psnr_is_a_low_baseline(data):
    v = np.asarray(data.videos)
    blank = metrics.blank_video(v)
    assert 15 < metrics.psnr(blank, v) < 25
    assert metrics.psnr(v, v) == float("inf")
    assert trajectory_eval.one_dot_valid(blank).sum() == 0
    assert trajectory_eval.dot_counts(blank)[0].max() == 0
    # a blank "reconstruction" is a miss in every frame: the error is large, never free
    assert trajectory_eval.centre_error_px(blank, data.centres) > 20


def test_one_dot_validity_counts_zero_and_two():
    from magtask.data.styles import SEED_BACKGROUND

    v = np.full((1, 3, 3, 32, 32), SEED_BACKGROUND[0], dtype=np.float32)
    v[0, 1, :, 4:9, 4:9] = 0.1  # one dot
    v[0, 2, :, 4:9, 4:9] = 0.1  # two dots
    v[0, 2, :, 20:25, 18:23] = 0.1
    counts, _ = trajectory_eval.dot_counts(v)
    assert counts.tolist() == [[0, 1, 2]]
    assert trajectory_eval.one_dot_valid(v).tolist() == [[False, True, False]]
    c = trajectory_eval.dot_centroids(v)
    assert np.isnan(c[0, 0]).all() and np.allclose(c[0, 1], [6.5, 6.5])
    v[0, 1, :, 20, 20] = 0.1  # a one-pixel speck is not a dot
    assert trajectory_eval.dot_counts(v)[0][0, 1] == 1


def test_codebook_usage():
    used, ppl = metrics.codebook_usage(np.array([0, 1, 2, 3]), 8)
    assert used == 0.5 and abs(ppl - 4) < 1e-9
    assert metrics.codebook_usage(np.zeros(10, int), 8) == (0.125, 1.0)


def test_foreground_and_background_psnr_split_the_error():
    """A static gradient background and a moving 3x3 square: the mask is the square (+ a 1-px ring) in
    every frame, the gradient is background; errors on one side show only in that side's PSNR."""
    n, t, h, w = 2, 6, 16, 16
    grad = torch.linspace(0.1, 0.9, w).view(1, 1, 1, 1, w).expand(n, t, 3, h, w).clone()
    videos = grad.clone()
    for f in range(t):
        videos[:, f, :, 5:8, 2 * f:2 * f + 3] = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    mask = metrics.foreground_mask(videos)
    assert mask.shape == (n, t, h, w)
    for f in range(t):
        square = torch.zeros(h, w, dtype=torch.bool)
        square[5:8, 2 * f:2 * f + 3] = True
        assert mask[0, f][square].all()
        ring = torch.nn.functional.max_pool2d(square.float()[None, None], 3, 1, 1)[0, 0].bool()
        assert not mask[0, f][~ring].any()
    wrong_dot = grad.clone()  # the background exact, the square missing
    fg, bg = metrics.region_psnr(wrong_dot, videos, mask), metrics.region_psnr(wrong_dot, videos, ~mask)
    assert bg == float("inf") and fg < 15
    noisy_bg = videos.clone()
    noisy_bg[~mask[:, :, None].expand_as(videos)] += 0.05
    assert metrics.region_psnr(noisy_bg, videos, mask) == float("inf")
    assert abs(metrics.region_psnr(noisy_bg, videos, ~mask) - 26.02) < 0.1  # 10 log10(1 / 0.05^2)
    assert math.isnan(metrics.region_psnr(videos, videos, torch.zeros_like(mask)))
