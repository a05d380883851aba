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


CONVERT_CHUNK = 4  # seed videos converted to uint8 at a time


class _NpyMember:
    """The `videos` array of an .npz file, read from the zip member a few rows at a time
    (np.load would read the whole float array at once)."""

    def __init__(self, path: Path, member: str):
        self.path, self.member = path, member
        with zipfile.ZipFile(path) as zf, zf.open(member) as f:
            fmt = np.lib.format
            read = fmt.read_array_header_1_0 if fmt.read_magic(f) == (1, 0) else fmt.read_array_header_2_0
            self.shape, fortran, self.dtype = read(f)
            self.offset = f.tell()
        if fortran or self.dtype.hasobject:
            raise ValueError("object or Fortran-ordered videos are not supported")
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def chunks(self, k: int):
        row = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        with zipfile.ZipFile(self.path) as zf, zf.open(self.member) as f:
            f.read(self.offset)
            for lo in range(0, self.shape[0], k):
                n = min(k, self.shape[0] - lo)
                buf = f.read(n * row)
                if len(buf) != n * row:
                    raise EOFError("the videos array is truncated")
                yield np.frombuffer(buf, self.dtype).reshape(n, *self.shape[1:])


def _chunks(v, k: int):
    """Rows of an array (numpy, a memory-mapped torch tensor, or an _NpyMember), k at a time."""
    if isinstance(v, _NpyMember):
        yield from v.chunks(k)
        return
    for lo in range(0, len(v), k):
        part = v[lo:lo + k]
        if hasattr(part, "numpy"):  # a torch tensor (memory-mapped): cast half-precision floats per chunk
            part = part.float() if part.dtype.is_floating_point else part
            part = part.numpy()
        yield np.asarray(part)


def _read_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files if k != "videos"}
            if "videos" in z.files:
                out["videos"] = _NpyMember(path, "videos.npy")
            return out
    except ValueError as e:  # object arrays need pickle: refused
        raise MagtaskError(f"{path}: refused to load pickled objects ({e})") from None
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise MagtaskError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None


def _read_pt(path: Path) -> dict:
    """The .pt dict, its tensors memory-mapped where the file allows it (the zip format does)."""
    import pickle

    import torch

    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):  # the legacy (non-zip) format cannot be memory-mapped: read it whole
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unsafe pickle"
        raise MagtaskError(f"{path}: refused to load: {first}") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MagtaskError(f"{path}: not a readable torch file ({first})") from None
    if not isinstance(obj, dict):
        raise MagtaskError(f"{path}: expected a dict with 'videos' and 'labels', got {type(obj).__name__}")
    return {k: (v if k == "videos" and isinstance(v, torch.Tensor) else
                v.numpy() if isinstance(v, torch.Tensor) else np.asarray(v)) for k, v in obj.items()}


def _numpy_dtype(torch_dtype) -> np.dtype:
    """A torch dtype's numpy counterpart; every float type counts as float32 (its chunks are cast)."""
    if torch_dtype.is_floating_point:
        return np.dtype(np.float32)
    try:
        return np.dtype(str(torch_dtype).removeprefix("torch."))
    except TypeError:
        return np.dtype(object)


def _to_uint8(path: Path, v) -> np.ndarray:
    """Seed videos (float in [0, 1], or uint8) -> uint8, CONVERT_CHUNK videos at a time: only the uint8
    result and one chunk are in memory."""
    dtype = v.dtype if isinstance(v.dtype, np.dtype) else _numpy_dtype(v.dtype)
    if dtype != np.uint8 and not np.issubdtype(dtype, np.floating):
        raise MagtaskError(f"{path}: videos must be float in [0, 1] or uint8, got dtype {dtype}")
    out = np.empty(tuple(v.shape), np.uint8)
    lo = 0
    try:
        for part in _chunks(v, CONVERT_CHUNK):
            if dtype == np.uint8:
                out[lo:lo + len(part)] = part
            else:
                if not np.all(np.isfinite(part)):
                    raise MagtaskError(f"{path}: videos contain NaN or Inf")
                a, b = float(part.min()), float(part.max())
                if a < 0.0 or b > 1.0:
                    raise MagtaskError(f"{path}: video values must be in [0, 1], found [{a:.3g}, {b:.3g}] "
                                       f"in videos {lo}..{lo + len(part) - 1}")
                x = np.multiply(part, 255.0, dtype=np.float32)  # one float temporary per chunk
                out[lo:lo + len(part)] = np.rint(x, out=x)
            lo += len(part)
    except (EOFError, OSError, zipfile.BadZipFile) as e:
        raise MagtaskError(f"{path}: not a readable file ({type(e).__name__}: {e})") from None
    return out


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
    videos = _to_uint8(path, v)
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
        h.update(memoryview(np.ascontiguousarray(a)).cast("B"))  # no copy of the videos
    extra = {}
    if "trajectory_3d" in arrays:
        extra["points"] = np.asarray(arrays["trajectory_3d"], dtype=np.float32)
    meta = {"format": "seed", "source": path.name, "class_names": json.dumps(CLASS_NAMES)}
    return Dataset(videos=videos, labels=labels, split=stratified_split(labels, 0), hash=h.hexdigest(),
                   path=path, extra=extra, meta=meta)
