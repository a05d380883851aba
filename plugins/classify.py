"""Task `classify`: codes -> class, scored on the held-out test split beside chance."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from rich.table import Table

from magtask import CLASS_NAMES, MagtaskError, TaskSpec, hookimpl
from magtask.console import out
from magtask.data.splits import TEST, TRAIN, VAL
from magtask.loop import TrainConfig, fit_or_train
from magtask.render import confusion_image, write_image


def pick_per_class(index: np.ndarray, labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k videos of each class from `index`, chosen at random by the seed (fewer if a class has fewer)."""
    rng = np.random.default_rng([seed, 101])
    parts = [rng.permutation(index[labels[index] == c])[:k] for c in range(len(CLASS_NAMES))]
    return np.sort(np.concatenate(parts))


def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def run(ctx) -> dict:
    labels = ctx.codes.labels
    train_idx, val_idx, test_idx = (ctx.codes.subset(s) for s in (TRAIN, VAL, TEST))
    if len(np.unique(labels[test_idx])) < 2:
        raise MagtaskError(f"{ctx.dataset.path}: the test split holds {len(np.unique(labels[test_idx]))} class(es); "
                           "an accuracy on it would mean nothing")
    k = ctx.options.get("train_per_class")
    if k:
        # label efficiency: only k labels per class, and no labelled validation set either
        train_idx, val_idx = pick_per_class(train_idx, labels, int(k), ctx.seed), val_idx[:0]
    if len(np.unique(labels[train_idx])) < 2:
        raise MagtaskError("the training split holds fewer than two classes")
    x_train, y_train = ctx.inputs(train_idx), torch.from_numpy(labels[train_idx])
    x_val, y_val = ctx.inputs(val_idx), torch.from_numpy(labels[val_idx])
    config = {"in_shape": list(x_train.shape[1:]), "n_classes": len(CLASS_NAMES),
              "codebook_size": ctx.tokenizer.codebook_size}
    torch.manual_seed(ctx.seed)
    model = ctx.head.build(**config)
    defaults = getattr(model, "train_defaults", {})
    cfg = TrainConfig(**{**defaults, "seed": ctx.seed, "quiet": ctx.quiet,
                         **({"epochs": ctx.epochs} if ctx.epochs else {})})

    def loss_fn(m, batch):
        return F.cross_entropy(m(batch[0]), batch[1])

    def val_acc(m):
        return (predict(m, x_val) == y_val).float().mean().item()

    hist = fit_or_train(model, (x_train, y_train), dict(
        tensors=(x_train, y_train), loss_fn=loss_fn, cfg=cfg, val_score=val_acc if len(val_idx) else None,
        describe=f"training {ctx.head.name}"))
    pred = predict(model, ctx.inputs(test_idx)).numpy()
    y_test = labels[test_idx]
    m = confusion(y_test, pred, len(CLASS_NAMES))
    per_class = {c: (float(m[i, i] / m[i].sum()) if m[i].sum() else None) for i, c in enumerate(CLASS_NAMES)}
    counts = np.bincount(y_test, minlength=len(CLASS_NAMES))
    metrics = {
        "accuracy": float((pred == y_test).mean()),
        "per_class_accuracy": per_class,
        "confusion_matrix": m.tolist(),
        "chance": float(counts.max() / counts.sum()),
        "n_train": int(len(train_idx)), "n_val": int(len(val_idx)), "n_test": int(len(test_idx)),
        "n_test_per_class": {c: int(counts[i]) for i, c in enumerate(CLASS_NAMES)},
        "train_per_class": int(k) if k else None,
        "epochs_trained": len(hist.train_loss) if hist else None,
        "best_epoch": hist.best_epoch + 1 if hist else None,
        "val_accuracy": hist.best_score if hist and hist.val_score else None,
    }
    if isinstance(model, torch.nn.Module):
        ctx.save_head(model, config)
    write_image(ctx.run_dir / "confusion.png", confusion_image(m, CLASS_NAMES))
    if not ctx.quiet:
        show(metrics)
    return metrics


@torch.no_grad()
def predict(model, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
    if len(x) == 0:
        return torch.zeros(0, dtype=torch.long)
    if hasattr(model, "eval"):
        model.eval()
    return torch.cat([model(x[i:i + batch]).argmax(1) for i in range(0, len(x), batch)])


def show(metrics: dict) -> None:
    t = Table(title=f"test accuracy {metrics['accuracy']:.3f}   (chance {metrics['chance']:.3f}; "
                    f"{metrics['n_train']} train / {metrics['n_test']} test videos)")
    t.add_column("true \\ predicted")
    for c in CLASS_NAMES:
        t.add_column(c, justify="right")
    t.add_column("accuracy", justify="right")
    for i, c in enumerate(CLASS_NAMES):
        acc = metrics["per_class_accuracy"][c]
        t.add_row(c, *(str(v) for v in metrics["confusion_matrix"][i]), "-" if acc is None else f"{acc:.3f}")
    out.print(t)


@hookimpl
def register_tasks(register):
    register(TaskSpec(name="classify", run=run, options={"train_per_class": None},
                      description="codes -> trajectory class; test accuracy, per-class accuracy, confusion, chance"))
