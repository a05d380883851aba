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
def test_heads_are_causal_over_steps(head):
    """A head's output at step j (its prediction of step j + 1) never depends on steps after j."""
    spec = get_registry().head("predict", head)
    torch.manual_seed(0)
    model = spec.build(in_shape=[4, 8, 16, 16], n_past_steps=6, n_future_steps=2, levels=[8, 5, 5, 5]).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)  # the output layer starts at zero: make the check bite
        x = torch.randn(2, 4, 8, 16, 16)
        y = model(x)
        x2 = x.clone()
        x2[:, :, 5:] += 1.0
        y2 = model(x2)
    assert y.shape == x.shape
    torch.testing.assert_close(y[:, :, :5], y2[:, :, :5])
    assert not torch.allclose(y[:, :, 5:], y2[:, :, 5:])


def test_snap_lands_on_the_fsq_grid(tiny_tokenizer):
    from magtask_plugins.predict import snap

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
