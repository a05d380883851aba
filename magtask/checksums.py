"""SHA-256 of a safetensors file's tensor bytes, streamed once and remembered per file version.

`data_sha256(path)` hashes the bytes after the header (every tensor, in file order): for a file
written by TensorWriter that equals the `content_hash` the writer put in the metadata, so a file
changed after it was written no longer matches. Hashing streams 8 MB at a time (bounded memory for a
6 GB dataset) and the result is remembered under MAGTASK_CACHE_DIR/checksums keyed by the file's
(device, inode, size, mtime_ns, ctime_ns): re-opening an unchanged file costs a stat and a small
JSON read; any write to the file (or a copy, a move, a `touch`) changes the key and it is hashed again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from magtask.paths import cache_dir

CHUNK = 8 << 20


def _key(st: os.stat_result) -> list[int]:
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _memo_path(path: Path) -> Path:
    name = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    return cache_dir() / "checksums" / f"{name}.json"


def recall(path: str | os.PathLike) -> str | None:
    """The remembered digest of this exact version of the file, or None."""
    path = Path(path)
    try:
        memo = json.loads(_memo_path(path).read_text())
        return memo["sha256"] if memo.get("key") == _key(path.stat()) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remember(path: str | os.PathLike, digest: str) -> None:
    """Record `digest` for the file's current version (atomically; best effort: a read-only cache
    dir only costs a re-hash next time)."""
    path = Path(path)
    memo = _memo_path(path)
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_name(f".{memo.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"path": str(path.resolve()), "key": _key(path.stat()), "sha256": digest}))
        os.replace(tmp, memo)
    except OSError:
        pass


def forget(path: str | os.PathLike) -> None:
    try:
        _memo_path(Path(path)).unlink()
    except OSError:
        pass


def stream_sha256(path: str | os.PathLike, start: int, end: int) -> str:
    """SHA-256 of bytes [start, end) of the file, read CHUNK bytes at a time."""
    h = hashlib.sha256()
    buf = memoryview(bytearray(CHUNK))
    with open(path, "rb") as f:
        f.seek(start)
        left = end - start
        while left > 0:
            n = f.readinto(buf[:min(CHUNK, left)])
            if not n:
                break
            h.update(buf[:n])
            left -= n
    return h.hexdigest()


def data_sha256(path: str | os.PathLike, start: int, end: int) -> str:
    """stream_sha256 of the tensor bytes, remembered for this version of the file."""
    digest = recall(path)
    if digest is None:
        digest = stream_sha256(path, start, end)
        remember(path, digest)
    return digest
