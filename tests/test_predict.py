"""`magtask run predict lstm|transformer|track-predictor` end to end (tiny data, tiny untrained
tokenizer), code-only heads that never see the true centres, causality, the samples file `magtask
render` reads, the baselines, and bad input."""

import json

import numpy as np
import pytest
import torch

from magtask import MagtaskError, TrainData
from magtask.contracts import SideInputs
from magtask.loop import TrainConfig, train_head
from magtask.specs import DATA_SIDE_INPUTS, resolve_options
from magtask.tokenizer.grid import CodeGrid
from magtask.data.dataset import load_dataset
from magtask.registry import get_registry
from magtask.runner import execute
from magtask.tensorfile import open_tensors
from magtask.tokenizer.io import load_tokenizer

from conftest import assert_head_reloads, run_cli


def build_config(spec, levels=(8, 5, 5, 5), **options):
    import math

    from magtask.contracts import BuildConfig

    return BuildConfig(task="predict", in_shape=(4, 8, 16, 16), class_names=("a", "b"),
                       codebook_size=math.prod(levels), levels=tuple(levels), frames=16, image_size=64,
                       options=resolve_options(spec.options, options, spec.name),
                       task_config={"n_past_steps": 6, "n_future_steps": 2, "stride": 2, "patch": 4.0})


CONTRACT = {"task", "head", "tokenizer", "data", "seed", "seconds", "n_past", "n_future", "mse", "recon_mse",
            "copy_last_mse", "const_velocity_mse", "centroid_error_px"}
ALSO = {"mse_over_recon", "blank_mse", "oracle_mse", "oracle_centroid_error_px", "one_dot_fraction",
        "judge_accuracy", "judge_test_accuracy", "per_class", "causal_prefix_max_abs_diff", "train_seconds"}


TRACK_SIDE = ["true_centres", "training_code_windows", "task_features"]
SMALL = {"lstm": ["-o", "width=8"], "transformer": ["-o", "width=8", "-o", "depth=1"],
         "track-predictor": ["-o", "reader_steps=20", "-o", "core=lstm"]}


@pytest.mark.parametrize("head,name,side", [("lstm", "lstm-predictor", []), ("transformer", "transformer-predictor", []),
                                            ("track-predictor", "track-predictor", TRACK_SIDE)])
def test_run_predict_end_to_end(head, name, side, tiny_dataset, tiny_tokenizer, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli("run", "predict", head, "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer),
                   "--epochs", "1", *SMALL[head], "--run-dir", str(run_dir), "--json", check=True)
    m = json.loads(proc.stdout)
    assert CONTRACT | ALSO <= set(m)
    assert m["task"] == "predict" and m["head"] == name and m["side_inputs"] == side
    assert (m["n_past"], m["n_future"]) == (12, 4)
    for k in ("mse", "recon_mse", "copy_last_mse", "blank_mse", "const_velocity_mse", "oracle_mse"):
        assert np.isfinite(m[k]) and 0 <= m[k] <= 1, k
    assert list(m["per_class"]) == ["linear", "circular", "helical", "parabolic"]
    assert m["causal_prefix_max_abs_diff"] == 0.0
    assert json.loads((run_dir / "metrics.json").read_text()) == m
    assert_head_reloads(run_dir, tiny_dataset, tiny_tokenizer)

    tensors, meta = open_tensors(run_dir / "samples.safetensors")
    videos, truth, labels = tensors["videos"], tensors["truth"], tensors["labels"]
    assert videos.dtype == np.uint8 and truth.dtype == np.uint8 and videos.shape == truth.shape
    assert videos.shape[1:] == (16, 3, 64, 64) and labels.shape == (len(videos),)
    assert sorted(np.bincount(labels, minlength=4)) == [3, 3, 3, 3]  # 3 test videos per class in tiny data
    np.testing.assert_array_equal(videos[:, :12], truth[:, :12])  # the past is the truth; the future is predicted
    ds = load_dataset(tiny_dataset)
    np.testing.assert_array_equal(truth, np.asarray(ds.videos)[tensors["index"]])
    assert meta["task"] == "predict" and meta["n_past"] == "12"
    codes = np.asarray(tensors["codes"])[:, :, 12 // 2:]  # the predicted steps lie on the tokenizer's grid
    grid = load_tokenizer(tiny_tokenizer).grid
    snapped = grid.snap(torch.from_numpy(codes))[0].numpy()
    np.testing.assert_array_equal(codes, snapped)
    if head == "lstm":  # `magtask render` shows truth beside prediction
        run_cli("render", str(run_dir), "--out", "gif", "--path", str(tmp_path / "p.gif"), check=True)
        assert (tmp_path / "p.gif").stat().st_size > 0


def _train_data_offering_everything(head_name: str, clips: torch.Tensor, calls: list) -> TrainData:
    """TrainData whose SideInputs can provide every data side input but declares none of them."""
    def provider(name):
        def give():
            calls.append(name)
            return torch.zeros(len(clips), 16, 2)
        return give

    side = SideInputs(head_name, (), {name: provider(name) for name in DATA_SIDE_INPUTS})
    return TrainData(x=clips, y=torch.zeros(len(clips), dtype=torch.long), side=side, seed=0)


@pytest.mark.parametrize("name", ["lstm-predictor", "transformer-predictor"])
def test_code_only_heads_train_without_the_true_centres(name):
    """A code-only head declares no side input and trains and predicts with a TrainData that could hand it
    the true centres but declares none: it fails here the moment it asks for one."""
    spec = get_registry().head("predict", name)
    assert spec.side_inputs == ()
    head = spec.build(build_config(spec, width=8, depth=1) if name.startswith("transformer")
                      else build_config(spec, width=8))
    grid = CodeGrid.fsq((8, 5, 5, 5))
    clips = grid.codes_from_digits(torch.stack([torch.randint(0, l, (6, 8, 16, 16)) for l in (8, 5, 5, 5)], 1))
    calls = []
    hist = train_head(head, _train_data_offering_everything(name, clips, calls), lambda: (clips,), None,
                      TrainConfig(epochs=1, batch_size=4, quiet=True))
    assert calls == [] and len(hist.train_loss) == 1 and np.isfinite(hist.train_loss[0])
    fut = head.predict(clips[:, :, :6], 2)
    assert fut.shape == (6, 4, 2, 16, 16) and torch.equal(grid.snap(fut)[0], fut)
    # the same TrainData refuses a head that asks for the centres without declaring them
    track = get_registry().head("predict", "track-predictor")
    with pytest.raises(MagtaskError, match="without declaring it"):
        train_head(track.build(build_config(track, reader_steps=1)),
                   _train_data_offering_everything("track-predictor", clips, calls), lambda: (clips,), None,
                   TrainConfig(epochs=1, batch_size=4, quiet=True))
    assert calls == []


@pytest.mark.parametrize("name", ["lstm-predictor", "transformer-predictor"])
def test_code_only_heads_are_causal_over_steps(name):
    """The logits at step t (of steps t+1..t+horizon) never depend on steps after t."""
    spec = get_registry().head("predict", name)
    torch.manual_seed(0)
    head = spec.build(build_config(spec, width=8)).eval()
    grid = CodeGrid.fsq((8, 5, 5, 5))
    clips = grid.codes_from_digits(torch.stack([torch.randint(0, l, (2, 7, 16, 16)) for l in (8, 5, 5, 5)], 1))
    other = clips.clone()
    other[:, :, 4:] = -other[:, :, 4:]
    with torch.no_grad():
        a, b = head(clips), head(other)
    assert a.shape == (2, 7, 2, 23, 16, 16)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_code_only_loss_weights_content_cells_not_one_step_flicker():
    """A cell one grid step from its clip's background (pixel noise on a background code) weighs 1; two
    steps or more (what the dot puts there) weighs 1 + bg_weight."""
    spec = get_registry().head("predict", "lstm-predictor")
    head = spec.build(build_config(spec, width=8, bg_weight=5.0))
    digits = torch.zeros(1, 4, 8, 16, 16, dtype=torch.long)  # background: level 0 everywhere
    digits[0, 1, 3, 2, 2] = 1  # one step off: flicker
    digits[0, 1, 3, 4, 4] = 2  # two steps in one channel
    digits[0, 0, 5, 6, 6] = digits[0, 2, 5, 6, 6] = 1  # one step in each of two channels
    w = head.cell_weight(digits)
    assert w.shape == (1, 8, 16, 16)
    assert w[0, 3, 2, 2] == 1 and w[0, 3, 4, 4] == 6 and w[0, 5, 6, 6] == 6
    assert (w == 6).sum() == 2 and (w == 1).sum() == w.numel() - 2


def test_content_cells_are_counted_in_steps_of_the_coarsest_grid():
    """On a finer grid a background code flickers by more steps: by default the content threshold is two
    steps of an 8-level channel, i.e. round(2 * (L - 1) / 7) steps of the grid's finest channel
    (L its most levels; never below 2): 2 on 8,5,5,5, 4 on 16,16,16,16; content_steps sets it."""
    spec = get_registry().head("predict", "lstm-predictor")
    fine = spec.build(build_config(spec, levels=(16, 16, 16, 16), width=8, bg_weight=5.0))
    assert fine.content_steps == 4
    digits = torch.zeros(1, 4, 8, 16, 16, dtype=torch.long)
    digits[0, 1, 3, 2, 2] = 3  # three steps: flicker on this grid
    digits[0, 1, 3, 4, 4] = 4
    w = fine.cell_weight(digits)
    assert w[0, 3, 2, 2] == 1 and w[0, 3, 4, 4] == 6 and (w == 6).sum() == 1
    set_ = spec.build(build_config(spec, levels=(16, 16, 16, 16), width=8, bg_weight=5.0, content_steps=3))
    assert set_.content_steps == 3 and set_.cell_weight(digits)[0, 3, 2, 2] == 6
    lfq = spec.build(build_config(spec, levels=(2, 2, 2, 2), width=8))
    assert lfq.content_steps == 2


def test_mean_decoding_keeps_content_the_head_is_unsure_of_and_argmax_loses_it():
    """A cell whose first channel is split 50/50 between the background's level and a far one: argmax
    reads background there (the content is lost), `decode=mean` the expected level under
    softmax(logits / decode_temperature), rounded: between the two. Sure cells read the same either way."""
    spec = get_registry().head("predict", "lstm-predictor")
    grid = CodeGrid.fsq((8, 5, 5, 5))
    logits = torch.full((1, 1, 23, 16, 16), -30.0)
    for start in (0, 8, 13, 18):  # every channel sure of level 0 ...
        logits[0, 0, start] = 0.0
    logits[0, 0, 7, 3, 3] = 0.0  # ... except channel 0 at (3, 3): level 0 or level 7, even odds
    bg = torch.zeros(1, 4, dtype=torch.long)
    heads = {mode: spec.build(build_config(spec, width=8, decode=mode, decode_temperature=1.0, bg_bias=0.0))
             for mode in ("argmax", "mean")}
    codes = {mode: grid.digits(h.codes_of(logits, bg)) for mode, h in heads.items()}
    assert codes["argmax"][0, 0, 0, 3, 3] == 0  # content lost
    assert 3 <= codes["mean"][0, 0, 0, 3, 3] <= 4  # expected level 3.5, rounded
    sure = torch.ones(16, 16, dtype=torch.bool)
    sure[3, 3] = False
    assert (codes["argmax"][0, :, 0][:, sure] == 0).all() and (codes["mean"][0, :, 0][:, sure] == 0).all()
    assert spec.build(build_config(spec, width=8)).decode == "mean"  # the default


@pytest.mark.parametrize("name,context", [("lstm-predictor", 5), ("transformer-predictor", 1)])
def test_code_only_heads_train_on_the_whole_past_by_default(name, context):
    """Defaults: each step's encoder sees every past step (window = n_past_steps). Step t predicts steps
    t+1..t+horizon from steps 0..t; the steps t >= context are trained: lstm-predictor the last past step
    only (context -1, the prediction the test asks for), transformer-predictor every step from 1 (the
    shorter pasts too). A context past the last past step is cut to it."""
    spec = get_registry().head("predict", name)
    torch.manual_seed(0)
    small = {"width": 8, **({"depth": 1} if name == "transformer-predictor" else {})}
    head = spec.build(build_config(spec, **small)).eval()
    assert head.window == 6 and head.context == context
    other = spec.build(build_config(spec, **small, context=6 - context)).eval()  # the other head's default
    other.load_state_dict(head.state_dict())
    assert spec.build(build_config(spec, **small, context=9)).context == 5
    grid = CodeGrid.fsq((8, 5, 5, 5))
    clips = grid.codes_from_digits(torch.stack([torch.randint(0, l, (2, 8, 16, 16)) for l in (8, 5, 5, 5)], 1))
    with torch.no_grad():
        assert not torch.isclose(other.loss(clips), head.loss(clips))  # other steps trained: another loss
        changed = clips.clone()
        changed[:, :, 7] = -changed[:, :, 7]  # a target of the last past step's prediction: always trained
        assert not torch.isclose(head.loss(changed), head.loss(clips))
    trained = []  # how many steps' predictions enter the loss: the logits of steps context..T-2
    hook = head.out.register_forward_hook(lambda module, args, out: trained.append(out.shape[0] // len(clips)))
    with torch.no_grad():
        head.loss(clips)
    hook.remove()
    assert trained == [8 - 1 - context]  # T - 1 steps are inputs


@pytest.mark.parametrize("name", ["lstm-predictor", "transformer-predictor"])
def test_code_only_heads_refuse_continuous_latents_and_grids_over_max_cells(name):
    from magtask.contracts import BuildConfig

    spec = get_registry().head("predict", name)
    big = BuildConfig(task="predict", in_shape=(4, 16, 64, 64), class_names=("a",), codebook_size=1000,
                      levels=(8, 5, 5, 5), frames=16, image_size=64, options=resolve_options(spec.options, {}, name),
                      task_config={"n_past_steps": 12, "n_future_steps": 4, "stride": 1, "patch": 1.0})
    with pytest.raises(MagtaskError, match=r"16x64x64 = 65536 cells, over max_cells=4096.*-o max_cells=65536"):
        spec.build(big)
    none = BuildConfig(**{**big.__dict__, "in_shape": (4, 8, 16, 16), "levels": None,
                          "grid": CodeGrid.continuous(4)})
    with pytest.raises(MagtaskError, match="needs a quantized tokenizer"):
        spec.build(none)


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


@pytest.mark.parametrize("core", ["lstm", "transformer"])
def test_track_heads_are_causal_over_frames(core):
    """A head's prediction at frame j (offsets of frames j+1..j+horizon) never depends on frames after j."""
    spec = get_registry().head("predict", "track-predictor")
    torch.manual_seed(0)
    model = spec.build(build_config(spec, core=core)).eval()
    assert model.horizon == 4
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


def test_oracle_is_exact_on_projected_motion_and_const_velocity_on_lines():
    from magtask.trajectory_eval import oracle_track
    from magtask_plugins.tasks.predict.baselines import const_velocity

    t = np.arange(16.0)
    depth = 5 + 0.1 * t
    line = np.stack([(10 + 2 * t) / depth, (3 - t) / depth], 1) * 40
    np.testing.assert_allclose(oracle_track(line[:12], "linear", 4), line[12:], atol=1e-6)
    w = 0.55
    depth = 5 + 0.5 * np.cos(w * t)
    circle = np.stack([(1 + np.cos(w * t)) / depth, (2 + np.sin(w * t)) / depth], 1) * 100
    np.testing.assert_allclose(oracle_track(circle[:12], "circular", 4), circle[12:], atol=0.05)
    flat_line = np.stack([2 + 3 * t, 5 - t], 1)
    np.testing.assert_allclose(const_velocity(flat_line[None, :12], 4)[0], flat_line[12:])


def test_fill_track_fills_gaps_as_the_judge_does_but_puts_a_dotless_video_at_half_the_frames():
    from magtask.trajectory_eval import fill_gaps
    from magtask_plugins.tasks.predict.baselines import fill_track

    c = np.full((2, 4, 2), np.nan, np.float32)
    c[0, 1], c[0, 3] = [3, 5], [7, 1]
    filled = [[3, 5], [3, 5], [3, 5], [7, 1]]
    np.testing.assert_array_equal(fill_track(c)[0], filled)
    np.testing.assert_array_equal(fill_gaps(c)[0], filled)
    assert (fill_track(c)[1] == 2.0).all() and (fill_gaps(c)[1] == 0.0).all()  # T / 2 vs 0
    assert fill_track(c).dtype == np.float64 and fill_gaps(c).dtype == np.float32


@pytest.mark.parametrize("past,future,needle", [
    ("0", "4", "--past must be an int >= 1, got 0"),
    ("12", "-2", "--future must be an int >= 1, got -2"),
    ("12", "6", "longer than the 16-frame videos"),
    ("11", "4", "must each end on one of the tokenizer's latent steps (temporal stride 2"),
    ("12", "3", "--past + --future 15 must each end"),
    ("11", "3", "clip lengths that do: 2, 4, 6, 8, 10, 12, 14, 16"),
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
    from magtask_plugins.blocks.track_predict import TrackPredictor, background_codes

    head = TrackPredictor([4, 4, 8, 8], CodeGrid.fsq((8, 5, 5, 5)), torch.nn.Identity(), 16, window=3, reader_steps=0, dim=16)
    g = torch.Generator().manual_seed(0)
    centres = torch.rand(6, 1, 2, generator=g) * 8 + 4 + torch.arange(8.0)[None, :, None] * torch.rand(6, 1, 2, generator=g)
    codes = _dot_codes(centres)
    head.fit_reader(codes, centres)
    assert head.keys.shape == (6 * 4, 4) and head.windows.shape == (6 * 4, 3, 3, 4)
    back = background_codes(codes, head.grid)
    assert torch.equal(back, torch.full((6, 4), 0.5))
    drawn = head.render(centres, back)  # the training positions themselves: the dot comes back where it was
    from magtask_plugins.blocks.dot_windows import code_track

    assert drawn.shape == codes.shape and set(drawn.unique().tolist()) <= {0.5, -0.5}
    assert (code_track(drawn) - code_track(codes)).norm(dim=-1).max() <= 1.0  # toy codes: a cell is coarse
    other = torch.full((6, 4), -1.0)
    drawn = head.render(centres[:, :2], other)
    assert ((drawn == -1).all(1).flatten(1).sum(1) >= 64 - 9).all()  # the video's own background around the window


def test_track_head_learns_constant_velocity_and_reads_positions():
    """Reader + core on toy codes: a dot moving at constant velocity is read to within a cell and
    extrapolated to within a few px after a few hundred steps."""
    from magtask_plugins.heads.predict.track_predictor import TrackPredictorHead

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    n = 64
    start, vel = torch.rand(n, 1, 2, generator=g) * 8 + 4, torch.rand(n, 1, 2, generator=g) * 1.4 + 0.3
    centres = start + torch.arange(16.0)[None, :, None] * vel  # (n, 16, 2) px, stays inside 32 px
    codes = _dot_codes(centres)
    head = TrackPredictorHead([4, 8, 8, 8], CodeGrid.fsq((8, 5, 5, 5)), n_future_steps=2, stride=2, patch=4.0,
                              core="lstm", window=3, reader_steps=300, dim=32, hidden=32)
    head.fit_reader(codes, centres)
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
    from magtask_plugins.blocks.track_predict import TrackPredictor

    head = TrackPredictor([4, 4, 8, 8], CodeGrid.fsq((8, 5, 5, 5)), torch.nn.Identity(), 16, reader_steps=0, dim=16)
    torch.manual_seed(0)
    a = torch.rand(64, 8, 2) * 32
    a2, b2 = head.symmetries(a, a + 1.0)
    d = b2 - a2  # the same mirror / transpose on both: the offset is (+-1, +-1)
    assert torch.allclose(d.abs(), torch.ones_like(d)) and torch.allclose(d, d[:, :1].expand_as(d))
    assert torch.allclose((a2 - 16).abs().sort(-1).values, (a - 16).abs().sort(-1).values)
    assert not torch.equal(a2, a)


def test_code_grid_one_hot_and_indices():
    from magtask.tokenizer.grid import CodeGrid

    levels = [8, 5, 5, 5]
    grid = CodeGrid.fsq(levels)
    half = torch.tensor([4.0, 2, 2, 2]).view(1, 4, 1, 1)
    digits = torch.stack([torch.randint(0, l, (3, 6, 7)) for l in levels], 1)
    codes = (digits - half) / half
    hot = grid.one_hot(codes)
    assert hot.shape == (3, 23, 6, 7) and torch.equal(hot.sum(1), torch.full((3, 6, 7), 4.0))
    assert torch.equal(grid.digits(codes), digits)
    idx = grid.indices(codes)
    assert torch.equal(idx, digits[:, 0] + 8 * digits[:, 1] + 40 * digits[:, 2] + 200 * digits[:, 3])


@pytest.mark.parametrize("name", ["lstm-predictor", "transformer-predictor"])
def test_code_only_heads_train_on_the_lfq_fixture_and_refuse_the_seed_grid(name):
    """On the magvit2 LFQ fixture's codes (5 bits, 3 latent steps of 4 x 4 for 5 frames at 16 px; the first
    frame on a step of its own) a head builds, trains one epoch and predicts codes on that grid; the seed
    preset's 64 x 64 grid is refused before any work, naming the option that lifts the guard."""
    from pathlib import Path

    from magtask.contracts import BuildConfig
    from magtask.tokenizer.magvit2_load import load_magvit2

    fix = Path(__file__).parent / "fixtures" / "magvit2"
    tok = load_magvit2(fix / "lfq_small.pt")
    video = torch.rand(4, tok.frames_of(3), 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        codes = tok.quantize(tok.encode(video))[0]
    spec = get_registry().head("predict", name)
    cfg = BuildConfig(task="predict", in_shape=tuple(codes.shape[1:]), class_names=("a",), codebook_size=32,
                      levels=None, frames=video.shape[1], image_size=16, grid=tok.grid,
                      options=resolve_options(spec.options, {"width": 8}, name),
                      task_config={"n_past_steps": 2, "n_future_steps": 1, "stride": tok.temporal_stride,
                                   "patch": 16 / codes.shape[-1]})
    head = spec.build(cfg)
    hist = train_head(head, _train_data_offering_everything(name, codes, []), lambda: (codes,), None,
                      TrainConfig(epochs=1, batch_size=2, quiet=True))
    assert np.isfinite(hist.train_loss[0])
    fut = head.predict(codes[:, :, :2], 1)
    assert fut.shape == (4, codes.shape[1], 1, *codes.shape[3:]) and torch.equal(tok.grid.snap(fut)[0], fut)
    seed = BuildConfig(**{**cfg.__dict__, "in_shape": (4, 16, 64, 64), "grid": CodeGrid.fsq((8, 5, 5, 5))})
    with pytest.raises(MagtaskError, match="over max_cells=4096"):
        spec.build(seed)


@pytest.mark.parametrize("window", [0, 3])
def test_stacked_input_is_each_steps_one_hot_levels_over_its_window(window):
    """stacked(codes): per clip and step s, block j of window blocks holds the one-hot levels of step
    s - (window - 1 - j) (zero before the first step), on a grid padded to multiples of 4 (zero outside);
    here a 6 x 5 grid, 7 steps, 8,5,5,5 levels."""
    from magtask.contracts import BuildConfig

    levels = (8, 5, 5, 5)
    spec = get_registry().head("predict", "lstm-predictor")
    cfg = BuildConfig(task="predict", in_shape=(4, 7, 6, 5), class_names=("a",), codebook_size=1000,
                      levels=levels, frames=14, image_size=24,
                      options=resolve_options(spec.options, {"width": 4, "window": window}, spec.name),
                      task_config={"n_past_steps": 5, "n_future_steps": 2, "stride": 2, "patch": 4.0})
    head = spec.build(cfg)
    grid = CodeGrid.fsq(levels)
    codes = grid.codes_from_digits(torch.stack([torch.randint(0, l, (2, 7, 6, 5)) for l in levels], 1))
    w, n_levels = window or 5, sum(levels)
    want = torch.zeros(2 * 7, w * n_levels, 8, 8)
    for b in range(2):
        for s in range(7):
            for j in range(w):
                if s - (w - 1 - j) >= 0:
                    want[b * 7 + s, j * n_levels:(j + 1) * n_levels, :6, :5] = grid.one_hot(codes[b:b + 1, :, s - (w - 1 - j)])[0]
    got = head.stacked(codes)
    assert got.shape == want.shape
    assert torch.equal(got, want)
