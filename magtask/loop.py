"""The one shared train/eval loop. It knows nothing of any task or head by name.

A task hands it a model, tensors, a loss and a validation score; it seeds, batches, optimises
(AdamW, cosine schedule), shows rich progress (epoch, loss, validation score), keeps the weights of
the best validation epoch (early stopping with patience), and restores them at the end.
Every task hands its head to `train_head`, which fits, trains or leaves it as its kind says.
"""

from __future__ import annotations

import contextlib
import copy
import math
import platform
import random
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from magtask.console import progress_bar
from magtask.errors import MagtaskError


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2
    patience: int = 8  # epochs without validation improvement before stopping
    seed: int = 0
    quiet: bool = False
    # "bf16": forward and loss run under torch.autocast(bfloat16) where the device computes bfloat16
    # natively (else float32); weights, gradients, optimiser state and validation stay float32
    precision: str = "fp32"


@dataclass
class History:
    train_loss: list[float] = field(default_factory=list)
    val_score: list[float] = field(default_factory=list)
    best_epoch: int = -1
    best_score: float = float("nan")
    stopped_early: bool = False
    precision: str = "fp32"  # what the training steps ran in (TrainConfig.precision, as the device allows)


PRECISIONS = ("fp32", "bf16")


X86 = ("x86_64", "amd64", "i386", "i686", "x86")


def flush_denormals() -> None:
    """Treat denormal floats as zero on this CPU from now on. Late in training, gradients reach denormal
    values, and CPU kernels on them run much slower (benchmarks/predict.md). The setting is per
    thread and a new thread inherits it, so it holds for torch's thread pool only if set before the
    pool exists: the CLI's main calls this first."""
    torch.set_flush_denormal(True)


def mkldnn_bf16() -> bool:
    """Whether oneDNN runs bf16 on this CPU at all (on x86 also where it only emulates it)."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def native_bf16(device_type: str) -> bool:
    """Whether this device computes bfloat16 matrix products natively (CPU: AVX512-BF16 or AMX on x86,
    oneDNN's bf16 elsewhere; CUDA: compute capability 8 or more): elsewhere bf16 autocast is emulated
    and slower than fp32. oneDNN alone says yes on any AVX512 x86 CPU, so x86's own flags decide there."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type != "cpu" or not mkldnn_bf16():
        return False
    if platform.machine().lower() in X86:
        flags = [getattr(torch.cpu, f, None) for f in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        if all(callable(f) for f in flags):
            return any(bool(f()) for f in flags)
    return True


def effective_precision(precision: str, device_type: str) -> str:
    """TrainConfig.precision -> what the steps will run in on this device ("bf16" only where native)."""
    if precision not in PRECISIONS:
        raise MagtaskError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    return "bf16" if precision == "bf16" and native_bf16(device_type) else "fp32"


def train(model: torch.nn.Module, tensors: Sequence[torch.Tensor],
          loss_fn: Callable[[torch.nn.Module, tuple[torch.Tensor, ...]], torch.Tensor],
          cfg: TrainConfig, val_score: Callable[[torch.nn.Module], float] | None = None,
          describe: str = "training") -> History:
    """Minimise loss_fn(model, batch) over minibatches of `tensors` (all indexed along dim 0).

    val_score(model) -> float, higher is better, evaluated after each epoch in eval mode; without it
    the last epoch's weights are kept.
    """
    flush_denormals()
    seed_everything(cfg.seed)
    n = len(tensors[0])
    device_type = next(iter(model.parameters())).device.type
    precision = effective_precision(cfg.precision, device_type)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, math.ceil(n / cfg.batch_size))
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    gen = torch.Generator().manual_seed(cfg.seed)
    hist = History(precision=precision)
    best_state = None
    with progress_bar(describe, cfg.epochs, disable=cfg.quiet) as tick:
        for epoch in range(cfg.epochs):
            model.train()
            order = torch.randperm(n, generator=gen)
            total_loss = 0.0
            for lo in range(0, n, cfg.batch_size):
                idx = order[lo:lo + cfg.batch_size]
                with autocast(precision, device_type):
                    loss = loss_fn(model, tuple(t[idx] for t in tensors)).float()
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total_loss += loss.item() * len(idx)
            hist.train_loss.append(total_loss / n)
            info = f"loss {hist.train_loss[-1]:.4f}"
            if val_score is not None:
                model.eval()
                with torch.no_grad():
                    score = float(val_score(model))
                hist.val_score.append(score)
                if best_state is None or score > hist.best_score:
                    hist.best_score, hist.best_epoch = score, epoch
                    best_state = copy.deepcopy(model.state_dict())
                info += f"  val {score:.4f} (best {hist.best_score:.4f} @ {hist.best_epoch + 1})"
            tick(info=info)
            if val_score is not None and epoch - hist.best_epoch >= cfg.patience:
                hist.stopped_early = True
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        hist.best_epoch = len(hist.train_loss) - 1
    model.eval()
    return hist


def autocast(precision: str, device_type: str):
    """The context a training step's forward and loss run in."""
    if precision == "bf16":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_head(head, data, tensors: Callable[[], Sequence[torch.Tensor]], loss_fn, cfg: TrainConfig,
               val_score: Callable[[torch.nn.Module], float] | None = None, describe: str = "training") -> History | None:
    """Fit, train or leave a head as its kind says (magtask.contracts.head_kind); data is its TrainData.

    A fitted head gets fit(data). A trained head gets prepare(data) if it has it, then train() on its
    own train_tensors(data) (else `tensors()`, the task's default) with its own loss(*batch) (else the
    task's `loss_fn(model, batch)`). A parameter-free head is used as built. History for trained heads."""
    from magtask.contracts import head_kind

    kind = head_kind(head)
    if kind == "fitted":
        head.fit(data)
        return None
    if callable(getattr(head, "prepare", None)):
        head.prepare(data)
    if kind == "parameter-free":
        return None
    own = getattr(head, "train_tensors", None)
    batches = own(data) if callable(own) else tensors()
    if callable(getattr(head, "loss", None)):
        loss_fn = lambda m, batch: m.loss(*batch)  # noqa: E731
    if loss_fn is None:
        raise MagtaskError(f"{describe}: a trained head of this task must define loss(...)")
    return train(head, batches, loss_fn, cfg, val_score=val_score, describe=describe)
