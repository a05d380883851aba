"""Generate a trajectory dataset and stream it to a safetensors file.

Layout of the file (all one safetensors file; metadata "format" = "magtask-dataset"):
  labels   (N,)          int64   class index into CLASS_NAMES
  split    (N,)          uint8   0 train, 1 val, 2 test (stratified, fixed by the seed)
  centres  (N, T, 2)     float32 dot centre per frame, pixel (x, y), pixel centres at +0.5
  points   (N, T, 3)     float32 the 3D path
  params   (N, P)        float32 PARAM_NAMES
  camera   (N, 15)       float32 CAMERA_NAMES
  style    (N, S)        float32 styles.style_names(style): 12 columns, 17 for the looks-era styles
  videos   (N, T, 3, H, W) uint8  written last, in chunks
Videos are interleaved by class (video i has class i % 4), so any prefix is balanced.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from magtask.data.dataset import identity_hash
from magtask.data.renderer import render
from magtask.data.splits import stratified_split
from magtask.data.styles import sample_style, style_names
from magtask.data.trajectories import (CAMERA_NAMES, CLASS_NAMES, GENERATOR_VERSION, PARAM_NAMES,
                                       project, sample_path, sample_view)
from magtask.tensorfile import TensorWriter

CHUNK = 256


def sample_ground_truth(n: int, frames: int, size: int, seed: int, style: str) -> dict[str, np.ndarray]:
    """Everything but the pixels, for n videos; deterministic from the seed, no duplicates."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.int64) % len(CLASS_NAMES)
    out = {
        "labels": labels,
        "centres": np.zeros((n, frames, 2), np.float32),
        "points": np.zeros((n, frames, 3), np.float32),
        "params": np.zeros((n, len(PARAM_NAMES)), np.float32),
        "camera": np.zeros((n, len(CAMERA_NAMES)), np.float32),
        "style": np.zeros((n, len(style_names(style))), np.float32),
    }
    seen: set[bytes] = set()
    for i in range(n):
        while True:
            st = sample_style(style, rng)
            pts, axis, params = sample_path(int(labels[i]), frames, rng)
            view = sample_view(int(labels[i]), axis, rng)
            margin = st[0] + 1.5 + (st[7] > 0) + (max(st[16] - 1, 0) / 2 if len(st) > 16 else 0)
            centres, camera = project(pts, view, size, margin, rng.uniform(0.75, 0.95), rng)
            # two videos are pixel-identical only if their dot centres and style are: dedupe on those
            key = np.round(centres, 2).tobytes() + np.round(st, 3).tobytes()
            if key not in seen:
                seen.add(key)
                break
        out["centres"][i], out["points"][i], out["params"][i] = centres, pts, params
        out["camera"][i], out["style"][i] = camera, st
    return out


def generate_dataset(out: str | Path, per_class: int = 500, seed: int = 0, frames: int = 16, size: int = 64,
                     style: str = "seed", progress: Callable[[int, int], None] | None = None) -> str:
    """Write the dataset to `out` atomically; returns its hash (Dataset.hash). progress(done, total) per chunk."""
    n = per_class * len(CLASS_NAMES)
    truth = sample_ground_truth(n, frames, size, seed, style)
    split = stratified_split(truth["labels"], seed)
    meta = {
        "format": "magtask-dataset", "format_version": "1", "generator_version": GENERATOR_VERSION,
        "seed": str(seed), "style": style, "frames": str(frames), "size": str(size),
        "class_names": json.dumps(CLASS_NAMES), "param_names": json.dumps(PARAM_NAMES),
        "camera_names": json.dumps(CAMERA_NAMES), "style_names": json.dumps(style_names(style)),
        "split_names": json.dumps(["train", "val", "test"]),
    }
    small = {"labels": truth["labels"], "split": split, **{k: truth[k] for k in ("centres", "points", "params", "camera", "style")}}
    layout = {k: (v.shape, v.dtype) for k, v in small.items()}
    layout["videos"] = ((n, frames, 3, size, size), np.uint8)
    noise_rng = np.random.default_rng([seed, 1])
    with TensorWriter(out, layout, meta) as w:
        for k, v in small.items():
            w.write(k, v)
        for lo in range(0, n, CHUNK):
            hi = min(n, lo + CHUNK)
            w.write("videos", render(truth["centres"][lo:hi], truth["style"][lo:hi], size, noise_rng))
            if progress:
                progress(hi, n)
    return identity_hash(w.hash.hexdigest(), meta)
