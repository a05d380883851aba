"""`magtask run classify mlp` end to end (tiny data, tiny untrained tokenizer), and its bad input."""

import json

import numpy as np
import pytest

from magtask import TaskSpec
from magtask.registry import get_registry
from magtask.runner import execute

from conftest import assert_head_reloads, run_cli

CONTRACT = {"task", "head", "tokenizer", "data", "seed", "seconds", "accuracy", "per_class_accuracy",
            "confusion_matrix", "chance", "n_train", "n_test"}


def test_run_writes_metrics_contract_and_json_stdout(tiny_dataset, tiny_tokenizer, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli("run", "classify", "mlp", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer),
                   "--epochs", "3", "--run-dir", str(run_dir), "--json", check=True)
    metrics = json.loads(proc.stdout)  # stdout holds only the JSON
    assert CONTRACT <= set(metrics)
    assert metrics["task"] == "classify" and metrics["head"] == "mlp-classifier"
    assert list(metrics["per_class_accuracy"]) == ["linear", "circular", "helical", "parabolic"]
    m = np.array(metrics["confusion_matrix"])
    assert m.shape == (4, 4) and m.sum() == metrics["n_test"] == 12
    assert metrics["accuracy"] == pytest.approx(np.trace(m) / m.sum())
    assert metrics["chance"] == pytest.approx(0.25)
    assert json.loads((run_dir / "metrics.json").read_text()) == metrics
    for f in ("config.json", "head.safetensors", "confusion.png"):
        assert (run_dir / f).exists(), f
    assert_head_reloads(run_dir, tiny_dataset, tiny_tokenizer)


def test_table_on_terminal_and_run_dir_refused_without_overwrite(tiny_dataset, tiny_tokenizer, tmp_path):
    run_dir = tmp_path / "run"
    args = ["run", "classify", "mlp-classifier", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer),
            "--epochs", "2", "--run-dir", str(run_dir)]
    proc = run_cli(*args, check=True)
    assert "test accuracy" in proc.stdout and "chance" in proc.stdout and "helical" in proc.stdout
    again = run_cli(*args)
    assert again.returncode == 1 and "--overwrite" in again.stderr
    run_cli(*args, "--overwrite", check=True)


def test_label_efficiency_uses_only_k_labels(tiny_dataset, tiny_tokenizer, tmp_path):
    proc = run_cli("run", "classify", "mlp", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer),
                   "--epochs", "2", "--train-per-class", "3", "--run-dir", str(tmp_path / "r"), "--json", check=True)
    metrics = json.loads(proc.stdout)
    assert metrics["n_train"] == 12 and metrics["n_val"] == 0 and metrics["train_per_class"] == 3


def test_seed_format_npz_runs(tiny_tokenizer, tmp_path):
    rng = np.random.default_rng(0)
    from magtask.data.generate import generate_dataset
    from magtask.data.dataset import load_dataset

    generate_dataset(tmp_path / "g.safetensors", per_class=50, seed=9)
    ds = load_dataset(tmp_path / "g.safetensors")
    npz = tmp_path / "seed.npz"
    np.savez(npz, videos=(np.asarray(ds.videos) / 255.0).astype(np.float32), labels=ds.labels)
    proc = run_cli("run", "classify", "mlp", "--data", str(npz), "--tokenizer", str(tiny_tokenizer),
                   "--epochs", "2", "--run-dir", str(tmp_path / "r"), "--json", check=True)
    metrics = json.loads(proc.stdout)
    assert metrics["n_train"] + metrics["n_val"] + metrics["n_test"] == 200


@pytest.mark.parametrize("args,code,needle", [
    (["run", "classify", "mlpp"], 2, "Did you mean mlp-classifier"),
    (["run", "clasify", "mlp"], 2, "Did you mean classify"),
    (["run", "classify", "mlp", "--epochs", "0"], 2, "--epochs"),
    (["run", "classify", "mlp", "--past", "4"], 2, "does not apply"),
])
def test_bad_run_input(args, code, needle):
    proc = run_cli(*args)
    assert proc.returncode == code, proc.stderr
    assert needle in proc.stderr


def test_head_of_another_task_is_refused():
    registry = get_registry()
    assert registry.heads["gaussian-prior"].task == "generate"
    proc = run_cli("run", "classify", "gaussian-prior")
    assert proc.returncode == 2 and "not a classify head" in proc.stderr


def test_interrupted_run_leaves_nothing(tiny_dataset, tiny_tokenizer, tmp_path):
    def interrupted(ctx):
        raise KeyboardInterrupt

    task = TaskSpec(name="classify", run=interrupted, options={})
    head = get_registry().head("classify", "mlp")
    with pytest.raises(KeyboardInterrupt):
        execute(task, head, data=tiny_dataset, tokenizer_path=tiny_tokenizer, run_dir=tmp_path / "r", quiet=True)
    assert list(tmp_path.iterdir()) == []  # not even config.json: the retry is not blocked


def test_mlp_classifier_reads_any_tokenizer_code_scale_the_same():
    """Codes of another tokenizer may sit at another scale and offset per channel (FSQ levels, LFQ
    +-1, a magvit2 grid): the head standardises each input channel, so a per-channel affine change
    of the codes leaves its training-mode outputs unchanged."""
    import torch

    from magtask_plugins.heads.classify.mlp_classifier import MLPClassifier

    torch.manual_seed(0)
    head = MLPClassifier((4, 8, 16, 16), n_classes=4).train()
    x = torch.randn(16, 4, 8, 16, 16)
    scale = torch.rand(1, 4, 1, 1, 1) * 5 + 0.2
    shift = torch.randn(1, 4, 1, 1, 1) * 3
    torch.manual_seed(1)
    a = head(x)
    torch.manual_seed(1)  # the same dropout masks
    b = head(x * scale + shift)
    assert torch.allclose(a, b, atol=1e-3), (a - b).abs().max()


def test_mlp_classifier_trains_on_mirrored_and_transposed_grids():
    """`augment` (default on): in training mode each code grid reaches the stem mirrored in x, in y and
    transposed at random (a path's class does not change with them), in eval mode as it is."""
    import torch

    from magtask_plugins.heads.classify.mlp_classifier import MLPClassifier

    spec = get_registry().head("classify", "mlp-classifier")
    assert next(o for o in spec.options if o.name == "augment").default is True
    torch.manual_seed(0)
    head = MLPClassifier((4, 8, 16, 16), n_classes=4, augment=True)
    x = torch.randn(64, 4, 8, 16, 16)
    seen = []
    head.stem.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    head.train()(x)
    head.eval()(x)
    flat = x.flatten(1, 2)

    def views(g):
        mirrors = [g, g.flip(-1), g.flip(-2), g.flip(-1).flip(-2)]
        return mirrors + [m.transpose(-1, -2) for m in mirrors]

    kinds = [next(k for k, v in enumerate(views(flat[i])) if torch.equal(seen[0][i], v)) for i in range(len(x))]
    assert len(set(kinds)) == 8  # every symmetry drawn among 64 grids (each has odds 1/8)
    assert torch.equal(seen[1], flat)


def test_grid_mirrors_never_transpose_a_grid_that_is_not_square():
    """blocks.grid_symmetries.random_mirrors on (B, ..., h, w) with h != w: the four mirrors only."""
    import torch

    from magtask_plugins.blocks.grid_symmetries import random_mirrors

    torch.manual_seed(0)
    x = torch.randn(64, 2, 3, 4, 6)
    out = random_mirrors(x)
    assert out.shape == x.shape and not torch.equal(out, x)
    kinds = [next(k for k, v in enumerate((g, g.flip(-1), g.flip(-2), g.flip(-1).flip(-2))) if torch.equal(o, v))
             for g, o in zip(x, out)]
    assert set(kinds) == {0, 1, 2, 3}


def test_validation_score_breaks_accuracy_ties_by_cross_entropy():
    """Early stopping's score: the val accuracy, ties broken by the mean cross entropy, so a val split
    that is all right from some epoch on still tells later epochs apart. One more video right always
    outweighs any cross entropy, and the score stays within 1 / n of the accuracy."""
    import torch

    from magtask_plugins.tasks.classify import val_score

    y = torch.tensor([0, 1, 1, 0])
    sure = torch.tensor([[4.0, 0.0], [0.0, 4.0], [0.0, 4.0], [4.0, 0.0]])
    unsure = sure / 8
    assert val_score(sure, y) > val_score(unsure, y) >= 1.0
    wrong = sure * 50
    wrong[0] = torch.tensor([0.0, 0.01])  # one wrong by a hair, the others all but certain
    assert val_score(unsure, y) > val_score(wrong, y) >= 0.75
    assert val_score(sure, y) < 1.0 + 1 / 4 and val_score(wrong, y) < 0.75 + 1 / 4
    # the scores read as the head declares them: as votes b is surer of class 0 than a, as logits a is
    a, b, y0 = torch.tensor([[2.0, 1.0, 1.0]]), torch.tensor([[10.0, 9.9, 0.0]]), torch.tensor([0])
    assert val_score(b, y0, "votes") > val_score(a, y0, "votes") and val_score(a, y0) > val_score(b, y0)
