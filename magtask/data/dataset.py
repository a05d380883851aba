"""Load a dataset from any supported file: ours (.safetensors) or the seed project's (.npz / .pt).

Our files are read on demand (videos: a FileArray; ground truth: memory-mapped), so opening a
30 000-video dataset costs no memory until videos are read; they are validated on open (dtypes,
shapes, label and split range, matching lengths, at least one video). Seed files are small; they are
validated, converted to uint8 and given a stratified split.

A dataset is known by its content: `Dataset.hash` (what code caches and metrics.json refer to) is
computed from the file's tensor bytes (videos, labels, split, ground truth) and its class and split
names, never taken from the metadata, so an edited file is a new dataset. For our files the byte
hash is streamed once per file version and remembered (magtask.checksums).
Nothing pickled is ever executed: .npz is read with allow_pickle=False, .pt with weights_only=True.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from magtask.data.splits import SPLIT_NAMES, stratified_split
from magtask.data.trajectories import CLASS_NAMES
from magtask.errors import MagtaskError
from magtask.tensorfile import data_digest, open_lazy, open_tensors


@dataclass
class Dataset:
    videos: np.ndarray  # (N, T, 3, H, W) uint8 (a FileArray read on demand for our own files)
    labels: np.ndarray  # (N,) int64
    split: np.ndarray  # (N,) uint8: 0 train, 1 val, 2 test
    hash: str  # content hash: what code caches and metrics.json refer to
    path: Path
    centres: np.ndarray | None = None  # (N, T, 2) float32 ground-truth dot centre, pixel (x, y)
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # points, params, camera, style, ...
    meta: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def frames(self) -> int:
        return int(self.videos.shape[1])

    @property
    def size(self) -> int:
        return int(self.videos.shape[-1])

    @property
    def class_names(self) -> tuple[str, ...]:
        """The classes in label order, from the file's metadata (files without it: the generator's)."""
        raw = self.meta.get("class_names")
        if raw is None:
            return tuple(CLASS_NAMES)
        try:
            names = json.loads(raw)
        except json.JSONDecodeError:
            names = None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
            raise MagtaskError(f"{self.path}: its class_names metadata is not a JSON list of distinct names")
        return tuple(names)

    def indices(self, split: str | int) -> np.ndarray:
        s = SPLIT_NAMES.index(split) if isinstance(split, str) else split
        return np.flatnonzero(self.split == s)

    def require(self, *splits: str) -> None:
        """A one-line error unless every named split holds at least one video."""
        empty = [s for s in splits if not len(self.indices(s))]
        if empty:
            raise MagtaskError(f"{self.path}: no videos in the {' and '.join(empty)} split")

    def counts(self) -> dict[str, dict[str, int]]:
        """{split name: {class name: count}}"""
        return {s: {c: int(np.sum((self.split == si) & (self.labels == ci))) for ci, c in enumerate(self.class_names)}
                for si, s in enumerate(SPLIT_NAMES)}


def load_dataset(path: str | os.PathLike) -> Dataset:
    path = Path(path)
    if not path.exists():
        raise MagtaskError(f"{path}: no such file")
    if path.is_dir():
        raise MagtaskError(f"{path}: is a directory, not a dataset file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _from_arrays(path, _read_npz(path))
    if suffix in (".pt", ".pth"):
        return _from_arrays(path, _read_pt(path))
    return _read_own(path)


def identity_hash(data_sha256: str, meta: dict[str, str]) -> str:
    """The dataset's hash: its tensor bytes' SHA-256 together with its class and split names."""
    names = {k: meta.get(k, "") for k in ("class_names", "split_names")}
    return hashlib.sha256(json.dumps({"data": data_sha256, **names}, sort_keys=True).encode()).hexdigest()


def _read_own(path: Path) -> Dataset:
    tensors, meta = open_tensors(path)
    if meta.get("format") != "magtask-dataset":
        raise MagtaskError(f"{path}: not a magtask dataset (safetensors without format=magtask-dataset); "
                           "seed-project files must end in .npz or .pt")
    missing = {"videos", "labels", "split"} - set(tensors)
    if missing:
        raise MagtaskError(f"{path}: dataset lacks tensors {sorted(missing)}")
    _check_own(path, tensors, meta)
    tensors.pop("videos")
    videos = open_lazy(path, "videos")  # read on demand: bounded memory for any dataset size
    return Dataset(videos=videos, labels=np.asarray(tensors.pop("labels"), dtype=np.int64),
                   split=np.asarray(tensors.pop("split")), hash=identity_hash(data_digest(path), meta), path=path,
                   centres=tensors.pop("centres", None), extra=tensors, meta=meta)


def _check_own(path: Path, t: dict[str, np.ndarray], meta: dict[str, str]) -> None:
    """Our format's promises: videos (N>=1, T>=2, 3, S, S) uint8, labels (N,) integers in the class
    range, split (N,) uint8 in 0..2, centres (if any) (N, T, 2) float."""
    v, y, s = t["videos"], t["labels"], t["split"]
    if v.dtype != np.uint8:
        raise MagtaskError(f"{path}: videos must be uint8, got {v.dtype}")
    if v.ndim != 5 or v.shape[2] != 3 or v.shape[1] < 2:
        raise MagtaskError(f"{path}: videos must have shape (N, T>=2, 3, H, W), got {tuple(v.shape)}")
    if v.shape[3] != v.shape[4]:
        raise MagtaskError(f"{path}: videos must be square, got frames of {v.shape[3]}x{v.shape[4]}")
    if len(v) == 0:
        raise MagtaskError(f"{path}: holds no videos")
    for name, a, kinds in (("labels", y, "iu"), ("split", s, "iu")):
        if a.shape != (len(v),) or a.dtype.kind not in kinds:
            raise MagtaskError(f"{path}: {name} must be {len(v)} integers, one per video; got {a.dtype} "
                               f"{tuple(a.shape)}")
    try:
        names = json.loads(meta.get("class_names", json.dumps(CLASS_NAMES)))
        assert isinstance(names, list) and names and all(isinstance(n, str) for n in names)
    except (ValueError, AssertionError):
        raise MagtaskError(f"{path}: metadata class_names is not a JSON list of names") from None
    if y.min() < 0 or y.max() >= len(names):
        raise MagtaskError(f"{path}: labels must be in 0..{len(names) - 1}, found {int(y.min())}..{int(y.max())}")
    if s.min() < 0 or s.max() >= len(SPLIT_NAMES):
        raise MagtaskError(f"{path}: split values must be in 0..{len(SPLIT_NAMES) - 1} ({', '.join(SPLIT_NAMES)}), "
                           f"found {int(s.min())}..{int(s.max())}")
    c = t.get("centres")
    if c is not None and (c.shape != (len(v), v.shape[1], 2) or c.dtype.kind != "f"):
        raise MagtaskError(f"{path}: centres must be float ({len(v)}, {v.shape[1]}, 2), got {c.dtype} {tuple(c.shape)}")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as e:  # object arrays need pickle: refused
        raise MagtaskError(f"{path}: refused to load pickled objects ({e})") from None
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise MagtaskError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None


def _read_pt(path: Path) -> dict[str, np.ndarray]:
    import pickle

    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unsafe pickle"
        raise MagtaskError(f"{path}: refused to load: {first}") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MagtaskError(f"{path}: not a readable torch file ({first})") from None
    if not isinstance(obj, dict):
        raise MagtaskError(f"{path}: expected a dict with 'videos' and 'labels', got {type(obj).__name__}")
    return {k: (v.numpy() if isinstance(v, torch.Tensor) else np.asarray(v)) for k, v in obj.items()}


def _from_arrays(path: Path, arrays: dict[str, np.ndarray]) -> Dataset:
    """Validate a seed-format dict (videos (N, T, 3, H, W) float in [0, 1], labels (N,))."""
    for key in ("videos", "labels"):
        if key not in arrays:
            raise MagtaskError(f"{path}: missing {key!r} (found {sorted(arrays)})")
    v, y = arrays["videos"], arrays["labels"]
    if v.ndim != 5 or v.shape[2] != 3:
        raise MagtaskError(f"{path}: videos must have shape (N, T, 3, H, W), got {tuple(v.shape)}")
    if v.shape[3] != v.shape[4]:
        raise MagtaskError(f"{path}: videos must be square, got frames of {v.shape[3]}x{v.shape[4]}")
    if v.shape[1] < 2 or v.shape[0] < 1:
        raise MagtaskError(f"{path}: videos must hold at least 1 video of 2 frames, got {tuple(v.shape)}")
    if v.dtype == np.uint8:
        videos = np.ascontiguousarray(v)
    elif np.issubdtype(v.dtype, np.floating):
        if not np.all(np.isfinite(v)):
            raise MagtaskError(f"{path}: videos contain NaN or Inf")
        lo, hi = float(v.min()), float(v.max())
        if lo < 0.0 or hi > 1.0:
            raise MagtaskError(f"{path}: video values must be in [0, 1], found [{lo:.3g}, {hi:.3g}]")
        videos = np.round(v * 255.0).astype(np.uint8)
    else:
        raise MagtaskError(f"{path}: videos must be float in [0, 1] or uint8, got dtype {v.dtype}")
    if y.ndim != 1 or len(y) != len(v):
        raise MagtaskError(f"{path}: labels must have shape ({len(v)},) to match the videos, got {tuple(y.shape)}")
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise MagtaskError(f"{path}: labels must be integers, got dtype {y.dtype}")
    if len(y) and (y.min() < 0 or y.max() >= len(CLASS_NAMES)):
        raise MagtaskError(f"{path}: labels must be in 0..{len(CLASS_NAMES) - 1} "
                           f"({', '.join(CLASS_NAMES)}), found {int(y.min())}..{int(y.max())}")
    labels = y.astype(np.int64)
    h = hashlib.sha256()
    for a in (videos, labels):
        h.update(np.ascontiguousarray(a).tobytes())
    extra = {}
    if "trajectory_3d" in arrays:
        extra["points"] = np.asarray(arrays["trajectory_3d"], dtype=np.float32)
    meta = {"format": "seed", "source": path.name, "class_names": json.dumps(CLASS_NAMES)}
    return Dataset(videos=videos, labels=labels, split=stratified_split(labels, 0), hash=h.hexdigest(),
                   path=path, extra=extra, meta=meta)
