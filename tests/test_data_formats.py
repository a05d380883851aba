"""The seed project's .npz / .pt files load; bad files get one line naming the file, exit 1."""

import pickle

import numpy as np
import pytest
import torch

from magtask.data.dataset import load_dataset
from magtask.errors import MagtaskError

from conftest import run_cli


def seed_arrays(n=12, frames=16):
    rng = np.random.default_rng(0)
    videos = rng.uniform(0, 1, size=(n, frames, 3, 64, 64)).astype(np.float32)
    labels = np.arange(n) % 4
    return videos, labels


def test_npz_and_pt_load_without_pickle(tmp_path):
    videos, labels = seed_arrays()
    np.savez(tmp_path / "seed.npz", videos=videos, labels=labels, trajectory_3d=np.zeros((12, 16, 3)))
    torch.save({"videos": torch.from_numpy(videos), "labels": torch.from_numpy(labels)}, tmp_path / "seed.pt")
    for name in ("seed.npz", "seed.pt"):
        ds = load_dataset(tmp_path / name)
        assert ds.videos.shape == (12, 16, 3, 64, 64) and ds.videos.dtype == np.uint8
        assert np.abs(ds.videos / 255.0 - videos).max() <= 0.5 / 255 + 1e-6
        assert list(ds.labels) == list(labels)
        assert sorted(set(ds.split.tolist())) == [0, 1, 2]
    assert load_dataset(tmp_path / "seed.npz").hash == load_dataset(tmp_path / "seed.pt").hash
    assert "points" in load_dataset(tmp_path / "seed.npz").extra


@pytest.mark.parametrize("name", ["seed.npz", "compressed.npz", "seed.pt", "legacy.pt", "uint8.npz"])
def test_seed_files_are_converted_a_few_videos_at_a_time(tmp_path, name):
    """Opening a seed file never holds its float videos whole: numpy's traced peak stays below the
    size of the float array (the old reader made three copies of it), and the result is the same."""
    import tracemalloc

    videos, labels = seed_arrays(n=48)
    path = tmp_path / name
    if name == "uint8.npz":
        videos = np.round(videos * 255).astype(np.uint8)
        np.savez(path, videos=videos, labels=labels)
    elif name.endswith(".npz"):
        (np.savez_compressed if name == "compressed.npz" else np.savez)(path, videos=videos, labels=labels)
    else:
        torch.save({"videos": torch.from_numpy(videos), "labels": torch.from_numpy(labels)}, path,
                   _use_new_zipfile_serialization=name != "legacy.pt")
    tracemalloc.start()
    ds = load_dataset(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    want = videos if videos.dtype == np.uint8 else np.round(videos * 255).astype(np.uint8)
    np.testing.assert_array_equal(ds.videos, want)
    assert list(ds.labels) == list(labels)
    if name != "legacy.pt":  # the legacy torch format cannot be memory-mapped: read whole, then converted
        assert peak < (1.2 if videos.dtype == np.uint8 else 0.75) * videos.nbytes, (peak, videos.nbytes)


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize("case,needle", [
    ("shape", "shape (N, T, 3, H, W)"),
    ("range", "[0, 1]"),
    ("dtype", "dtype"),
    ("count", "labels must have shape"),
    ("label_range", "labels must be in 0..3"),
    ("missing", "missing 'labels'"),
    ("nan", "NaN"),
])
def test_bad_seed_files_one_line_exit_1(tmp_path, case, needle):
    videos, labels = seed_arrays(4)
    if case == "shape":
        videos = videos[:, :, 0]
    elif case == "range":
        videos = videos * 2
    elif case == "dtype":
        videos = (videos > 0.5)
    elif case == "count":
        labels = labels[:3]
    elif case == "label_range":
        labels = labels + 2
    elif case == "nan":
        videos[0, 0, 0, 0, 0] = np.nan
    arrays = {"videos": videos} if case == "missing" else {"videos": videos, "labels": labels}
    path = tmp_path / f"{case}.npz"
    np.savez(path, **arrays)
    proc = run_cli("data", "info", str(path))
    assert proc.returncode == 1
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    assert str(path.name) in lines[0] and needle in lines[0], lines[0]
    assert "Traceback" not in proc.stderr


def test_pickled_code_is_never_executed(tmp_path, capfd):
    npz = tmp_path / "obj.npz"
    np.savez(npz, videos=np.array([Evil()], dtype=object), labels=np.zeros(1))
    with pytest.raises(MagtaskError, match="pickle"):
        load_dataset(npz)
    pt = tmp_path / "evil.pt"
    with open(pt, "wb") as f:
        torch.save({"videos": Evil(), "labels": torch.zeros(1)}, f)
    with pytest.raises(MagtaskError, match="refused"):
        load_dataset(pt)
    assert "pwned" not in capfd.readouterr().out


@pytest.mark.parametrize("content,needle", [
    (b"", "too short"),
    (b"hello world, not a tensor file at all", "not a safetensors file"),
])
def test_unreadable_files(tmp_path, content, needle):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    proc = run_cli("data", "info", str(path))
    assert proc.returncode == 1 and needle in proc.stderr and "bad.safetensors" in proc.stderr


def test_truncated_and_foreign_files(tmp_path, tiny_dataset):
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(tiny_dataset.read_bytes()[:-1000])
    proc = run_cli("data", "info", str(trunc))
    assert proc.returncode == 1 and "truncated" in proc.stderr
    from safetensors.numpy import save_file

    foreign = tmp_path / "weights.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(foreign))
    proc = run_cli("data", "info", str(foreign))
    assert proc.returncode == 1 and "not a magtask dataset" in proc.stderr
    bad_npz = tmp_path / "cut.npz"
    np.savez(bad_npz, videos=np.zeros((2, 2, 3, 8, 8)), labels=np.zeros(2, int))
    bad_npz.write_bytes(bad_npz.read_bytes()[:100])
    proc = run_cli("data", "info", str(bad_npz))
    assert proc.returncode == 1 and "cut.npz" in proc.stderr
