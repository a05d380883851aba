"""`magtask data import DIR`: a folder of real GIF / MP4 / PNG-frame videos becomes a magtask dataset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from conftest import run_cli
from magtask.data.dataset import load_dataset

BG, INK = 230, 30


def dot_video(motion: str, i: int, frames: int = 16, size: int = 64) -> np.ndarray:
    """(T, H, W, 3) uint8: a dark dot of radius 5 on a light background, moving left, right or still."""
    yy, xx = np.mgrid[:size, :size]
    y0 = 12 + (7 * i) % (size - 24)
    x0 = 12 + (5 * i) % (size - 24)
    step = {"left": -1.5, "right": 1.5, "still": 0.0}[motion] * size / 64
    start = {"left": size - 12, "right": 12, "still": x0}[motion]
    out = np.full((frames, size, size, 3), BG, np.uint8)
    for t in range(frames):
        wobble = t % 2 if motion == "still" else 0  # so that no two consecutive frames are equal
        out[t][(xx - (start + step * t + wobble)) ** 2 + (yy - y0) ** 2 <= 25] = INK
    return out


def _pause() -> np.ndarray:
    v = dot_video("left", 3)
    v[5:9] = v[5]  # frames 5-8 equal: GIF writers store them as one frame shown 4 times as long
    return v


PAUSE = _pause()


def write_gif(path: Path, video: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, video, duration=80, loop=0)
    return path


def write_mp4(path: Path, video: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, video, plugin="pyav", codec="h264", fps=8)
    return path


def write_png_frames(folder: Path, frames: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True)
    for t, f in enumerate(frames):
        iio.imwrite(folder / f"frame_{t + 1}.png", f)  # frame_1 .. frame_16: numeric, not lexical, order
    return folder


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory) -> Path:
    """left: 4 GIFs (one pauses); right: 3 GIFs + 1 MP4; still: 2 GIFs, 1 grayscale GIF, 1 folder of RGBA
    PNG frames."""
    root = tmp_path_factory.mktemp("videos") / "clips"
    for i in range(3):
        write_gif(root / "left" / f"l{i}.gif", dot_video("left", i))
    write_gif(root / "left" / "l3-pause.gif", PAUSE)
    for i in range(3):
        write_gif(root / "right" / f"r{i}.gif", dot_video("right", i))
    write_mp4(root / "right" / "r3.mp4", dot_video("right", 3))
    for i in range(2):
        write_gif(root / "still" / f"s{i}.gif", dot_video("still", i))
    write_gif(root / "still" / "s2-gray.gif", dot_video("still", 2)[..., 0])  # (T, H, W): grayscale
    rgb = dot_video("still", 3)
    alpha = np.where(rgb[..., :1] == INK, 255, 0).astype(np.uint8)  # transparent background: composited on white
    write_png_frames(root / "still" / "s3-frames", list(np.concatenate([rgb, alpha], axis=-1)))
    return root


def test_import_gif_mp4_and_png_frames(video_dir, tmp_path):
    out = tmp_path / "mine.safetensors"
    proc = run_cli("data", "import", str(video_dir), "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "12 videos" in proc.stderr and "left, right, still" in proc.stderr

    ds = load_dataset(out)
    assert ds.meta["format"] == "magtask-dataset"
    assert json.loads(ds.meta["class_names"]) == ["left", "right", "still"]
    assert ds.videos.shape == (12, 16, 3, 64, 64)
    assert np.bincount(ds.labels).tolist() == [4, 4, 4]
    for c in range(3):  # stratified: every class in every split
        assert sorted(set(ds.split[ds.labels == c].tolist())) == [0, 1, 2]
    files = json.loads(ds.meta["source_files"])
    assert files[4:8] == ["right/r0.gif", "right/r1.gif", "right/r2.gif", "right/r3.mp4"]

    videos = np.asarray(ds.videos)
    assert np.array_equal(videos[0].transpose(0, 2, 3, 1), dot_video("left", 0))  # GIF: lossless
    assert np.array_equal(videos[files.index("left/l3-pause.gif")].transpose(0, 2, 3, 1), PAUSE)
    mp4 = videos[files.index("right/r3.mp4")].transpose(0, 2, 3, 1).astype(int)
    assert np.abs(mp4 - dot_video("right", 3)).mean() < 3  # h264: lossy but close, frames in order
    gray = videos[files.index("still/s2-gray.gif")]
    assert np.array_equal(gray[:, 0], gray[:, 1]) and np.array_equal(gray[:, 0], gray[:, 2])
    png = videos[files.index("still/s3-frames")].transpose(0, 2, 3, 1)
    want = np.where(dot_video("still", 3) == INK, INK, 255)  # alpha 0 -> white
    assert np.array_equal(png, want)

    info = run_cli("data", "info", str(out), "--json")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["n_videos"] == 12


def test_import_resamples_only_when_asked(tmp_path):
    root = tmp_path / "odd"
    for c in ("up", "down"):
        for i in range(3):
            write_gif(root / c / f"{i}.gif", dot_video("right" if c == "up" else "left", i, frames=20, size=48))
    out = tmp_path / "odd.safetensors"
    proc = run_cli("data", "import", str(root), "--out", str(out))
    assert proc.returncode == 1
    assert "down/0.gif" in proc.stderr and "20 frames of 48x48" in proc.stderr and "--frames" in proc.stderr
    assert not out.exists() and not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))
    proc = run_cli("data", "import", str(root), "--out", str(out), "--frames", "20")
    assert proc.returncode == 1 and "--size" in proc.stderr and not out.exists()

    proc = run_cli("data", "import", str(root), "--out", str(out), "--frames", "8", "--size", "32")
    assert proc.returncode == 0, proc.stderr
    ds = load_dataset(out)
    assert ds.videos.shape == (6, 8, 3, 32, 32)
    assert json.loads(ds.meta["class_names"]) == ["down", "up"]
    assert ds.meta["frames"] == "8" and ds.meta["size"] == "32"
    v = np.asarray(ds.videos[0]).astype(int)  # the dot is still there, darker than the background
    assert v.min() < 100 and np.median(v) > 200


def test_duplicates_are_dropped(tmp_path):
    root = tmp_path / "dups"
    for c, motion in (("a", "left"), ("b", "right")):
        for i in range(3):
            write_gif(root / c / f"{i}.gif", dot_video(motion, i))
    shutil.copy(root / "a" / "0.gif", root / "a" / "9-copy.gif")
    out = tmp_path / "d.safetensors"
    proc = run_cli("data", "import", str(root), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "1 duplicate video: a/9-copy.gif repeats a/0.gif" in proc.stderr
    ds = load_dataset(out)
    assert len(ds) == 6 and "a/9-copy.gif" not in json.loads(ds.meta["source_files"])


def _two_classes(root: Path) -> Path:
    for c, motion in (("a", "left"), ("b", "right")):
        for i in range(3):
            write_gif(root / c / f"{i}.gif", dot_video(motion, i))
    return root


def _truncate(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _case(name: str, root: Path) -> tuple[int, str]:
    """Make bad input `name` under root; return (exit code, a phrase the error must contain)."""
    if name == "missing folder":
        return 1, "no such folder"
    root.mkdir(parents=True)
    if name == "empty folder":
        return 1, "no class folders"
    if name == "one class":
        for i in range(3):
            write_gif(root / "only" / f"{i}.gif", dot_video("left", i))
        return 1, "at least 2 classes"
    _two_classes(root)
    if name == "class of one video":
        shutil.rmtree(root / "b")
        write_gif(root / "b" / "0.gif", dot_video("right", 0))
        return 1, "b: 1 video"
    if name == "truncated gif":  # mid-frame: Pillow raises
        _truncate(root / "b" / "1.gif", 0.5)
        return 1, "b/1.gif"
    if name == "gif truncated between frames":  # Pillow alone would read 5 frames and stop silently
        gif = root / "b" / "1.gif"
        data = gif.read_bytes()
        at = [i for i in range(len(data)) if data.startswith(b"\x21\xf9\x04", i)]
        gif.write_bytes(data[: at[5]])
        return 1, "b/1.gif: truncated"
    if name == "unreadable mp4":
        (root / "b" / "3.mp4").write_bytes(b"not a video at all" * 10)
        return 1, "b/3.mp4"
    if name == "truncated mp4":
        _truncate(write_mp4(root / "b" / "3.mp4", dot_video("right", 3)), 0.6)
        return 1, "b/3.mp4"
    if name == "frames of different sizes":
        frames = list(dot_video("left", 5))
        frames[7] = frames[7][:32]
        write_png_frames(root / "a" / "clip", frames)
        return 1, "a/clip/frame_8.png"
    if name == "not a video":
        (root / "a" / "notes.txt").write_text("hello")
        return 1, "a/notes.txt"
    if name == "file at the top":
        write_gif(root / "stray.gif", dot_video("left", 9))
        return 1, "stray.gif"
    if name == "empty frames folder":
        (root / "a" / "clip").mkdir()
        return 1, "a/clip"
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["missing folder", "empty folder", "one class", "class of one video",
                                  "truncated gif", "gif truncated between frames", "unreadable mp4", "truncated mp4", "frames of different sizes",
                                  "not a video", "file at the top", "empty frames folder"])
def test_bad_input_is_one_line_and_writes_nothing(name, tmp_path, capsys):
    """In-process (main(), as `magtask` calls it): a subprocess per case costs 3 s of importing torch."""
    from magtask.cli import main

    code, phrase = _case(name, tmp_path / "in")
    outdir = tmp_path / "outdir"
    outdir.mkdir()
    with pytest.raises(SystemExit) as exit_:
        main(["data", "import", str(tmp_path / "in"), "--out", str(outdir / "x.safetensors"),
              "--frames", "16", "--size", "64"])
    stderr = capsys.readouterr().err
    assert exit_.value.code == code, stderr
    errors = [line for line in stderr.splitlines() if "Error" in line]
    assert len(errors) == 1 and phrase in errors[0], stderr
    assert "Traceback" not in stderr
    assert list(outdir.iterdir()) == []


def test_existing_output_and_bad_options(tmp_path):
    root = _two_classes(tmp_path / "in")
    out = tmp_path / "x.safetensors"
    out.write_bytes(b"keep me")
    proc = run_cli("data", "import", str(root), "--out", str(out))
    assert proc.returncode == 1 and "--overwrite" in proc.stderr and out.read_bytes() == b"keep me"
    proc = run_cli("data", "import", str(root), "--out", str(tmp_path / "y.safetensors"), "--frames", "1")
    assert proc.returncode == 2 and not (tmp_path / "y.safetensors").exists()


def test_imported_class_names_run_through_classify_generate_and_render(tmp_path, tiny_tokenizer):
    """Three classes with new names, from GIFs: the names, and their number, reach every output."""
    root = tmp_path / "clips"
    for motion in ("left", "right", "still"):
        for i in range(6):
            write_gif(root / motion / f"{motion}{i}.gif", dot_video(motion, i))
    data = tmp_path / "mine.safetensors"
    run_cli("data", "import", str(root), "--out", str(data), check=True)
    info = json.loads(run_cli("data", "info", str(data), "--json", check=True).stdout)
    assert info["class_names"] == ["left", "right", "still"]
    assert {c: sum(info["counts"][s][c] for s in info["counts"]) for c in info["class_names"]} == \
        {"left": 6, "right": 6, "still": 6}
    proc = run_cli("run", "classify", "mlp", "--data", str(data), "--tokenizer", str(tiny_tokenizer), "--epochs", "1",
                   "--run-dir", str(tmp_path / "c"), "--json", check=True)
    m = json.loads(proc.stdout)
    assert list(m["per_class_accuracy"]) == ["left", "right", "still"] and np.array(m["confusion_matrix"]).shape == (3, 3)
    proc = run_cli("run", "generate", "class-conditional", "--data", str(data), "--tokenizer", str(tiny_tokenizer),
                   "--samples", "1", "--class", "still", "-o", "components=1", "--run-dir", str(tmp_path / "g"), "--json",
                   check=True)
    g = json.loads(proc.stdout)
    assert g["samples_per_class"] == {"still": 1} and set(g["judged_class_counts"]) == {"left", "right", "still"}
    bad = run_cli("run", "generate", "class-conditional", "--data", str(data), "--tokenizer", str(tiny_tokenizer),
                  "--class", "linear", "--run-dir", str(tmp_path / "b"))
    assert bad.returncode == 2 and "classes: left, right, still" in bad.stderr
    run_cli("render", str(tmp_path / "g"), "--out", "png", check=True)
