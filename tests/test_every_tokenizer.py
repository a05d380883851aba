"""Every built-in head x every kind of tokenizer magtask loads: it runs to the end, or refuses in one line.

The tokenizers are the magvit2-pytorch checkpoints the REAL package wrote (tests/fixtures/magvit2/,
see tests/test_magvit2.py for how): LFQ with space and time compression (lfq_small: 5 bits, the
first frame on a latent step of its own, 16x16 frames -> 8x8 cells) and the seed project's FSQ model
(seed_handwritten with the seed-2026-01 preset: no down-sampling, so the latent grid is as large as
the frames; it is convolutional, so 16x16 frames keep this test fast, and
benchmarks/bench_every_head.py runs the same heads on its full 16x64x64 grid). Our own tokenizer runs
every head in the tests of each task. Tiny data, one epoch: this checks that the tokenizer contract
is all a task or head needs, not the scores.

Runs go through magtask.cli.main in this process (the same code path as the command line, without
a fresh interpreter per head), so the whole matrix takes seconds per head.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from magtask.cli import main
from magtask.data.generate import generate_dataset
from magtask.registry import get_registry

FIX = Path(__file__).parent / "fixtures" / "magvit2"
KINDS = {
    # name: checkpoint, --tokenizer-config, dataset geometry, predict's clip
    "lfq-compressed": ("lfq_small.pt", None, {"frames": 5, "size": 16}, ["--past", "3", "--future", "2"]),
    "seed-fsq-no-downsampling": ("seed_handwritten.pt", "seed-2026-01", {"frames": 4, "size": 16},
                            ["--past", "3", "--future", "1"]),
}
RAW = re.compile(r"\b(AttributeError|KeyError|TypeError|IndexError|ValueError|RuntimeError|ZeroDivisionError)\b")


def builtin_heads() -> list[tuple[str, str]]:
    reg = get_registry()
    return sorted((h.task, h.name) for h in reg.heads.values() if h.package == "magtask")


def cli(capsys, *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_head_runs_or_refuses_in_one_line(kind, tmp_path, capsys, monkeypatch):
    ckpt, config, geometry, clip = KINDS[kind]
    monkeypatch.setenv("MAGTASK_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "d.safetensors"
    generate_dataset(data, per_class=4, seed=3, **geometry)
    tok = ["--tokenizer", str(FIX / ckpt)] + (["--tokenizer-config", config] if config else [])
    heads = builtin_heads()
    assert {t for t, _ in heads} == {"classify", "generate", "predict"}
    results = {}
    for task, head in heads:
        extra = {"generate": ["--samples", "2"], "predict": clip}.get(task, [])
        code, out, err = cli(capsys, "run", task, head, "--data", str(data), *tok, "--epochs", "1", "--json",
                             "--run-dir", str(tmp_path / f"{task}-{head}"), *extra)
        results[task, head] = code
        if code == 0:
            metrics = json.loads(out)
            assert metrics["head"] == head and metrics["task"] == task, (kind, head)
            assert (tmp_path / f"{task}-{head}" / "metrics.json").is_file()
        else:
            lines = [line for line in err.strip().splitlines() if line.strip()]
            assert code in (1, 2), (kind, head, code, err)
            assert len(lines) == 1 and lines[0].startswith("Error:"), (kind, head, err)
            assert not RAW.search(err), (kind, head, err)
            assert not (tmp_path / f"{task}-{head}").exists(), (kind, head)  # nothing half-written
    # what the users this is for need most: classify, generate and predict with their tokenizer
    ran = {task for (task, _), code in results.items() if code == 0}
    assert ran == {"classify", "generate", "predict"}, (kind, results)
    if kind.startswith("seed"):
        assert results["generate", "class-conditional-prior"] == 0 and results["predict", "lstm-predictor"] == 0
