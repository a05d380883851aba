"""The head contracts: options from the command line, declared side inputs, saved heads that reload."""

import json

import numpy as np
import pytest
import torch

from magtask import HeadSpec, MagtaskError, Option, TrainData, UsageError
from magtask.contracts import SideInputs, head_kind
from magtask.registry import get_registry
from magtask.runner import execute
from magtask.runs import load_head
from magtask.specs import resolve_options
from magtask.tensorfile import open_tensors

from conftest import run_cli

EXPECTED_SIDE_INPUTS = {
    "mlp-classifier": [],
    "track-classifier": ["task_features"],
    "gaussian-prior": [],
    "class-conditional-prior": [],
    "token-prior": [],
    "track-prior": ["tracker_tracks", "training_code_windows"],
    "lstm-predictor": [],
    "transformer-predictor": [],
    "track-predictor": ["true_centres", "training_code_windows", "task_features"],
}


def test_every_builtin_head_lists_its_side_inputs_and_options():
    rows = {r["name"]: r for r in json.loads(run_cli("list-heads", "--json", check=True).stdout)}
    for name, side in EXPECTED_SIDE_INPUTS.items():
        assert rows[name]["side_inputs"] == side, name
        assert rows[name]["options"], name
        for o in rows[name]["options"]:
            assert {"name", "type", "default", "help", "values"} <= set(o)
    one = json.loads(run_cli("list-heads", "mlp", "--json", check=True).stdout)
    assert one["name"] == "mlp-classifier" and [o["name"] for o in one["options"]] == ["width", "hidden", "augment"]
    text = run_cli("list-heads", "track-predictor", check=True).stdout
    assert "true_centres" in text and "reader_steps" in text


def test_head_options_reach_build_config_json_and_metrics(tiny_dataset, tiny_tokenizer, tmp_path):
    run_dir = tmp_path / "r"
    proc = run_cli("run", "classify", "mlp", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer),
                   "--epochs", "1", "-o", "hidden=8", "--option", "width=3", "--run-dir", str(run_dir), "--json",
                   check=True)
    m = json.loads(proc.stdout)
    assert m["options"] == {"width": 3, "hidden": 8, "augment": True} and m["side_inputs"] == []
    config = json.loads((run_dir / "config.json").read_text())
    assert config["head_options"] == {"width": 3, "hidden": 8, "augment": True}
    weights, _ = open_tensors(run_dir / "head.safetensors")
    assert weights["stem.1.weight"].shape[0] == 6 and weights["mlp.2.weight"].shape[0] == 8  # built with them


@pytest.mark.parametrize("option,needle", [
    ("depth=3", "has no option 'depth'. Its options: width (an int in [1, 1024], default 16); hidden"),
    ("hidden=abc", "option hidden of head mlp-classifier takes an int in [1, 65536], got 'abc'"),
    ("hidden=0", "option hidden of head mlp-classifier must be an int in [1, 65536], got 0"),
    ("hidden", "-o takes KEY=VALUE"),
])
def test_bad_head_option_is_a_usage_error_listing_the_options(option, needle, tmp_path):
    proc = run_cli("run", "classify", "mlp", "-o", option, "--run-dir", str(tmp_path / "r"))
    assert proc.returncode == 2, proc.stderr
    errors = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(errors) == 1 and needle in errors[0] and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "r").exists()


def test_task_options_by_set_are_validated_like_their_flags(tmp_path):
    for value, needle in (("-3", "--train-per-class must be an int >= 1, got -3"),
                          ("abc", "--train-per-class takes an int >= 1, got 'abc'")):
        proc = run_cli("run", "classify", "mlp", "--set", f"train-per-class={value}", "--run-dir", str(tmp_path / "r"))
        assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_option_parsing():
    opts = (Option("n", int, 3, lo=1), Option("lr", float, 1e-3, lo=0), Option("snap", bool, True),
            Option("mode", str, "a", choices=("a", "b")))
    assert resolve_options(opts, {"n": "7", "lr": "0.5", "snap": "false", "mode": "b"}, "h") == \
        {"n": 7, "lr": 0.5, "snap": False, "mode": "b"}
    assert resolve_options(opts, {}, "h") == {"n": 3, "lr": 1e-3, "snap": True, "mode": "a"}
    for bad in ({"n": "1.5"}, {"lr": "nan"}, {"snap": "maybe"}, {"mode": "c"}, {"n": "0"}, {"x": "1"}):
        with pytest.raises(UsageError):
            resolve_options(opts, bad, "h")
    assert HeadSpec("x", "classify", dict, options=(Option("n", int, "three"),)).problems()
    assert HeadSpec("x", "classify", dict, side_inputs=("pixels",)).problems()
    assert not HeadSpec("x", "classify", dict, options=opts, side_inputs=("task_features",)).problems()


def test_a_head_cannot_receive_a_side_input_it_did_not_declare():
    calls = []
    side = SideInputs("h", ("tracker_tracks",), {"tracker_tracks": lambda: calls.append(1) or "tracks",
                                                 "true_centres": lambda: "centres"})
    assert side["tracker_tracks"] == "tracks" and side["tracker_tracks"] == "tracks" and calls == [1]
    with pytest.raises(MagtaskError, match="without declaring it"):
        side["true_centres"]
    with pytest.raises(MagtaskError, match="not a side input"):
        side["pixels"]


class SneakyPrior:
    """A fitted generate head that asks for the tracker's tracks without declaring them."""

    conditional = True

    def __init__(self, cfg):
        self.cfg = cfg

    def fit(self, data: TrainData) -> None:
        data.side["tracker_tracks"]

    def sample(self, labels, generator=None):
        return torch.zeros(len(labels), *self.cfg.in_shape)


def test_generate_refuses_an_undeclared_side_input_end_to_end(tiny_dataset, tiny_tokenizer, tmp_path):
    registry = get_registry()
    spec = HeadSpec(name="sneaky-prior", task="generate", build=SneakyPrior)
    with pytest.raises(MagtaskError, match="sneaky-prior asked for side input 'tracker_tracks' without declaring"):
        execute(registry.task("generate"), spec, data=tiny_dataset, tokenizer_path=tiny_tokenizer,
                run_dir=tmp_path / "r", quiet=True, options={"samples": 1, "class_name": None})


def test_a_head_needing_data_the_task_cannot_give_is_refused_before_work(tmp_path):
    from magtask.contracts import check_side_inputs

    registry = get_registry()
    spec = HeadSpec(name="x", task="classify", build=dict, side_inputs=("tracker_tracks",))
    with pytest.raises(UsageError, match="task classify does not provide"):
        check_side_inputs(spec, registry.task("classify"))
    check_side_inputs(registry.head("generate", "track-prior"), registry.task("generate"))


class RepeatLast:
    """A parameter-free predict head: every future step repeats the last past step."""

    def __init__(self, cfg):
        self.cfg = cfg

    def predict(self, past, n_future_steps):
        return past[:, :, -1:].repeat(1, 1, n_future_steps, 1, 1)


def test_a_parameter_free_predict_head_runs(tiny_dataset, tiny_tokenizer, tmp_path):
    registry = get_registry()
    spec = HeadSpec(name="repeat-last", task="predict", build=RepeatLast)
    assert head_kind(RepeatLast(None)) == "parameter-free"
    m = execute(registry.task("predict"), spec, data=tiny_dataset, tokenizer_path=tiny_tokenizer,
                run_dir=tmp_path / "r", quiet=True, options={"past": 12, "future": 4})
    assert m["head_kind"] == "parameter-free" and m["epochs_trained"] is None
    # repeating the last latent step is (close to) copying the last frame pair: no better than copy-last
    assert np.isfinite(m["mse"]) and m["copy_last_over_mse"] <= 1.5


def test_load_head_refuses_a_run_dir_without_a_head(tmp_path):
    with pytest.raises(MagtaskError, match="holds no saved head"):
        load_head(tmp_path)
