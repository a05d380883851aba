"""The trajectory dataset: deterministic, deduplicated, stratified, and drawn as specified."""

import hashlib

import numpy as np
import pytest

from magtask.data.dataset import load_dataset
from magtask.data.generate import generate_dataset
from magtask.data.styles import SEED_BACKGROUND
from magtask.render import ink
from magtask.data.trajectories import CLASS_NAMES


def test_same_seed_same_file_other_seed_other_videos(tmp_path, tiny_dataset):
    again = tmp_path / "again.safetensors"
    assert generate_dataset(again, per_class=20, seed=3) == load_dataset(tiny_dataset).hash
    assert again.read_bytes() == tiny_dataset.read_bytes()
    other = tmp_path / "other.safetensors"
    generate_dataset(other, per_class=20, seed=4)
    assert not np.array_equal(load_dataset(other).videos, load_dataset(tiny_dataset).videos)


def test_shapes_ground_truth_and_no_duplicates(tiny_dataset):
    ds = load_dataset(tiny_dataset)
    assert ds.videos.shape == (80, 16, 3, 64, 64) and ds.videos.dtype == np.uint8
    assert ds.centres.shape == (80, 16, 2)
    assert ds.extra["points"].shape == (80, 16, 3)
    assert set(ds.extra) >= {"points", "params", "camera", "style"}
    assert ds.meta["seed"] == "3" and ds.meta["generator_version"]
    digests = {hashlib.sha256(np.asarray(v).tobytes()).hexdigest() for v in ds.videos}
    assert len(digests) == len(ds)


def test_split_is_stratified_and_disjoint(tiny_dataset):
    ds = load_dataset(tiny_dataset)
    counts = ds.counts()
    for split, per_class in counts.items():
        assert len(set(per_class.values())) == 1, (split, per_class)  # every class equally represented
    assert counts["train"]["linear"] == 14 and counts["test"]["linear"] == 3
    assert sum(len(ds.indices(s)) for s in ("train", "val", "test")) == len(ds)


def test_seed_look_one_dark_dot_at_the_true_centre(tiny_dataset):
    ds = load_dataset(tiny_dataset)
    v = np.asarray(ds.videos)
    bg = np.round(np.array(SEED_BACKGROUND) * 255)
    corner = v[:, :, :, 0, 0]  # background everywhere far from the dot
    assert np.all(np.abs(corner - bg) <= 1)
    a = ink(v)  # (N, T, H, W)
    ys, xs = np.mgrid[0:64, 0:64] + 0.5
    mass = a.sum(axis=(2, 3))
    cx = (a * xs).sum(axis=(2, 3)) / mass
    cy = (a * ys).sum(axis=(2, 3)) / mass
    err = np.hypot(cx - ds.centres[..., 0], cy - ds.centres[..., 1])
    assert err.max() < 0.2, err.max()
    area = (a > 0.5).sum(axis=(2, 3))  # a radius-5 disc covers about 78 pixels
    assert 60 <= area.min() and area.max() <= 95
    # never clipped by the frame edge
    assert a[:, :, 0, :].max() == 0 and a[:, :, -1, :].max() == 0 and a[:, :, :, 0].max() == 0 and a[:, :, :, -1].max() == 0


def test_path_fills_most_of_the_frame(tiny_dataset):
    ds = load_dataset(tiny_dataset)
    span = (ds.centres.max(axis=1) - ds.centres.min(axis=1)).max(axis=1)  # (N,) larger side, pixels
    assert span.min() > 0.6 * 64 * 0.75, span.min()


def test_frames_size_and_varied_style(tmp_path):
    path = tmp_path / "v.safetensors"
    generate_dataset(path, per_class=5, seed=1, frames=8, size=48, style="varied")
    ds = load_dataset(path)
    assert ds.videos.shape == (20, 8, 3, 48, 48)
    style = ds.extra["style"]
    assert style[:, 0].min() >= 3 and style[:, 0].max() <= 7 and style[:, 0].std() > 0.5  # radius varies
    assert np.unique(np.asarray(ds.videos[:, 0, :, 0, 0]), axis=0).shape[0] > 10  # backgrounds vary


def test_interrupted_generation_leaves_no_file(tmp_path):
    path = tmp_path / "big.safetensors"

    def boom(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_dataset(path, per_class=100, seed=0, progress=boom)
    assert list(tmp_path.iterdir()) == []


def test_class_names_order():
    assert CLASS_NAMES == ("linear", "circular", "helical", "parabolic")
