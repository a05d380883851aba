"""`magtask run generate HEAD` end to end for every built-in head (tiny data, tiny untrained
tokenizer), the samples layout, the grid snapping, and bad input."""

import json
import math

import numpy as np
import pytest
import torch

from magtask.tensorfile import open_tensors

from conftest import assert_head_reloads, run_cli

CONTRACT = {"task", "head", "tokenizer", "data", "seed", "seconds", "n_samples", "valid_fraction",
            "diversity_ratio", "class_match", "judge_test_accuracy", "novelty", "smoothness",
            "real_valid_fraction", "recon_valid_fraction", "real_novelty"}
CLASSES = ["linear", "circular", "helical", "parabolic"]


def train_data(x, y, **side):
    """TrainData for a head's fit / prepare, declaring and handing over exactly the side inputs given."""
    from magtask import TrainData
    from magtask.contracts import SideInputs

    return TrainData(x=x, y=y, side=SideInputs("test-head", tuple(side), {k: (lambda v=v: v) for k, v in side.items()}))


def generate(tiny_dataset, tiny_tokenizer, run_dir, head, *extra):
    proc = run_cli("run", "generate", head, "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer),
                   "--epochs", "1", "--run-dir", str(run_dir), "--json", *extra, check=True)
    return json.loads(proc.stdout)


HEADS = [  # (what is run, its name, conditional, side inputs, tiny options)
    ("gaussian", "gaussian-prior", False, [], ["-o", "components=4"]),
    ("class-conditional", "class-conditional-prior", True, [], ["-o", "components=2"]),
    ("maskgit", "token-prior", True, [], ["-o", "dim=16", "-o", "depth=1", "-o", "steps=3"]),
    ("track-prior", "track-prior", True, ["tracker_tracks", "training_code_windows"], []),
]


@pytest.mark.parametrize("head,name,conditional,side,options", HEADS)
def test_every_head_generates_scores_and_stores_samples(tiny_dataset, tiny_tokenizer, tmp_path, head, name,
                                                        conditional, side, options):
    run_dir = tmp_path / "run"
    m = generate(tiny_dataset, tiny_tokenizer, run_dir, head, "--samples", "2", *options)
    assert CONTRACT <= set(m)
    assert m["side_inputs"] == side
    assert m["task"] == "generate" and m["head"] == name and m["n_samples"] == 8
    assert m["conditional"] is conditional
    assert (m["class_match"] is None) is (not conditional)
    for k in ("valid_fraction", "real_valid_fraction", "judge_test_accuracy"):
        assert 0.0 <= m[k] <= 1.0, k
    for k in ("diversity_ratio", "novelty", "smoothness"):
        assert m[k] is None or math.isfinite(m[k]), k
    assert json.loads((run_dir / "metrics.json").read_text()) == m

    tensors, meta = open_tensors(run_dir / "samples.safetensors")
    assert meta["format"] == "magtask-samples" and json.loads(meta["class_names"]) == CLASSES
    assert tensors["videos"].dtype == np.uint8 and tensors["videos"].shape == (8, 16, 3, 64, 64)
    labels = np.asarray(tensors["labels"])
    if conditional:
        assert labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    else:
        assert (labels == -1).all()
    assert tensors["codes"].shape[0] == tensors["indices"].shape[0] == 8
    assert np.isfinite(tensors["codes"]).all()
    for f in ("config.json", "head.safetensors", "samples.png"):
        assert (run_dir / f).exists(), f
    assert_head_reloads(run_dir, tiny_dataset, tiny_tokenizer)
    if head == "maskgit":  # the run dir renders
        run_cli("render", str(run_dir), "--out", "gif", check=True)
        assert (run_dir / "samples.gif").stat().st_size > 0


def test_class_option_restricts_the_samples(tiny_dataset, tiny_tokenizer, tmp_path):
    m = generate(tiny_dataset, tiny_tokenizer, tmp_path / "r", "class-conditional", "--samples", "3",
                 "--class", "helical", "-o", "components=2")
    assert m["n_samples"] == 3 and m["samples_per_class"] == {"helical": 3}
    labels = open_tensors(tmp_path / "r" / "samples.safetensors")[0]["labels"]
    assert (np.asarray(labels) == 2).all()


@pytest.mark.parametrize("args,code,needles", [
    (["--samples", "0"], 2, ["--samples"]),
    (["--samples", "-3"], 2, ["--samples"]),
    (["--class", "spiral"], 2, CLASSES),
])
def test_bad_generate_input(tiny_dataset, tiny_tokenizer, tmp_path, args, code, needles):
    proc = run_cli("run", "generate", "class-conditional", "--data", str(tiny_dataset), "--tokenizer",
                   str(tiny_tokenizer), "--run-dir", str(tmp_path / "r"), *args)
    assert proc.returncode == code, proc.stderr
    for n in needles:
        assert n in proc.stderr
    assert "Traceback" not in proc.stderr


def test_class_with_an_unconditional_head_is_refused(tiny_dataset, tiny_tokenizer, tmp_path):
    proc = run_cli("run", "generate", "gaussian", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer),
                   "--run-dir", str(tmp_path / "r"), "--class", "linear")
    assert proc.returncode == 2 and "conditional" in proc.stderr


def test_snap_to_grid_keeps_grid_codes_and_rounds_the_rest(tiny_tokenizer):
    from magtask.tokenizer.io import load_tokenizer

    tok = load_tokenizer(tiny_tokenizer)
    snap_to_grid = lambda tok, codes: tok.grid.snap(codes)  # noqa: E731  (the tokenizer contract's snap)
    idx = torch.randint(0, tok.codebook_size, (3, 2, 4, 4))
    codes = tok.indices_to_codes(idx)
    snapped, got = snap_to_grid(tok, codes)
    assert torch.equal(got, idx) and torch.allclose(snapped, codes)
    step = 1.0 / torch.tensor([l // 2 for l in tok.grid.levels], dtype=torch.float32).view(1, -1, 1, 1, 1)
    nudged, got = snap_to_grid(tok, codes + 0.3 * step * torch.randn_like(codes).clamp(-1, 1))
    assert torch.equal(got, idx)
    wild, _ = snap_to_grid(tok, torch.randn_like(codes) * 5)  # far outside the box: clipped onto it
    assert wild.abs().max() <= 1.0


def test_frame_tracks_of_reconstructions_are_in_latent_cells(tmp_path):
    """What a head that wants frame tracks is given: the dot per frame in the tokenizer's reconstruction
    of each training video's codes, as (row, col) in latent cells (a cell's centre at an integer)."""
    from magtask.data.dataset import load_dataset
    from magtask.data.generate import generate_dataset
    from magtask.trajectory_eval import dot_centroids
    from magtask.tokenizer.io import load_tokenizer
    from magtask_plugins.tasks.generate import frame_tracks

    generate_dataset(tmp_path / "d.safetensors", per_class=1, seed=4321)
    videos = np.asarray(load_dataset(tmp_path / "d.safetensors").videos)
    tok = load_tokenizer(None)
    with torch.no_grad():
        codes = tok.quantize(tok.encode(torch.from_numpy(videos).float() / 255))[0]
    got = frame_tracks(tok, codes, image_size=64, batch=3)
    assert got.shape == (4, 16, 2) and torch.isfinite(got).all()
    real = torch.from_numpy(dot_centroids(videos))  # (x, y) in pixels
    cell = 64 / codes.shape[-1]
    expect = torch.stack([real[..., 1], real[..., 0]], -1) / cell - 0.5
    assert (got - expect).norm(dim=-1).max() < 0.25  # a quarter of a cell: one pixel


def test_low_rank_gaussians_fit_mean_and_sample_by_group():
    from magtask_plugins.blocks.low_rank_gaussian import LowRankGaussians as GaussianPrior

    torch.manual_seed(0)
    x = torch.randn(200, 2, 2, 3, 3) * 0.1
    y = torch.arange(200) % 4
    x += y.view(-1, 1, 1, 1, 1).float()  # class c has mean c
    head = GaussianPrior(in_shape=(2, 2, 3, 3), rank=4, groups=4)
    head.fit_groups(x, y)
    s = head.sample(torch.tensor([0] * 50 + [3] * 50), generator=torch.Generator().manual_seed(0))
    assert s.shape == (100, 2, 2, 3, 3)
    assert abs(s[:50].mean().item()) < 0.05 and abs(s[50:].mean().item() - 3) < 0.05


def moving_dot_latents(n=24, t=4, size=8, seed=0):
    """Latents (n, 2, t, size, size) on a 5-level grid: background 0, a 2x2 'dot' of code 1.0 / 0.5 moving
    right (class 0) or down (class 1) one cell per step from a random start."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 2, t, size, size)
    y = torch.arange(n) % 2
    for i in range(n):
        r, c = (int(v) for v in torch.randint(1, 3, (2,), generator=g))
        for s in range(t):
            rr, cc = (r, c + s) if y[i] == 0 else (r + s, c)
            x[i, 0, s, rr:rr + 2, cc:cc + 2] = 1.0
            x[i, 1, s, rr:rr + 2, cc:cc + 2] = 0.5
    return x, y


def test_windows_crop_and_paste_round_trip():
    from magtask_plugins.blocks.dot_windows import crop, latent_mass, paste, window_corners

    x, _ = moving_dot_latents()
    grid = x.permute(0, 2, 3, 4, 1)  # (B, t, h, w, C)
    corners = window_corners(latent_mass(x), 3)
    win = crop(grid, corners, 3)
    assert win.shape == (24, 4, 3, 3, 2)
    assert torch.equal(paste(win, corners, torch.zeros(2), 8, 8), grid)  # the whole dot is inside the window


def test_window_helpers_place_corners_inside_the_grid_and_find_nearest_rows():
    from magtask_plugins.blocks.dot_windows import corners_around, nearest_rows

    c = corners_around(torch.tensor([[3.4, 3.6], [0.2, 7.9], [-2.0, 5.0]]), 3, 8, 8)
    assert c.tolist() == [[2, 3], [0, 5], [0, 4]]  # round(centre - 1), clamped to 0..5
    ref = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    query = torch.tensor([[9.0, 1.0], [1.0, 8.0], [0.5, 0.5], [6.0, 0.0], [0.0, 6.0]])
    assert nearest_rows(query, ref, chunk=2).tolist() == [1, 2, 0, 1, 2]  # the same in chunks of 2
    assert nearest_rows(query[:0], ref).shape == (0,)


def moving_dot_frames(x, y):
    """The frame tracks of moving_dot_latents: 2 frames per step, (row, col) in cells; the dot's 2 x 2
    block at step s is crossed from a quarter cell before its centre to a quarter after."""
    from magtask_plugins.blocks.dot_windows import centres

    t = x.shape[2]
    centre = centres(x[:, 0])  # (n, t, 2): channel 0 is 1.0 on the dot, 0 elsewhere
    move = torch.where(y[:, None] == 0, torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.0]))  # (n, 2)
    frames = torch.stack([centre - 0.25 * move[:, None], centre + 0.25 * move[:, None]], 2)
    return frames.reshape(len(x), 2 * t, 2)


def test_track_prior_follows_its_sampled_frame_track_with_training_windows():
    from magtask_plugins.heads.generate.track_prior import TrackPrior as ClassConditionalPrior

    x, y = moving_dot_latents()
    frames = moving_dot_frames(x, y)
    head = ClassConditionalPrior(in_shape=(2, 4, 8, 8), rank=2, components=2, window=3)
    head.fit(train_data(x, y, tracker_tracks=frames))
    assert torch.equal(head.background, torch.zeros(2))
    labels = torch.tensor([0] * 6 + [1] * 6)
    s = head.sample(labels, generator=torch.Generator().manual_seed(0))
    assert s.shape == (12, 2, 4, 8, 8) and torch.isfinite(s).all()
    assert set(s.unique().tolist()) <= {0.0, 0.5, 1.0}  # values of training windows: on the grid
    dot = s[:, 0] == 1.0  # (12, t, h, w)
    assert (dot.flatten(2).sum(-1) == 4).all()  # one whole 2x2 dot per step, as in training
    idx = torch.arange(8).float()
    rows = (dot.sum(3) * idx).sum(-1) / 4  # (12, t) the dot's centre
    cols = (dot.sum(2) * idx).sum(-1) / 4
    # class 0 moves right one cell a step, class 1 down, as the sampled frame tracks say
    assert torch.equal(cols[:6].diff(dim=1), torch.ones(6, 3)) and (rows[:6].diff(dim=1) == 0).all()
    assert torch.equal(rows[6:].diff(dim=1), torch.ones(6, 3)) and (cols[6:].diff(dim=1) == 0).all()
    state = head.state_dict()
    again = ClassConditionalPrior(in_shape=(2, 4, 8, 8), rank=2, components=2, window=3)
    again.load_state_dict(state)
    assert torch.equal(again.sample(torch.tensor([1]), generator=torch.Generator().manual_seed(1)),
                       head.sample(torch.tensor([1]), generator=torch.Generator().manual_seed(1)))
    with pytest.raises(Exception, match="not fitted"):
        ClassConditionalPrior(in_shape=(2, 4, 8, 8), components=2, window=3).sample(torch.tensor([0]))
    with pytest.raises(Exception, match="side input 'tracker_tracks' without declaring it"):
        ClassConditionalPrior(in_shape=(2, 4, 8, 8), components=2, window=3).fit(train_data(x, y))


def test_track_prior_picks_the_training_window_whose_frames_match():
    """Two training videos of one class share their step centres but not where the dot is within each
    frame: the window follows the frames, which only the frame track tells apart."""
    from magtask_plugins.heads.generate.track_prior import TrackPrior as ClassConditionalPrior

    x, y = moving_dot_latents(n=2, seed=3)
    x[1], y[1] = x[0].clone(), y[0]
    x[1, 1][x[0, 0] > 0] = -0.5  # the second video's windows hold other codes
    frames = moving_dot_frames(x, y)
    frames[1] = frames[0].view(4, 2, 2).flip(1).reshape(8, 2)  # and its dot crosses each block the other way
    head = ClassConditionalPrior(in_shape=(2, 4, 8, 8), rank=1, components=1, window=3)
    head.fit(train_data(x, y, tracker_tracks=frames))
    for video in (0, 1):
        corners, keys = head.frame_corners_and_keys(frames[video:video + 1])
        assert torch.equal(head.nearest_windows(keys), head.windows[video * 4:(video + 1) * 4]), video
