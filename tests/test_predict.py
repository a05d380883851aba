"""`magtask run predict lstm|transformer` end to end (tiny data, tiny untrained tokenizer), causality,
the samples file `magtask render` reads, the baselines, and bad input."""

import json

import numpy as np
import pytest
import torch

from magtask import MagtaskError
from magtask.data.dataset import load_dataset
from magtask.registry import get_registry
from magtask.runner import execute
from magtask.tensorfile import open_tensors
from magtask.tokenizer.io import load_tokenizer

from conftest import run_cli
from magtask_plugins.predict import snap

CONTRACT = {"task", "head", "tokenizer", "data", "seed", "seconds", "n_past", "n_future", "mse", "recon_mse",
            "copy_last_mse", "const_velocity_mse", "centroid_error_px"}
ALSO = {"mse_over_recon", "blank_mse", "oracle_mse", "oracle_centroid_error_px", "one_dot_fraction",
        "judge_accuracy", "judge_test_accuracy", "per_class", "causal_prefix_max_abs_diff", "train_seconds"}


@pytest.mark.parametrize("head,name", [("lstm", "lstm-predictor"), ("transformer", "transformer-predictor")])
def test_run_predict_end_to_end(head, name, tiny_dataset, tiny_tokenizer, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli("run", "predict", head, "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer),
                   "--epochs", "1", "--run-dir", str(run_dir), "--json", check=True)
    m = json.loads(proc.stdout)
    assert CONTRACT | ALSO <= set(m)
    assert m["task"] == "predict" and m["head"] == name
    assert (m["n_past"], m["n_future"]) == (12, 4)
    for k in ("mse", "recon_mse", "copy_last_mse", "blank_mse", "const_velocity_mse", "oracle_mse"):
        assert np.isfinite(m[k]) and 0 <= m[k] <= 1, k
    assert list(m["per_class"]) == ["linear", "circular", "helical", "parabolic"]
    assert m["causal_prefix_max_abs_diff"] == 0.0
    assert json.loads((run_dir / "metrics.json").read_text()) == m
    assert (run_dir / "head.safetensors").exists()

    tensors, meta = open_tensors(run_dir / "samples.safetensors")
    videos, truth, labels = tensors["videos"], tensors["truth"], tensors["labels"]
    assert videos.dtype == np.uint8 and truth.dtype == np.uint8 and videos.shape == truth.shape
    assert videos.shape[1:] == (16, 3, 64, 64) and labels.shape == (len(videos),)
    assert sorted(np.bincount(labels, minlength=4)) == [3, 3, 3, 3]  # 3 test videos per class in tiny data
    np.testing.assert_array_equal(videos[:, :12], truth[:, :12])  # the past is the truth; the future is predicted
    ds = load_dataset(tiny_dataset)
    np.testing.assert_array_equal(truth, np.asarray(ds.videos)[tensors["index"]])
    assert meta["task"] == "predict" and meta["n_past"] == "12"
    if head == "lstm":  # `magtask render` shows truth beside prediction
        run_cli("render", str(run_dir), "--out", "gif", "--path", str(tmp_path / "p.gif"), check=True)
        assert (tmp_path / "p.gif").stat().st_size > 0


def test_shorter_clip_and_other_split_of_frames(tiny_dataset, tiny_tokenizer, tmp_path):
    proc = run_cli("run", "predict", "lstm", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer),
                   "--epochs", "1", "--past", "6", "--future", "2", "--run-dir", str(tmp_path / "r"), "--json",
                   check=True)
    m = json.loads(proc.stdout)
    assert (m["n_past"], m["n_future"], m["n_past_steps"], m["n_future_steps"]) == (6, 2, 3, 1)
    assert m["judge_accuracy"] is None  # the judge reads whole 16-frame videos only
    tensors, _ = open_tensors(tmp_path / "r" / "samples.safetensors")
    assert tensors["videos"].shape[1] == 8


def test_past_codes_alone_equal_prefix_of_full_codes(tiny_dataset, tiny_tokenizer):
    """The tokenizer is causal: encoding the past clip alone gives the first past/s latent steps."""
    tok = load_tokenizer(tiny_tokenizer)
    ds = load_dataset(tiny_dataset)
    x = torch.from_numpy(np.asarray(ds.videos[:6])).float() / 255
    with torch.no_grad():
        full = tok.encode(x)
        for past in (2, 6, 12):
            alone = tok.encode(x[:, :past])
            torch.testing.assert_close(alone, full[:, :, :past // tok.temporal_stride], rtol=0, atol=1e-5)
            assert torch.equal(tok.quantize(alone)[1], tok.quantize(full)[1][:, :past // tok.temporal_stride])


@pytest.mark.parametrize("head", ["lstm-predictor", "transformer-predictor"])
def test_track_heads_are_causal_over_frames(head):
    """A head's prediction at frame j (offsets of frames j+1..j+horizon) never depends on frames after j."""
    spec = get_registry().head("predict", head)
    torch.manual_seed(0)
    model = spec.build(in_shape=[4, 8, 16, 16], n_past_steps=6, n_future_steps=2, levels=[8, 5, 5, 5],
                       stride=2, patch=4.0).eval()
    assert model.predicts == "track" and model.horizon == 4
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        x = torch.rand(2, 16, 2) * 64
        y = model(x)
        x2 = x.clone()
        x2[:, 11:] += 5.0
        y2 = model(x2)
    assert y.shape == (2, 16, 4, 2)
    torch.testing.assert_close(y[:, :11], y2[:, :11])
    assert not torch.allclose(y[:, 11:], y2[:, 11:])


@pytest.mark.parametrize("cls", ["PointTrackLSTM", "PointTrackTransformer"])
def test_point_track_heads_are_causal_over_steps(cls):
    """The earlier logits heads: the output at step j (its prediction of step j + 1) never depends on steps after j."""
    from magtask_plugins import lstm_predictor, transformer_predictor

    build = getattr(lstm_predictor, cls, None) or getattr(transformer_predictor, cls)
    torch.manual_seed(0)
    model = build(in_shape=[4, 8, 16, 16], n_past_steps=6, n_future_steps=2, levels=[8, 5, 5, 5]).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)  # the output layer starts at zero: make the check bite
        x = torch.randint(0, 5, (2, 4, 8, 16, 16)) / 4 * 2 - 1  # codes on the grid
        y = model(x)
        x2 = x.clone()
        x2[:, :, 5:] = -x2[:, :, 5:]
        y2 = model(x2)
    assert y.shape == (2, sum([8, 5, 5, 5]), 8, 16, 16)  # logits over each channel's FSQ levels
    torch.testing.assert_close(y[:, :, :5], y2[:, :, :5])
    assert not torch.allclose(y[:, :, 5:], y2[:, :, 5:])


def test_snap_lands_on_the_fsq_grid(tiny_tokenizer):

    tok = load_tokenizer(tiny_tokenizer)
    idx = torch.randint(0, tok.codebook_size, (3, 2, 4, 4))
    grid = tok.indices_to_codes(idx)
    assert torch.equal(snap(tok, grid), grid)  # grid points stay put
    noisy = grid + (torch.rand_like(grid) - 0.5) * 0.2  # less than half a step of the finest level (0.25)
    assert torch.equal(snap(tok, noisy), grid)
    far = snap(tok, grid * 5)  # outside the box: clamped to the grid's edge
    assert far.abs().max() <= 1 and torch.equal(snap(tok, far), far)


def test_oracle_is_exact_on_projected_motion_and_const_velocity_on_lines():
    from magtask_plugins.predict import const_velocity, oracle_track

    t = np.arange(16.0)
    depth = 5 + 0.1 * t
    line = np.stack([(10 + 2 * t) / depth, (3 - t) / depth], 1) * 40
    np.testing.assert_allclose(oracle_track(line[:12], 0, 4), line[12:], atol=1e-6)
    w = 0.55
    depth = 5 + 0.5 * np.cos(w * t)
    circle = np.stack([(1 + np.cos(w * t)) / depth, (2 + np.sin(w * t)) / depth], 1) * 100
    np.testing.assert_allclose(oracle_track(circle[:12], 1, 4), circle[12:], atol=0.05)
    flat_line = np.stack([2 + 3 * t, 5 - t], 1)
    np.testing.assert_allclose(const_velocity(flat_line[None, :12], 4)[0], flat_line[12:])


@pytest.mark.parametrize("past,future,needle", [
    ("0", "4", "--past must be at least 1"),
    ("12", "-2", "--future must be at least 1"),
    ("12", "6", "longer than the 16-frame videos"),
    ("11", "4", "not a multiple of the tokenizer's temporal stride 2"),
    ("12", "3", "--future 3 is not a multiple"),
    ("11", "3", "--past 11 and --future 3 are not a multiple"),
])
def test_bad_past_future_is_a_usage_error(past, future, needle, tiny_dataset, tiny_tokenizer, tmp_path):
    proc = run_cli("run", "predict", "lstm", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer),
                   "--past", past, "--future", future, "--run-dir", str(tmp_path / "r"))
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr
    # one error line (a progress line for encoding the codes may come first, when they are not cached yet)
    errors = [l for l in proc.stderr.splitlines() if "Error" in l]
    assert len(errors) == 1 and needle in errors[0] and "Traceback" not in proc.stderr, proc.stderr


def test_non_causal_tokenizer_is_refused(tiny_dataset, tiny_tokenizer, tmp_path, monkeypatch):
    from magtask.tokenizer.model import VideoTokenizer

    monkeypatch.setattr(VideoTokenizer, "causal", False)
    registry = get_registry()
    with pytest.raises(MagtaskError, match="not causal"):
        execute(registry.task("predict"), registry.head("predict", "lstm"), data=tiny_dataset,
                tokenizer_path=tiny_tokenizer, run_dir=tmp_path / "r", epochs=1, quiet=True,
                options={"past": 12, "future": 4})
    assert not (tmp_path / "r" / "metrics.json").exists()


def test_fsq_levels_round_trip_and_cross_entropy():
    from magtask_plugins import fsq_levels

    levels = [8, 5, 5, 5]
    half = torch.tensor([4.0, 2, 2, 2]).view(1, 4, 1, 1)
    codes = (torch.stack([torch.randint(0, l, (3, 6, 7)) for l in levels], 1) - half) / half
    hot = fsq_levels.one_hot(codes, levels)
    assert hot.shape == (3, 23, 6, 7) and torch.equal(hot.sum(1), torch.full((3, 6, 7), 4.0))
    assert torch.equal(fsq_levels.to_codes(hot * 5, levels), codes)  # argmax of the one-hot is the code itself
    ce_right = fsq_levels.cross_entropy(hot * 20, codes, levels)
    ce_wrong = fsq_levels.cross_entropy(hot.roll(1, dims=-1) * 20, codes, levels)
    assert ce_right.shape == (3, 6, 7) and ce_right.max() < 1e-3 < ce_wrong.mean()


def test_rollout_keeps_continuous_heads_and_lands_on_the_grid(tiny_tokenizer):
    """The task still serves heads that regress codes (snapped) beside heads that output level logits."""
    from magtask_plugins.predict import rollout
    from magtask_plugins.transformer_predictor import PointTrackTransformer as TransformerPredictor

    tok = load_tokenizer(tiny_tokenizer)
    past = tok.indices_to_codes(torch.randint(0, tok.codebook_size, (3, 3, 4, 4)))

    class Copy(torch.nn.Module):  # the old contract: next-step codes, continuous
        def forward(self, codes):
            return codes + 0.01

    fut = rollout(Copy(), tok, past, 2)
    assert torch.equal(fut, past[:, :, -1:].expand(-1, -1, 2, -1, -1))
    torch.manual_seed(0)
    head = TransformerPredictor(in_shape=[4, 5, 4, 4], levels=tok.fsq.levels)
    fut = rollout(head, tok, past, 2)
    assert fut.shape == (3, 4, 2, 4, 4)
    assert torch.equal(snap(tok, fut), fut)


@pytest.mark.parametrize("head", ["PointTrackLSTM", "PointTrackTransformer"])
def test_point_heads_learn_a_moving_dot(head):
    """A few hundred steps on a toy code grid (one token moving right by one position per step):
    the rolled-out future puts the dot where it goes."""
    from magtask_plugins.predict import DOT_WEIGHT
    from magtask_plugins import fsq_levels

    levels = [8, 5, 5, 5]
    from magtask_plugins import lstm_predictor, transformer_predictor

    build = getattr(lstm_predictor, head, None) or getattr(transformer_predictor, head)
    torch.manual_seed(0)
    model = build(in_shape=[4, 6, 8, 8], n_past_steps=4, n_future_steps=2, levels=levels, width=16, dim=32)
    g = torch.Generator().manual_seed(0)

    def clips(n):
        x = torch.full((n, 4, 6, 8, 8), 0.5)
        rows, cols = torch.randint(0, 8, (n,), generator=g), torch.randint(0, 3, (n,), generator=g)
        for s in range(6):
            x[torch.arange(n), :, s, rows, cols + s] = -0.5
        return x

    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(200):
        x = clips(16)
        fg = (x[:, 0] < 0)
        out = model(x)[:, :, :-1]
        w = 1 + DOT_WEIGHT * (fg[:, 1:] | fg[:, :-1]).float()
        loss = (fsq_levels.cross_entropy(out, x[:, :, 1:], levels) * w).sum() / w.sum() + model.aux_loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    x = clips(16)
    with torch.no_grad():
        seq = x[:, :, :4]
        for _ in range(2):
            seq = torch.cat([seq, fsq_levels.to_codes(model(seq)[:, :, -1:], levels)], 2)
    assert (seq[:, :, 4:] == x[:, :, 4:]).all(1).float().mean() > 0.99


def test_dot_token_iou_scores_erasing_as_zero():
    from magtask_plugins.fsq_levels import dot_token_iou

    levels = [8, 5, 5, 5]
    past = torch.full((2, 4, 3, 4, 4), 0.5)
    truth = torch.full((2, 4, 2, 4, 4), 0.5)
    truth[:, :, :, 1, 2] = -0.5
    blank = torch.full_like(truth, 0.5)
    assert dot_token_iou(truth, truth, past, levels) == 1.0
    assert dot_token_iou(blank, truth, past, levels) == 0.0
    shifted = truth.roll(1, dims=-1)
    assert dot_token_iou(shifted, truth, past, levels) == 0.0


def _dot_codes(centres, h=8, patch=4.0):
    """Toy codes (B, 4, t, h, h): background 0.5 everywhere, the cell under each step's first frame's
    centre -0.5, its right neighbour -0.5 too when the second frame's centre lies in the cell's right half."""
    b, frames = centres.shape[:2]
    x = torch.full((b, 4, frames // 2, h, h), 0.5)
    for i in range(b):
        for st in range(frames // 2):
            cx, cy = (centres[i, 2 * st] / patch).long().clamp(0, h - 2)
            x[i, :, st, cy, cx] = -0.5
            if centres[i, 2 * st + 1, 0] / patch - cx > 0.5:
                x[i, 0, st, cy, cx + 1] = -0.5
    return x


def test_track_head_renders_windows_at_positions_on_each_videos_background():
    from magtask_plugins.track_predict import TrackPredictor, background_codes

    head = TrackPredictor([4, 4, 8, 8], [8, 5, 5, 5], torch.nn.Identity(), 16, window=3, reader_steps=0, dim=16)
    g = torch.Generator().manual_seed(0)
    centres = torch.rand(6, 1, 2, generator=g) * 8 + 4 + torch.arange(8.0)[None, :, None] * torch.rand(6, 1, 2, generator=g)
    codes = _dot_codes(centres)
    head.fit(codes, centres)
    assert head.keys.shape == (6 * 4, 4) and head.windows.shape == (6 * 4, 3, 3, 4)
    back = background_codes(codes, head.levels)
    assert torch.equal(back, torch.full((6, 4), 0.5))
    drawn = head.render(centres, back)  # the training positions themselves: the dot comes back where it was
    from magtask_plugins.track_classifier import code_track

    assert drawn.shape == codes.shape and set(drawn.unique().tolist()) <= {0.5, -0.5}
    assert (code_track(drawn) - code_track(codes)).norm(dim=-1).max() <= 1.0  # toy codes: a cell is coarse
    other = torch.full((6, 4), -1.0)
    drawn = head.render(centres[:, :2], other)
    assert ((drawn == -1).all(1).flatten(1).sum(1) >= 64 - 9).all()  # the video's own background around the window


def test_track_head_learns_constant_velocity_and_reads_positions():
    """Reader + core on toy codes: a dot moving at constant velocity is read to within a cell and
    extrapolated to within a few px after a few hundred steps."""
    from magtask_plugins.lstm_predictor import LSTMPredictor

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    n = 64
    start, vel = torch.rand(n, 1, 2, generator=g) * 8 + 4, torch.rand(n, 1, 2, generator=g) * 1.4 + 0.3
    centres = start + torch.arange(16.0)[None, :, None] * vel  # (n, 16, 2) px, stays inside 32 px
    codes = _dot_codes(centres)
    head = LSTMPredictor([4, 8, 8, 8], n_future_steps=2, stride=2, patch=4.0, window=3, reader_steps=300, dim=32,
                         hidden=32)
    head.fit(codes, centres)
    read = head.read(codes)
    assert (read - centres).norm(dim=-1).mean() < 2.0
    opt = torch.optim.Adam([p for p in head.parameters() if p.requires_grad], lr=3e-3)
    for _ in range(300):
        loss = head.track_loss(read, centres)
        opt.zero_grad()
        loss.backward()
        opt.step()
    pred = head.predict_track(codes[:, :, :6], 4)
    assert (pred - centres[:, 12:]).norm(dim=-1).mean() < 3.0
    fut = head.predict_codes(codes[:, :, :6], 2)
    assert fut.shape == (n, 4, 2, 8, 8) and set(fut.unique().tolist()) <= {0.5, -0.5}


def test_track_augmentation_mirrors_both_tracks_alike():
    from magtask_plugins.track_predict import TrackPredictor

    head = TrackPredictor([4, 4, 8, 8], [8, 5, 5, 5], torch.nn.Identity(), 16, reader_steps=0, dim=16)
    torch.manual_seed(0)
    a = torch.rand(64, 8, 2) * 32
    a2, b2 = head.symmetries(a, a + 1.0)
    d = b2 - a2  # the same mirror / transpose on both: the offset is (+-1, +-1)
    assert torch.allclose(d.abs(), torch.ones_like(d)) and torch.allclose(d, d[:, :1].expand_as(d))
    assert torch.allclose((a2 - 16).abs().sort(-1).values, (a - 16).abs().sort(-1).values)
    assert not torch.equal(a2, a)
