"""Head `track-classifier`: the dot's track read off the code grid, motion-model fit features, a tiny MLP."""

import json
import math

import numpy as np
import torch

from magtask_plugins.blocks.dot_windows import code_track
from magtask_plugins.heads.classify.track_classifier import FEATURES, motion_features

from conftest import assert_head_reloads, run_cli


def grid_with_dot(cells, channels=4, size=16):
    """Codes of one video: one background code everywhere, another code in the dot's cell per step."""
    codes = torch.tensor([0.5, -0.5, 0.0, 0.25]).view(1, channels, 1, 1, 1).repeat(1, 1, len(cells), size, size)
    for k, (x, y) in enumerate(cells):
        codes[0, :, k, y, x] = torch.tensor([-1.0, 1.0, 1.0, -1.0])
    return codes


def test_code_track_finds_the_dot_cell_per_step():
    cells = [(2, 3), (4, 3), (6, 5), (8, 8), (10, 9), (11, 12), (12, 13), (13, 14)]
    np.testing.assert_allclose(code_track(grid_with_dot(cells))[0].numpy(), np.array(cells, float), atol=1e-4)


def test_code_track_carries_the_last_position_over_a_step_without_a_dot():
    codes = grid_with_dot([(3, 4), (5, 6), (7, 8)])
    codes[0, :, 2] = codes[0, :, 0, 0, 0].view(-1, 1, 1)  # step 2: background only
    np.testing.assert_allclose(code_track(codes)[0, 2].numpy(), [5.0, 6.0], atol=1e-4)


def families(t=torch.linspace(0, 1, 8, dtype=torch.float64)):
    line = torch.stack([2 + 10 * t, 3 + 5 * t], -1)
    parabola = torch.stack([2 + 10 * t, 3 + 20 * t - 18 * t ** 2], -1)
    circle = torch.stack([8 + 5 * torch.cos(1.6 * math.pi * t), 8 + 3 * torch.sin(1.6 * math.pi * t)], -1)
    helix = torch.stack([4 + 3 * torch.cos(4 * math.pi * t) + 8 * t, 8 + 3 * torch.sin(4 * math.pi * t)], -1)
    return torch.stack([line, parabola, circle, helix])


def test_motion_features_separate_the_four_families():
    f = motion_features(families())
    col = {name: f[:, i] for i, name in enumerate(FEATURES)}
    line, parabola, circle, helix = range(4)
    # a straight line at constant speed: fitted by a degree-1 polynomial in time; nothing else is
    assert col["poly1"][line] < -6 and min(col["poly1"][[parabola, circle, helix]]) > -3
    # a parabola: degree 2 fits it, not a circle or a helix
    assert col["poly2"][parabola] < -6 and min(col["poly2"][[circle, helix]]) > -4
    # an ellipse, a parabola (and a line) are conics; a helix's projection is not
    assert max(col["conic"][[parabola, circle]]) < -6 and col["conic"][helix] > -4


def test_motion_features_ignore_where_and_how_big():
    tracks = families()
    moved = tracks * 2.5 + torch.tensor([7.0, -3.0], dtype=torch.float64)
    np.testing.assert_allclose(motion_features(moved).numpy(), motion_features(tracks).numpy(), atol=1e-3)


def test_run_classify_track_with_five_labels_per_class(tiny_dataset, tiny_tokenizer, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli("run", "classify", "track", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer),
                   "--train-per-class", "5", "--run-dir", str(run_dir), "--json", check=True)
    metrics = json.loads(proc.stdout)
    assert metrics["head"] == "track-classifier" and metrics["n_train"] == 20
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["side_inputs"] == ["task_features"]
    assert_head_reloads(run_dir, tiny_dataset, tiny_tokenizer)
