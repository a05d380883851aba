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


def test_the_older_styles_files_do_not_change_with_the_look_families(tmp_path):
    """seed / varied / bright files keep their 12-column style rows and their bytes (their hashes key
    every code cache and card): the hashes below were measured before the look families existed."""
    from magtask.data.styles import STYLE_NAMES

    pinned = {"varied": "3d221e2836abbb4515d66687c9b2f6ece4656351fea420f33771a9c77bdf64fb",
              "bright": "af2d2e1361613d0e6fd86e6d5b1201e34afb625ba0e83b02cbafb6d4a85db09b",
              "seed": "2e06b9200a0fec5b3b6766df629497ac0c5303444b1e9be94c63b8c9779883b8"}
    for style, digest in pinned.items():
        path = tmp_path / f"{style}.safetensors"
        assert generate_dataset(path, per_class=3, seed=1, frames=4, size=32, style=style) == digest, style
        assert load_dataset(path).extra["style"].shape == (12, len(STYLE_NAMES)) == (12, 12)


def test_looks_cover_the_training_families_and_never_a_held_out_one():
    from magtask.data.styles import LOOK_FAMILIES, held_out_family, sample_look

    rng = np.random.default_rng(0)
    rows = [sample_look(rng) for _ in range(4000)]
    families = [f for f, _ in rows]
    assert set(families) == set(LOOK_FAMILIES)
    assert all(held_out_family(r) is None for _, r in rows)
    # and each held-out style is recognised as its family
    from magtask.data.styles import HELD_OUT, sample_style
    for name in HELD_OUT:
        assert all(held_out_family(sample_style(name, rng)) == name for _ in range(200))


def test_looks_style_draws_gradients_soft_edges_and_light_dots_on_dark(tmp_path):
    from magtask.data.styles import LOOK_NAMES

    path = tmp_path / "looks.safetensors"
    generate_dataset(path, per_class=40, seed=2, frames=4, size=64, style="looks")
    ds = load_dataset(path)
    style = ds.extra["style"]
    assert style.shape[1] == len(LOOK_NAMES) and ds.meta["style_names"].count("edge") == 1
    v = np.asarray(ds.videos, dtype=np.float32) / 255
    col = LOOK_NAMES.index
    bg, bg2 = style[:, col("bg_r"):col("bg_b") + 1], style[:, col("bg2_r"):col("bg2_b") + 1]
    graded = np.abs(bg - bg2).max(1) > 0.3
    assert graded.sum() >= 5
    # a graded background changes across the frame far from the dot; a flat one does not
    corners = v[:, 0, :, [0, 0, -1, -1], [0, -1, 0, -1]]  # (4, N, 3)
    spread = corners.max(0) - corners.min(0)
    flat_quiet = (np.abs(bg - bg2).max(1) == 0) & (style[:, col("noise")] == 0)
    assert spread[graded].max(1).mean() > 0.15 and spread[flat_quiet].max() < 0.01
    # dots lighter than their background exist (dark family)
    lighter = style[:, col("dot_r"):col("dot_b") + 1].mean(1) > bg.mean(1) + 0.3
    assert lighter.sum() >= 5
    # a soft edge spreads the dot: more partly-covered pixels around a same-radius disc
    soft = style[:, col("edge")] > 1.5
    assert 5 <= soft.sum() < len(style)
    from magtask.data.renderer import render
    row = style[soft][:1].copy()
    row[0, col("noise")] = 0
    hard = row.copy()
    hard[0, col("edge")] = 1.0
    centre = np.full((1, 1, 2), 32.3, np.float32)
    ends = [np.round(row[0, col(c + "_r"):col(c + "_b") + 1] * 255) for c in ("bg", "dot")]

    def partly_covered(frame):  # (3, H, W): pixels that are neither background nor dot colour
        px = frame.reshape(3, -1).T.astype(np.float32)
        return int(np.all([np.abs(px - e).max(1) > 2 for e in ends], axis=0).sum())

    partial = [partly_covered(render(centre, r, 64)[0, 0]) for r in (hard, row)]
    assert partial[1] > 1.5 * partial[0], partial
