"""`magtask apply RUN_DIR INPUT...` (classify, predict) and `magtask sample RUN_DIR` (generate) on real
files: a tiny dataset, a tiny tokenizer, one run per task (module-scoped), real GIF / MP4 / safetensors.

Most cases call magtask.cli.main in-process (a subprocess costs 3 s of importing torch); one apply
goes through a real subprocess, as a user runs it."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from conftest import run_cli, run_cli_fresh
from magtask.data.dataset import load_dataset
from magtask.data.splits import TEST
from magtask.tensorfile import open_tensors


def cli(*args: str) -> int:
    """magtask ARGS in-process; the exit code (0 when main returns)."""
    from magtask.cli import main

    try:
        main([str(a) for a in args])
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def write_gif(path: Path, video_tchw: np.ndarray) -> Path:
    """(T, 3, H, W) uint8 -> a real GIF file."""
    iio.imwrite(path, np.ascontiguousarray(np.asarray(video_tchw).transpose(0, 2, 3, 1)), duration=80, loop=0)
    return path


@pytest.fixture(scope="module")
def ds(tiny_dataset):
    return load_dataset(tiny_dataset)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_dataset, tiny_tokenizer) -> dict[str, Path]:
    """One finished run per task, trained for one epoch on the tiny dataset."""
    root = tmp_path_factory.mktemp("runs")
    common = ("--data", tiny_dataset, "--tokenizer", tiny_tokenizer, "--json")
    jobs = {"classify": ("run", "classify", "mlp", "--epochs", "1"),
            "predict": ("run", "predict", "lstm", "--epochs", "1"),
            "generate": ("run", "generate", "class-conditional", "--samples", "1")}
    for task, args in jobs.items():
        assert cli(*args, *common, "--run-dir", root / task) == 0, task
    return {t: root / t for t in jobs}


@pytest.fixture(scope="module")
def test_video(ds) -> tuple[int, np.ndarray]:
    """(dataset index, (T, 3, H, W) uint8) of the first test video."""
    i = int(ds.indices(TEST)[0])
    return i, np.asarray(ds.videos[i])


@pytest.fixture(scope="module")
def test_gif(tmp_path_factory, test_video) -> Path:
    return write_gif(tmp_path_factory.mktemp("in") / "new.gif", test_video[1])


def run_head_class(run_dir: Path, tiny_dataset, tiny_tokenizer, index: int) -> str:
    """What the run's own head says about dataset video `index`, from the cached codes."""
    from magtask.codes import load_codes
    from magtask.runs import load_head
    from magtask.tokenizer.resolve import hash_of, open_tokenizer

    _, head, config = load_head(run_dir)
    tok = open_tokenizer(tiny_tokenizer).eval()
    codes = load_codes(load_dataset(tiny_dataset), tok, hash_of(tok), quiet=True)
    with torch.no_grad():
        scores = head(torch.from_numpy(np.asarray(codes.latents[[index]], dtype=np.float32)))
    return config.class_names[int(scores.argmax(1)[0])]


# -- classify ----------------------------------------------------------------------------------------

def test_apply_classify_gif_json_subprocess(runs, test_gif, ds, tiny_tokenizer):
    t0 = time.perf_counter()
    proc = run_cli_fresh("apply", str(runs["classify"]), str(test_gif), "--json", check=True)
    seconds = time.perf_counter() - t0
    rows = json.loads(proc.stdout)["inputs"]
    assert len(rows) == 1 and rows[0]["input"] == str(test_gif)
    assert rows[0]["class"] in ds.class_names
    probs = rows[0]["probabilities"]
    assert list(probs) == list(ds.class_names)
    assert abs(sum(probs.values()) - 1) < 1e-5 and all(0 <= p <= 1 for p in probs.values())
    assert rows[0]["class"] == max(probs, key=probs.get)
    print(f"apply on one GIF (subprocess, cold): {seconds:.1f} s")


def test_apply_gives_the_class_the_run_head_gives(runs, test_gif, test_video, ds, tiny_dataset, tiny_tokenizer,
                                                  capsys):
    from magtask.data.video_files import VideoFile, read_video

    index, video = test_video
    # the GIF holds the dataset's pixels exactly (few colours), so the codes are the cached ones
    assert np.array_equal(read_video(VideoFile(test_gif, 0, "new.gif", "gif"), ds.frames, ds.size), video)
    capsys.readouterr()
    assert cli("apply", runs["classify"], test_gif, "--json") == 0
    row = json.loads(capsys.readouterr().out)["inputs"][0]
    assert row["class"] == run_head_class(runs["classify"], tiny_dataset, tiny_tokenizer, index)


def test_apply_on_a_dataset_file_matches_the_head_on_every_test_video(runs, tiny_dataset, tiny_tokenizer, ds,
                                                                     capsys):
    from magtask.codes import load_codes
    from magtask.runs import load_head
    from magtask.tokenizer.resolve import hash_of, open_tokenizer

    capsys.readouterr()
    assert cli("apply", runs["classify"], tiny_dataset, "--json") == 0
    rows = json.loads(capsys.readouterr().out)["inputs"]
    assert len(rows) == len(ds)
    assert [r["true_class"] for r in rows] == [ds.class_names[y] for y in ds.labels]
    _, head, config = load_head(runs["classify"])
    tok = open_tokenizer(tiny_tokenizer).eval()
    codes = load_codes(ds, tok, hash_of(tok), quiet=True)
    with torch.no_grad():
        pred = head(torch.from_numpy(np.asarray(codes.latents[:], dtype=np.float32))).argmax(1).numpy()
    assert [r["class"] for r in rows] == [config.class_names[p] for p in pred]


def test_apply_classify_table_and_folder_and_json_out(runs, test_gif, tmp_path, capsys):
    folder = tmp_path / "clips"
    folder.mkdir()
    shutil.copy(test_gif, folder / "a.gif")
    shutil.copy(test_gif, folder / "b.gif")
    capsys.readouterr()
    assert cli("apply", runs["classify"], folder, "--out", tmp_path / "labels.json") == 0
    shown = capsys.readouterr().out
    assert "on 2 videos" in shown
    saved = json.loads((tmp_path / "labels.json").read_text())
    assert [Path(r["input"]).name for r in saved["inputs"]] == ["a.gif", "b.gif"]
    assert saved["inputs"][0]["class"] == saved["inputs"][1]["class"]


def test_apply_resamples_with_frames_and_size(runs, test_video, tmp_path, capsys):
    from PIL import Image

    _, video = test_video
    small = np.stack([np.asarray(Image.fromarray(f.transpose(1, 2, 0)).resize((48, 48))) for f in video[::2]])
    gif = write_gif(tmp_path / "small.gif", small.transpose(0, 3, 1, 2))  # 8 frames of 48x48
    capsys.readouterr()
    assert cli("apply", runs["classify"], gif, "--frames", "16", "--size", "64", "--json") == 0
    assert len(json.loads(capsys.readouterr().out)["inputs"]) == 1


# -- predict -----------------------------------------------------------------------------------------

def test_apply_predict_continues_a_gif(runs, test_gif, test_video, tmp_path):
    metrics = json.loads((runs["predict"] / "metrics.json").read_text())
    past, future = metrics["n_past"], metrics["n_future"]
    _, video = test_video
    assert cli("apply", runs["predict"], test_gif, "--out", tmp_path / "out.gif") == 0
    frames = iio.imread(tmp_path / "out.gif", index=None)
    assert len(frames) == past + future
    assert cli("apply", runs["predict"], test_gif, "--out", tmp_path / "out.safetensors") == 0
    t, meta = open_tensors(tmp_path / "out.safetensors")
    assert meta["format"] == "magtask-predictions" and int(meta["n_past"]) == past
    assert t["videos"].shape == (1, past + future, 3, 64, 64) and t["videos"].dtype == np.uint8
    assert np.array_equal(t["past"][0], video[:past]) and np.array_equal(t["videos"][0, :past], video[:past])
    assert t["predicted"].shape == (1, future, 3, 64, 64)
    assert np.array_equal(t["videos"][0, past:], t["predicted"][0])
    assert t["is_predicted"].tolist() == [0] * past + [1] * future
    assert json.loads(meta["inputs"]) == [str(test_gif)]
    assert cli("apply", runs["predict"], test_gif, "--out", tmp_path / "out.mp4") == 0
    assert len(iio.imread(tmp_path / "out.mp4", plugin="pyav", index=None)) == past + future


def test_predict_marks_predicted_frames_in_gif(runs, test_gif, tmp_path):
    """Predicted frames carry a red border, past frames a grey one."""
    metrics = json.loads((runs["predict"] / "metrics.json").read_text())
    assert cli("apply", runs["predict"], test_gif, "--out", tmp_path / "o.gif") == 0
    frames = iio.imread(tmp_path / "o.gif", index=None)
    edge = frames[:, -2, frames.shape[2] // 2]  # a pixel of the bottom border
    red = (edge[:, 0] > 180) & (edge[:, 1] < 90) & (edge[:, 2] < 90)
    assert red.tolist() == [False] * metrics["n_past"] + [True] * metrics["n_future"]


def test_apply_predict_takes_just_the_past(runs, test_video, tmp_path):
    past = json.loads((runs["predict"] / "metrics.json").read_text())["n_past"]
    gif = write_gif(tmp_path / "past.gif", test_video[1][:past])
    assert cli("apply", runs["predict"], gif, "--out", tmp_path / "o.safetensors") == 0
    t, _ = open_tensors(tmp_path / "o.safetensors")
    assert np.array_equal(t["past"][0], test_video[1][:past])


# -- generate ----------------------------------------------------------------------------------------

def test_sample_class_gif_and_safetensors(runs, tmp_path):
    assert cli("sample", runs["generate"], "--class", "circular", "--n", "3", "--out", tmp_path / "s.gif") == 0
    assert len(iio.imread(tmp_path / "s.gif", index=None)) == 16
    assert cli("sample", runs["generate"], "--class", "circular", "--n", "3", "--out", tmp_path / "s.safetensors") == 0
    t, meta = open_tensors(tmp_path / "s.safetensors")
    names = json.loads(meta["class_names"])
    assert t["videos"].shape == (3, 16, 3, 64, 64) and t["videos"].dtype == np.uint8
    assert [names[c] for c in t["labels"]] == ["circular"] * 3
    assert cli("sample", runs["generate"], "--class", "circular", "--n", "3", "--out", tmp_path / "s.mp4") == 0
    assert len(iio.imread(tmp_path / "s.mp4", plugin="pyav", index=None)) == 16


def test_sample_every_class_by_default(runs, tmp_path):
    assert cli("sample", runs["generate"], "--n", "2", "--out", tmp_path / "s.safetensors") == 0
    t, meta = open_tensors(tmp_path / "s.safetensors")
    assert t["labels"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


# -- bad input: one line, exit 1 or 2, nothing written -------------------------------------------------

def _bad(name: str, runs, test_gif, tmp: Path, tiny_tokenizer) -> tuple[list, int, str]:
    """(command line without --out's file, exit code, phrase of the one error line)."""
    if name == "run dir without a head":
        d = tmp / "nohead"
        d.mkdir()
        (d / "config.json").write_text("{}")
        return ["apply", d, test_gif], 1, "holds no saved head"
    if name == "missing run dir":
        return ["apply", tmp / "nope", test_gif], 1, "no such run dir"
    if name == "generate run":
        return ["apply", runs["generate"], test_gif], 2, "magtask sample"
    if name == "geometry":
        v = np.full((16, 3, 48, 48), 230, np.uint8)
        return ["apply", runs["classify"], write_gif(tmp / "small.gif", v)], 1, "small.gif"
    if name == "predict geometry":
        v = np.full((5, 3, 64, 64), 230, np.uint8)
        return ["apply", runs["predict"], write_gif(tmp / "short.gif", v)], 1, "short.gif"
    if name == "unreadable input":
        (tmp / "broken.gif").write_bytes(b"GIF89a not really a gif")
        return ["apply", runs["classify"], tmp / "broken.gif"], 1, "broken.gif"
    if name == "missing input":
        return ["apply", runs["classify"], tmp / "absent.gif"], 1, "absent.gif"
    if name == "tokenizer hash differs":
        from magtask.tokenizer.io import save_tokenizer
        from magtask.tokenizer.model import VideoTokenizer

        torch.manual_seed(1)
        other = tmp / "other-tok.safetensors"
        save_tokenizer(VideoTokenizer({"width": 8, "enc_blocks": 1, "mid_blocks": 1, "dec_blocks": 1}), other)
        return ["apply", runs["classify"], test_gif, "--tokenizer", other], 1, "hash"
    if name == "sample unknown class":
        return ["sample", runs["generate"], "--class", "spiral"], 2, "linear, circular, helical, parabolic"
    if name == "sample on a classify run":
        return ["sample", runs["classify"]], 2, "classify run"
    if name == "unsupported --out":
        return ["apply", runs["predict"], test_gif], 2, ".txt"
    if name == "sample unsupported --out":
        return ["sample", runs["generate"]], 2, ".txt"
    raise AssertionError(name)


BAD = ["run dir without a head", "missing run dir", "generate run", "geometry", "predict geometry",
       "unreadable input", "missing input", "tokenizer hash differs", "sample unknown class",
       "sample on a classify run", "unsupported --out", "sample unsupported --out"]


@pytest.mark.parametrize("name", BAD)
def test_bad_input_is_one_line_and_writes_nothing(name, runs, test_gif, tmp_path, tiny_tokenizer, capsys):
    args, code, phrase = _bad(name, runs, test_gif, tmp_path, tiny_tokenizer)
    outdir = tmp_path / "outdir"
    outdir.mkdir()
    ext = ".txt" if "unsupported" in name else (".safetensors" if args[0] == "sample" or "predict" in name else ".json")
    before = sorted(p.name for p in runs["classify"].iterdir())
    capsys.readouterr()
    got = cli(*args, "--out", outdir / f"x{ext}")
    stderr = capsys.readouterr().err
    assert got == code, stderr
    errors = [line for line in stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and phrase in errors[0], stderr
    assert "Traceback" not in stderr
    assert list(outdir.iterdir()) == []
    assert sorted(p.name for p in runs["classify"].iterdir()) == before


def test_default_in_config_json_is_the_shipped_tokenizer(tmp_path, tiny_tokenizer):
    from magtask.apply import open_run_tokenizer
    from magtask.errors import MagtaskError
    from magtask.tokenizer.io import load_tokenizer
    from magtask.tokenizer.resolve import hash_of

    shipped = hash_of(load_tokenizer(None))
    assert hash_of(open_run_tokenizer(tmp_path, {"tokenizer": "default"}, shipped)) == shipped
    with pytest.raises(MagtaskError, match="shipped tokenizer has content hash"):
        open_run_tokenizer(tmp_path, {"tokenizer": "default"}, "0" * 64)
    with pytest.raises(MagtaskError, match="not there any more; pass --tokenizer"):
        open_run_tokenizer(tmp_path, {"tokenizer": str(tmp_path / "gone.safetensors")}, shipped)
    tiny = hash_of(load_tokenizer(tiny_tokenizer))  # an override is hash-checked too, and wins
    assert hash_of(open_run_tokenizer(tmp_path, {"tokenizer": "default"}, tiny, tiny_tokenizer)) == tiny
