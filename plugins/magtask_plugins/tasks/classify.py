"""Task `classify`: codes -> class, scored on the held-out test split beside chance."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from rich.table import Table

from magtask import MagtaskError, Option, TaskSpec, TrainData, hookimpl
from magtask.contracts import ClassifyHead, capability, head_kind
from magtask.console import out
from magtask.data.splits import TEST, TRAIN, VAL
from magtask.loop import train_head
from magtask.render import confusion_image, write_image
from magtask_plugins.tasks.classify_apply import probabilities


def pick_per_class(index: np.ndarray, labels: np.ndarray, k: int, seed: int, n_classes: int) -> np.ndarray:
    """k videos of each class from `index`, chosen at random by the seed (fewer if a class has fewer)."""
    rng = np.random.default_rng([seed, 101])
    parts = [rng.permutation(index[labels[index] == c])[:k] for c in range(n_classes)]
    return np.sort(np.concatenate(parts))


def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def run(ctx) -> dict:
    labels = ctx.codes.labels
    names = ctx.class_names
    train_idx, val_idx, test_idx = (ctx.codes.subset(s) for s in (TRAIN, VAL, TEST))
    if len(np.unique(labels[test_idx])) < 2:
        raise MagtaskError(f"{ctx.dataset.path}: the test split holds {len(np.unique(labels[test_idx]))} class(es); "
                           "an accuracy on it would mean nothing")
    k = ctx.options.get("train_per_class")
    if k:
        # label efficiency: only k labels per class, and no labelled validation set either
        train_idx, val_idx = pick_per_class(train_idx, labels, int(k), ctx.seed, len(names)), val_idx[:0]
    if len(np.unique(labels[train_idx])) < 2:
        raise MagtaskError("the training split holds fewer than two classes")
    x_train, y_train = ctx.inputs(train_idx), torch.from_numpy(labels[train_idx])
    x_val, y_val = ctx.inputs(val_idx), torch.from_numpy(labels[val_idx])
    config = ctx.build_config(x_train.shape[1:])
    model = ctx.build_head(config)

    def score_on_val(m):  # the val accuracy plus a tie-break worth less than one video (val_score)
        return val_score(logits_of(m, x_val), y_val, capability(m, ClassifyHead, "scores"))

    data = TrainData(x=x_train, y=y_train, side=ctx.side_inputs({}), seed=ctx.seed)
    hist = train_head(model, data, lambda: (x_train, y_train),
                      lambda m, batch: F.cross_entropy(m(batch[0]), batch[1]), ctx.train_config(model),
                      val_score=score_on_val if len(val_idx) else None, describe=f"training {ctx.head.name}")
    pred = predict(model, ctx.inputs(test_idx)).numpy()
    y_test = labels[test_idx]
    m = confusion(y_test, pred, len(names))
    per_class = {c: (float(m[i, i] / m[i].sum()) if m[i].sum() else None) for i, c in enumerate(names)}
    counts = np.bincount(y_test, minlength=len(names))
    metrics = {
        "accuracy": float((pred == y_test).mean()),
        "per_class_accuracy": per_class,
        "confusion_matrix": m.tolist(),
        "class_names": list(names),
        "chance": float(counts.max() / counts.sum()),
        "n_train": int(len(train_idx)), "n_val": int(len(val_idx)), "n_test": int(len(test_idx)),
        "n_test_per_class": {c: int(counts[i]) for i, c in enumerate(names)},
        "train_per_class": int(k) if k else None,
        "head_kind": head_kind(model),
        "epochs_trained": len(hist.train_loss) if hist else None,
        "train_precision": hist.precision if hist else None,
        "best_epoch": hist.best_epoch + 1 if hist else None,
        "val_accuracy": float((predict(model, x_val) == y_val).float().mean()) if hist and hist.val_score else None,
    }
    ctx.save_head(model, config)
    write_image(ctx.run_dir / "confusion.png", confusion_image(m, names))
    if not ctx.quiet:
        show(metrics)
    return metrics


@torch.no_grad()
def logits_of(model, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """(N, ...) inputs -> (N, n_classes) the head's class scores, in eval mode."""
    if hasattr(model, "eval"):
        model.eval()
    return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])


def predict(model, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
    if len(x) == 0:
        return torch.zeros(0, dtype=torch.long)
    return logits_of(model, x, batch).argmax(1)


def val_score(scores: torch.Tensor, y: torch.Tensor, kind: str = "logits") -> float:
    """Early stopping's score of a head's (N, K) scores (`kind` as ClassifyHead.scores) against (N,)
    labels: the accuracy plus 1 / ((N + 1) (1 + mean cross entropy)), less than one more video right
    (1 / N). Among epochs with as many right, the one surer of the right classes wins: a val split that
    is all right from an early epoch on still tells the later ones apart, instead of stopping training
    there."""
    n = len(y)
    right = (scores.argmax(1) == y).float().mean().item()
    p = probabilities(scores, kind)[torch.arange(n), y.long()]
    ce = -p.clamp_min(1e-12).log().mean().item()
    return right + 1.0 / ((n + 1) * (1.0 + ce))


def show(metrics: dict) -> None:
    t = Table(title=f"test accuracy {metrics['accuracy']:.3f}   (chance {metrics['chance']:.3f}; "
                    f"{metrics['n_train']} train / {metrics['n_test']} test videos)")
    t.add_column("true \\ predicted")
    for c in metrics["class_names"]:
        t.add_column(c, justify="right")
    t.add_column("accuracy", justify="right")
    for i, c in enumerate(metrics["class_names"]):
        acc = metrics["per_class_accuracy"][c]
        t.add_row(c, *(str(v) for v in metrics["confusion_matrix"][i]), "-" if acc is None else f"{acc:.3f}")
    out.print(t)


@hookimpl
def register_tasks(register):
    from magtask_plugins.tasks import classify_apply

    register(TaskSpec(name="classify", run=run, apply=classify_apply.apply, apply_outputs=classify_apply.OUTPUTS,
                      options=(Option("train_per_class", int, None, "labelled training videos per class", lo=1),),
                      description="codes -> trajectory class; test accuracy, per-class accuracy, confusion, chance"))
