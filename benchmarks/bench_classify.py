"""Classify benchmark: codes + mlp-classifier and codes + track-classifier vs a raw-pixel 3D CNN, same split.

    python benchmarks/bench_classify.py                # full: wall times, accuracy, label-efficiency curve
    python benchmarks/bench_classify.py --counts 10    # only some label counts

Measures, on the default dataset and the shipped tokenizer:
  1. `magtask run classify mlp --json` wall time cold (code cache cleared: extraction included) and
     warm (codes cached), as a user runs it (a fresh process each);
  2. test accuracy and training seconds of the codes heads (mlp-classifier trained by the shared loop,
     track-classifier fitted) and of a raw-pixel 3D CNN trained by the shared loop on the same train split, at 5, 10, 20, 50 and all labelled videos per class
     (with a label budget, neither model sees the labelled val split: fixed epochs, last weights).
Prints a markdown table to paste into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from magtask.codes import load_codes
from magtask.data.dataset import load_dataset
from magtask.data.defaults import default_dataset_path
from magtask.data.splits import TEST, TRAIN, VAL
from magtask.loop import TrainConfig, train
from magtask.tokenizer.io import load_tokenizer, tokenizer_hash
from magtask import TrainData
from magtask.contracts import SideInputs
from magtask_plugins.tasks.classify import logits_of, pick_per_class, val_score
from magtask_plugins.heads.classify.mlp_classifier import MLPClassifier
from magtask_plugins.heads.classify.track_classifier import TrackClassifier


class PixelCNN(nn.Module):
    """A small 3D CNN on raw pixels (B, T, 3, 64, 64) uint8 -> 4 logits; ~0.2 M parameters."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv3d(3, 16, (3, 4, 4), stride=(1, 4, 4), padding=(1, 0, 0)), nn.GELU(),  # 16x16x16
            nn.Conv3d(16, 32, 3, stride=2, padding=1), nn.GELU(),  # 8x8x8
            nn.Conv3d(32, 32, 3, stride=2, padding=1), nn.GELU(),  # 4x4x4
            nn.Flatten(), nn.Linear(32 * 4 * 4 * 4, 128), nn.GELU(), nn.Linear(128, 4))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        x = v.float().div(255.0).permute(0, 2, 1, 3, 4)  # (B, 3, T, H, W)
        return self.net(x * 2 - 1)


def accuracy(model, x, y, batch=256) -> float:
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + batch]).argmax(1) for i in range(0, len(x), batch)])
    return float((pred == y).float().mean())


def fit(model, x_tr, y_tr, x_val, y_val, cfg) -> float:
    """Train by the shared loop; with a val split, early stopping scores epochs as the classify task does
    (tasks.classify.val_score: val accuracy, ties broken by val cross entropy), for both models alike."""
    t0 = time.perf_counter()
    train(model, (x_tr, y_tr), lambda m, b: F.cross_entropy(m(b[0]), b[1]), cfg,
          val_score=(lambda m: val_score(logits_of(m, x_val, 256), y_val)) if len(x_val) else None,
          describe="training")
    return time.perf_counter() - t0


def cli_seconds(*args: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "magtask", *args], capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, json.loads(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="5,10,20,50,all")
    ap.add_argument("--skip-cli", action="store_true")
    ap.add_argument("--cnn-epochs", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    if not args.skip_cli:
        subprocess.run([sys.executable, "-m", "magtask", "codes", "clear"], check=True, capture_output=True)
        cold, m_cold = cli_seconds("run", "classify", "mlp", "--json", "--run-dir", "/tmp/bench-cold", "--overwrite")
        warm, m_warm = cli_seconds("run", "classify", "mlp", "--json", "--run-dir", "/tmp/bench-warm", "--overwrite")
        print(f"| `magtask run classify mlp` cold (extraction included) | {cold:.1f} s | accuracy {m_cold['accuracy']:.4f} |")
        print(f"| `magtask run classify mlp` warm (codes cached) | {warm:.1f} s | accuracy {m_warm['accuracy']:.4f} |")
        print("per-class:", m_warm["per_class_accuracy"])
        few, m_few = cli_seconds("run", "classify", "track", "--train-per-class", "10", "--json", "--run-dir",
                                 "/tmp/bench-track10", "--overwrite")
        print(f"| `magtask run classify track --train-per-class 10` warm | {few:.1f} s | accuracy {m_few['accuracy']:.4f} |")
        print("per-class:", m_few["per_class_accuracy"])

    ds = load_dataset(default_dataset_path())
    tok = load_tokenizer(None).eval()
    codes = load_codes(ds, tok, tokenizer_hash(tok), quiet=True)
    labels = codes.labels
    tr_all, va, te = codes.subset(TRAIN), codes.subset(VAL), codes.subset(TEST)
    lat = torch.from_numpy(np.array(codes.latents))  # (N, C, t, h, w)
    vid = torch.from_numpy(np.array(ds.videos))
    y = torch.from_numpy(labels)
    print("| labelled / class | codes+MLP acc | codes+MLP train s | codes+track acc | codes+track fit s "
          "| pixel 3D CNN acc | pixel CNN train s |")
    print("|---|---|---|---|---|---|---|")
    for c in args.counts.split(","):
        if c == "all":
            tr, val = tr_all, va
        else:
            tr, val = pick_per_class(tr_all, labels, int(c), seed=0, n_classes=len(ds.class_names)), va[:0]
        torch.manual_seed(0)
        mlp = MLPClassifier(in_shape=lat.shape[1:], n_classes=len(ds.class_names))
        s_mlp = fit(mlp, lat[tr], y[tr], lat[val], y[val], TrainConfig(**{**MLPClassifier.train_defaults, "quiet": True}))
        a_mlp = accuracy(mlp, lat[te], y[te])
        torch.manual_seed(0)
        track = TrackClassifier(n_classes=len(ds.class_names))
        t0 = time.perf_counter()
        track.fit(TrainData(x=lat[tr], y=y[tr], side=SideInputs("track-classifier", ("task_features",), {})))
        s_track = time.perf_counter() - t0
        a_track = accuracy(track, lat[te], y[te])
        torch.manual_seed(0)
        cnn = PixelCNN()
        s_cnn = fit(cnn, vid[tr], y[tr], vid[val], y[val], TrainConfig(epochs=args.cnn_epochs, batch_size=32, lr=1e-3,
                                                                       patience=6, quiet=True))
        a_cnn = accuracy(cnn, vid[te], y[te])
        print(f"| {c} | {a_mlp:.4f} | {s_mlp:.1f} | {a_track:.4f} | {s_track:.1f} | {a_cnn:.4f} | {s_cnn:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
