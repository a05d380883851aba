"""Safetensors files written in a stream and read memory-mapped, always atomically.

The writer knows every tensor's shape up front, writes the header, then lets the caller stream
each tensor's bytes in chunks (so a 30 000-video dataset never sits in memory). The header is
rewritten at the end, padded to the same length, so metadata computed while writing (a content
hash) lands in it. The file appears under its name only once complete (temp file + rename).
Files are standard safetensors: `safetensors.safe_open` reads them too.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import numpy as np

from magtask.checksums import data_sha256, remember
from magtask.errors import MagtaskError
from magtask.pids import alive

_DTYPES = {
    np.dtype("uint8"): "U8", np.dtype("int8"): "I8", np.dtype("int16"): "I16", np.dtype("int32"): "I32",
    np.dtype("int64"): "I64", np.dtype("float16"): "F16", np.dtype("float32"): "F32",
    np.dtype("float64"): "F64", np.dtype("bool"): "BOOL", np.dtype("uint16"): "U16",
}
_NP = {v: k for k, v in _DTYPES.items()}
_HEADER_PAD = 512  # room for metadata that is only known at the end (hashes, counts)


class TensorWriter:
    """with TensorWriter(path, {"x": ((N, 3), np.float32)}, metadata) as w: w.write("x", chunk) ..."""

    def __init__(self, path: str | os.PathLike, layout: dict[str, tuple[tuple[int, ...], np.dtype]],
                 metadata: dict[str, str] | None = None):
        self.path = Path(path)
        self.layout = {k: (tuple(int(s) for s in shape), np.dtype(dt)) for k, (shape, dt) in layout.items()}
        self.metadata = dict(metadata or {})
        self.hash = hashlib.sha256()
        self._written = {k: 0 for k in self.layout}
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")

    def _header(self) -> bytes:
        entries, offset = {}, 0
        for name, (shape, dt) in self.layout.items():
            n = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
            entries[name] = {"dtype": _DTYPES[dt], "shape": list(shape), "data_offsets": [offset, offset + n]}
            offset += n
        if self.metadata:
            entries["__metadata__"] = {k: str(v) for k, v in self.metadata.items()}
        return json.dumps(entries, separators=(",", ":")).encode()

    def __enter__(self) -> "TensorWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        head = self._header()
        self._hlen = (len(head) + _HEADER_PAD + 7) // 8 * 8
        self._f = open(self._tmp, "wb")
        self._f.write(struct.pack("<Q", self._hlen) + head.ljust(self._hlen, b" "))
        self._order = list(self.layout)
        self._current = 0
        return self

    def write(self, name: str, chunk: np.ndarray) -> None:
        """Append the next rows of tensor `name`; tensors must be written in layout order."""
        while self._order[self._current] != name:
            done = self._written[self._order[self._current]]
            shape, dt = self.layout[self._order[self._current]]
            if done != int(np.prod(shape, dtype=np.int64)) * dt.itemsize:
                raise ValueError(f"tensor {self._order[self._current]!r} incomplete before {name!r}")
            self._current += 1
        shape, dt = self.layout[name]
        data = np.ascontiguousarray(chunk, dtype=dt)
        if not data.nbytes:
            return
        buf = memoryview(data).cast("B")
        self._f.write(buf)
        self.hash.update(buf)
        self._written[name] += data.nbytes

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                for name, (shape, dt) in self.layout.items():
                    want = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
                    if self._written[name] != want:
                        raise ValueError(f"tensor {name!r}: wrote {self._written[name]} of {want} bytes")
                self.metadata.setdefault("content_hash", self.hash.hexdigest())
                head = self._header()
                if len(head) > self._hlen:
                    raise ValueError("metadata grew past the reserved header space")
                self._f.seek(8)
                self._f.write(head.ljust(self._hlen, b" "))
                self._f.flush()
                os.fsync(self._f.fileno())
            self._f.close()
            if exc_type is None:
                try:
                    os.replace(self._tmp, self.path)
                except FileNotFoundError:
                    raise MagtaskError(f"{self.path}: its temp file was removed while it was written "
                                       "(by `magtask codes clear`?); nothing written, run again") from None
                remember(self.path, self.hash.hexdigest())
        finally:
            if self._tmp.exists():
                self._f.close()
                self._tmp.unlink()


def writer_temp_files(directory: str | os.PathLike) -> list[tuple[Path, bool]]:
    """TensorWriter temp files (`.NAME.PID.tmp`) in `directory`, each with whether its writer still
    runs. Other `.*.tmp` files (e.g. torchrun part files) are reported as not running."""
    out = []
    for f in sorted(Path(directory).glob(".*.tmp")):
        pid = f.name[:-4].rpartition(".")[2]
        out.append((f, pid.isdigit() and alive(int(pid))))
    return out


def write_tensors(path: str | os.PathLike, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> str:
    """Write whole arrays at once (atomically); returns the content hash."""
    arrays = {k: np.asarray(v) for k, v in tensors.items()}
    layout = {k: (a.shape, a.dtype) for k, a in arrays.items()}
    with TensorWriter(path, layout, metadata) as w:
        for k, a in arrays.items():
            w.write(k, a)
    return w.metadata["content_hash"]


def read_header(path: str | os.PathLike) -> tuple[dict, int]:
    """(header dict, byte offset of the data) of a safetensors file, with one-line errors."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                raise MagtaskError(f"{path}: not a safetensors file (too short)")
            (hlen,) = struct.unpack("<Q", raw)
            if hlen > 100_000_000:
                raise MagtaskError(f"{path}: not a safetensors file (bad header length)")
            if hlen > size - 8:
                raise MagtaskError(f"{path}: truncated ({size} bytes, header alone needs {8 + hlen})")
            header = json.loads(f.read(hlen))
    except FileNotFoundError:
        raise MagtaskError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise MagtaskError(f"{path}: is a directory, not a file") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MagtaskError(f"{path}: not a safetensors file (unreadable header)") from None
    if not isinstance(header, dict):
        raise MagtaskError(f"{path}: not a safetensors file (header is not a table)")
    start = 8 + hlen
    try:
        end = _data_end(header)
    except (KeyError, TypeError, IndexError):
        raise MagtaskError(f"{path}: not a safetensors file (malformed tensor entries)") from None
    if start + end > size:
        raise MagtaskError(f"{path}: truncated ({size} bytes, header promises {start + end})")
    return header, start


def data_digest(path: str | os.PathLike) -> str:
    """SHA-256 of the file's tensor bytes (remembered per file version, see magtask.checksums): equal
    to the writer's `content_hash` for a file unchanged since TensorWriter wrote it."""
    header, start = read_header(path)
    return data_sha256(path, start, start + _data_end(header))


def _data_end(header: dict) -> int:
    return max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)


def open_tensors(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Memory-map every tensor of a safetensors file read-only: ({name: array}, metadata)."""
    header, start = read_header(path)
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    for name, info in header.items():
        dt = _NP.get(info.get("dtype"))
        if dt is None:
            raise MagtaskError(f"{path}: tensor {name!r} has unsupported dtype {info.get('dtype')}")
        a, b = info["data_offsets"]
        shape = tuple(info["shape"])
        if b - a != int(np.prod(shape, dtype=np.int64)) * dt.itemsize:
            raise MagtaskError(f"{path}: tensor {name!r} size does not match its shape")
        if b == a:
            out[name] = np.zeros(shape, dtype=dt)
        else:
            out[name] = np.memmap(path, dtype=dt, mode="r", offset=start + a, shape=shape)
    return out, meta


class FileArray:
    """A read-only array on disk, read on demand with plain file reads (no memory map).

    Indexing (an int, a slice, an array of ints, or a tuple starting with one of those) returns a
    numpy array holding just those rows, so streaming over a 30 000-video dataset keeps the
    process's memory bounded (a memory map would count every page read as resident).
    """

    def __init__(self, path: str | os.PathLike, offset: int, shape: tuple[int, ...], dtype: np.dtype):
        self.path, self.offset = Path(path), int(offset)
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.ndim = len(self.shape)
        self._row = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def _read(self, f, lo: int, hi: int) -> np.ndarray:
        out = np.empty((max(hi - lo, 0), *self.shape[1:]), self.dtype)
        if hi > lo:
            f.seek(self.offset + lo * self._row)
            f.readinto(memoryview(out).cast("B"))
        return out

    def __getitem__(self, key):
        rest = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        with open(self.path, "rb") as f:
            if isinstance(key, (int, np.integer)):
                k = int(key) + (len(self) if key < 0 else 0)
                if not 0 <= k < len(self):
                    raise IndexError(f"index {key} out of range for {len(self)} rows")
                out = self._read(f, k, k + 1)[0]
            elif isinstance(key, slice):
                lo, hi, step = key.indices(len(self))
                if step == 1:
                    out = self._read(f, lo, hi)
                else:
                    out = self._rows(f, np.arange(lo, hi, step))
            else:
                idx = np.asarray(key)
                if idx.dtype == bool:
                    idx = np.flatnonzero(idx)
                out = self._rows(f, idx.astype(np.int64) % max(len(self), 1))
        if not rest:
            return out
        return out[rest] if isinstance(key, (int, np.integer)) else out[(slice(None), *rest)]

    def _rows(self, f, idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx), *self.shape[1:]), self.dtype)
        order = np.argsort(idx, kind="stable")
        s = idx[order]
        i = 0
        while i < len(s):  # read runs of consecutive rows in one go
            j = i + 1
            while j < len(s) and s[j] == s[j - 1] + 1:
                j += 1
            out[order[i:j]] = self._read(f, int(s[i]), int(s[j - 1]) + 1)
            i = j
        return out

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __array__(self, dtype=None, copy=None):
        a = self[:]
        return a if dtype is None else a.astype(dtype)


def open_lazy(path: str | os.PathLike, name: str) -> FileArray:
    """One tensor of a safetensors file as a FileArray."""
    header, start = read_header(path)
    info = header[name]
    return FileArray(path, start + info["data_offsets"][0], tuple(info["shape"]), _NP[info["dtype"]])
