"""`magtask render`: gif/png/mp4 grids from a run dir's samples.safetensors, and its bad input."""

import json

import imageio.v3 as iio
import numpy as np
import pytest

from magtask.data.generate import generate_dataset
from magtask.data.dataset import load_dataset
from magtask.render import sample_frames, sample_trails
from magtask.tensorfile import write_tensors

from conftest import run_cli


@pytest.fixture(scope="module")
def real_videos(tmp_path_factory):
    path = tmp_path_factory.mktemp("rd") / "d.safetensors"
    generate_dataset(path, per_class=3, seed=5)
    ds = load_dataset(path)
    return np.asarray(ds.videos), np.asarray(ds.labels)


def write_samples(run_dir, videos, labels, truth=None):
    run_dir.mkdir(parents=True, exist_ok=True)
    tensors = {"videos": videos, "labels": labels}
    if truth is not None:
        tensors["truth"] = truth
    write_tensors(run_dir / "samples.safetensors", tensors, {"format": "magtask-samples",
                                                             "class_names": json.dumps(["linear", "circular", "helical", "parabolic"])})
    return run_dir


def test_gif_is_written_and_reads_back(real_videos, tmp_path):
    videos, labels = real_videos
    run = write_samples(tmp_path / "run", videos, labels)
    run_cli("render", str(run), "--out", "gif", check=True)
    frames = iio.imread(run / "samples.gif", index=None)
    expected = sample_frames(videos, labels)
    assert frames.shape[0] == videos.shape[1] == 16
    assert frames.shape[1:3] == expected.shape[1:3]
    # a row per class, 3 tiles each, scaled up 3x: 4 rows of 192 px at least
    assert frames.shape[1] >= 4 * 64 * 3 and frames.shape[2] >= 3 * 64 * 3
    assert frames[..., :3].std() > 5  # not blank


def test_png_and_custom_path(real_videos, tmp_path):
    videos, labels = real_videos
    run = write_samples(tmp_path / "run", videos, labels)
    target = tmp_path / "out" / "grid.png"
    run_cli("render", str(run), "--out", "png", "--path", str(target), check=True)
    img = iio.imread(target)
    assert img.shape[:2] == sample_trails(videos, labels).shape[:2]


def test_truth_is_shown_beside_prediction(real_videos, tmp_path):
    videos, labels = real_videos
    plain = sample_frames(videos, labels)
    paired = sample_frames(videos[:, :, :, :, :], labels, truth=videos)
    assert paired.shape[0] == plain.shape[0] and paired.shape[2] > plain.shape[2]
    run = write_samples(tmp_path / "run", videos, labels, truth=videos[::-1].copy())
    run_cli("render", str(run), "--out", "gif", check=True)
    assert iio.imread(run / "samples.gif", index=None).shape[2] == paired.shape[2]


def test_unlabelled_samples_render(real_videos, tmp_path):
    videos, _ = real_videos
    run = write_samples(tmp_path / "run", videos, np.full(len(videos), -1, np.int64))
    run_cli("render", str(run), "--out", "gif", check=True)
    assert (run / "samples.gif").exists()


@pytest.mark.parametrize("make,needle", [
    (lambda p: p / "missing", "no such run dir"),
    (lambda p: p, "holds no samples"),
])
def test_render_errors_are_one_line_exit_1(tmp_path, make, needle):
    proc = run_cli("render", str(make(tmp_path)), "--out", "gif")
    assert proc.returncode == 1, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_unsupported_format_is_a_usage_error(real_videos, tmp_path):
    videos, labels = real_videos
    run = write_samples(tmp_path / "run", videos, labels)
    proc = run_cli("render", str(run), "--out", "webm")
    assert proc.returncode == 2
    assert "gif, mp4, png" in proc.stderr


def test_mp4_is_written_with_pyav(real_videos, tmp_path):
    """MP4 goes through PyAV (a dependency since `data import` reads .mp4): no imageio-ffmpeg needed."""
    import imageio.v3 as iio

    videos, labels = real_videos
    run = write_samples(tmp_path / "run", videos, labels)
    proc = run_cli("render", str(run), "--out", "mp4")
    assert proc.returncode == 0, proc.stderr
    assert len(iio.imread(run / "samples.mp4", plugin="pyav", index=None)) == videos.shape[1]
    assert not list(run.glob(".*tmp*"))
