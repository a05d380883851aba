"""Code extraction and the safetensors code cache. Every head reads codes only through here.

A cache file holds, for one (tokenizer, dataset) pair:
  latents  (N, C, t, h, w) float32  quantized latents (on the FSQ grid): what "latents" heads eat
  indices  (N, t, h, w)    int32    token indices: what "indices" heads eat
  labels   (N,) int64, split (N,) uint8   copied from the dataset
Its name is a hash of the tokenizer (weights + config) and of the dataset's content, so a changed
tokenizer or dataset never serves stale codes. Files are written atomically and memory-mapped.

A cache verifies itself on open: its structure (tensors, dtypes, shapes, labels and split equal to
the dataset's) every time, and the SHA-256 of its tensor bytes against the `content_hash` written
with it, hashed once per file version (magtask.checksums), so re-opening costs ~1 ms. A bad,
truncated or stale file is reported in one line and rebuilt, never used. `clear` leaves the temp
files of a running extraction alone; temp files of killed extractions go at the next extract.
"""

from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from magtask import checksums
from magtask.console import err, progress_bar
from magtask.errors import MagtaskError
from magtask.loop import flush_denormals
from magtask.paths import cache_dir
from magtask.tensorfile import TensorWriter, data_digest, open_lazy, open_tensors, writer_temp_files


# Encoding throughput of the shipped tokenizer on 2 CPU cores by batch size (videos/s, measured):
# 8: 72, 16: 76, 32: 48, 64: 43 -- small batches stay in cache.
ENCODE_BATCH = 16
TRIM_EVERY = 8  # batches between heap trims (one trim costs ~8 ms, a batch ~200 ms)


def _libc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim if sys.platform.startswith("linux") else None
    except (OSError, AttributeError):  # not glibc
        return None


_malloc_trim = _libc_trim()


def trim_heap() -> None:
    """Give freed heap memory back to the OS. glibc keeps what the encoder's large, short-lived
    buffers free in its per-thread arenas: without this, extraction's RSS grew ~10 MB per batch
    (1.5 GB after 2 000 videos, without bound); with it, it stays flat (~250 MB)."""
    if _malloc_trim is not None:
        _malloc_trim(0)


@dataclass
class Codes:
    latents: np.ndarray  # (N, C, t, h, w) float32, memory-mapped
    indices: np.ndarray  # (N, t, h, w) int32, memory-mapped
    labels: np.ndarray
    split: np.ndarray
    path: Path
    meta: dict

    def subset(self, split: int) -> np.ndarray:
        return np.flatnonzero(self.split == split)


def codes_dir() -> Path:
    return cache_dir() / "codes"


def cache_path(tokenizer_hash: str, data_hash: str) -> Path:
    return codes_dir() / f"tok-{tokenizer_hash[:16]}_data-{data_hash[:16]}.safetensors"


def encode_batch(tokenizer, videos_u8: np.ndarray, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (B, T, 3, H, W) -> (quantized latents (B, C, t, h, w) float32, indices (B, t, h, w))."""
    x = torch.from_numpy(np.array(videos_u8, dtype=np.uint8)).to(device).float().div_(255.0)
    return tokenizer.quantize(tokenizer.encode(x))


def extract(dataset, tokenizer, tokenizer_hash: str, batch_size: int = ENCODE_BATCH, device: str = "cpu",
            quiet: bool = False) -> Path:
    """Encode every video of `dataset` in batches and write the cache file; returns its path.

    Under torchrun with several processes, batch b is encoded by rank b % world_size into a part
    file; rank 0 then merges the parts in batch order. Every batch holds the same videos as in a
    single process, so the merged cache equals the single-process one.
    """
    from magtask.distributed import barrier, world

    c, t, h, w = tokenizer.latent_shape(dataset.frames, dataset.size)
    n = len(dataset)
    rank, size = world()
    path = cache_path(tokenizer_hash, dataset.hash)
    meta = {"format": "magtask-codes", "tokenizer_hash": tokenizer_hash, "data_hash": dataset.hash,
            "data_path": str(dataset.path), "codebook_size": str(tokenizer.codebook_size),
            "latent_shape": f"{c},{t},{h},{w}", "n": str(n), "batch_size": str(batch_size)}
    layout = {"labels": ((n,), np.int64), "split": ((n,), np.uint8),
              "latents": ((n, c, t, h, w), np.float32), "indices": ((n, t, h, w), np.int32)}
    tokenizer.eval()
    flush_denormals()  # this thread at least (the CLI has set it for every thread)
    starts = list(range(0, n, batch_size))
    mine = starts[rank::size]
    if rank == 0:
        remove_stale_temp_files()

    def batches():
        total = sum(min(batch_size, n - lo) for lo in mine)
        with torch.inference_mode(), progress_bar("encoding", total, disable=quiet) as tick:
            for b, lo in enumerate(mine):
                codes, idx = encode_batch(tokenizer, dataset.videos[lo:lo + batch_size], device)
                tick(len(codes))
                if b % TRIM_EVERY == TRIM_EVERY - 1:
                    trim_heap()
                yield codes.cpu().numpy(), idx.to(torch.int32).cpu().numpy()

    if size == 1:
        with TensorWriter(path, layout, meta) as writer:
            writer.write("labels", dataset.labels)
            writer.write("split", dataset.split)
            _write_codes(writer, batches(), (t, h, w))
        return path

    part = lambda r: path.with_name(f".{path.name}.part{r}.tmp")  # noqa: E731
    k = sum(min(batch_size, n - lo) for lo in mine)
    with TensorWriter(part(rank), {"latents": ((k, c, t, h, w), np.float32), "indices": ((k, t, h, w), np.int32)}) as pw:
        _write_codes(pw, batches(), (t, h, w))
    barrier()
    if rank == 0:
        parts = [{key: open_lazy(part(r), key) for key in ("latents", "indices")} for r in range(size)]
        with TensorWriter(path, layout, meta) as writer:
            writer.write("labels", dataset.labels)
            writer.write("split", dataset.split)
            for key in ("latents", "indices"):
                offsets = [0] * size
                for b, lo in enumerate(starts):
                    r, k = b % size, min(batch_size, n - lo)
                    writer.write(key, parts[r][key][offsets[r]:offsets[r] + k])
                    offsets[r] += k
        del parts
        for r in range(size):
            part(r).unlink()
    barrier()
    return path


def _write_codes(writer: TensorWriter, batches, idx_shape: tuple) -> None:
    """Stream every batch's latents into `writer`, then its indices (kept meanwhile: 8 KB a video)."""
    idx_parts = []
    for codes, idx in batches:
        writer.write("latents", codes)
        idx_parts.append(idx)
    for idx in idx_parts or [np.zeros((0, *idx_shape), np.int32)]:
        writer.write("indices", idx)


_TENSORS = {"latents": (np.float32, 5), "indices": (np.int32, 4), "labels": (np.int64, 1), "split": (np.uint8, 1)}


def open_codes(path: Path, dataset=None) -> Codes:
    """Open a cache file memory-mapped, verified (see the module doc); with `dataset`, also check that it
    holds that dataset's codes. Any problem: a one-line MagtaskError."""
    tensors, meta = open_tensors(path)
    if meta.get("format") != "magtask-codes":
        raise MagtaskError(f"{path}: not a magtask code cache")
    n = len(tensors["labels"]) if "labels" in tensors else -1
    for name, (dt, ndim) in _TENSORS.items():
        a = tensors.get(name)
        if a is None or a.dtype != dt or a.ndim != ndim or len(a) != n:
            raise MagtaskError(f"{path}: malformed code cache (tensor {name!r})")
    if list(tensors["latents"].shape[1:]) != [int(v) for v in meta.get("latent_shape", "").split(",") if v] \
            or tensors["indices"].shape[1:] != tensors["latents"].shape[2:]:
        raise MagtaskError(f"{path}: malformed code cache (latent shapes disagree)")
    if data_digest(path) != meta.get("content_hash"):
        raise MagtaskError(f"{path}: corrupt code cache (checksum mismatch)")
    labels, split = np.asarray(tensors["labels"]), np.asarray(tensors["split"])
    if dataset is not None and not (np.array_equal(labels, dataset.labels) and np.array_equal(split, dataset.split)):
        raise MagtaskError(f"{path}: stale code cache (labels or split differ from {dataset.path})")
    return Codes(latents=tensors["latents"], indices=tensors["indices"], labels=labels, split=split, path=path,
                 meta=meta)


def open_cached(dataset, tokenizer_hash: str) -> Codes | None:
    """The verified cache of (tokenizer, dataset), or None if there is none or it is bad (said in one
    line on stderr, and removed, so it is rebuilt)."""
    path = cache_path(tokenizer_hash, dataset.hash)
    if not path.exists():
        return None
    try:
        return open_codes(path, dataset)
    except MagtaskError as e:
        err.print(f"[yellow]rebuilding the code cache:[/yellow] {e}", soft_wrap=True, highlight=False)
        path.unlink(missing_ok=True)
        checksums.forget(path)
        return None


def load_codes(dataset, tokenizer, tokenizer_hash: str, batch_size: int = ENCODE_BATCH, device: str = "cpu",
               quiet: bool = False) -> Codes:
    """The cached codes of (tokenizer, dataset), extracting them first if they are not cached or bad."""
    codes = open_cached(dataset, tokenizer_hash)
    if codes is None:
        path = extract(dataset, tokenizer, tokenizer_hash, batch_size=batch_size, device=device, quiet=quiet)
        codes = open_codes(path, dataset)
    return codes


def remove_stale_temp_files() -> int:
    """Remove the temp files of extractions whose process is gone; returns how many."""
    stale = [f for f, running in writer_temp_files(codes_dir()) if not running] if codes_dir().exists() else []
    for f in stale:
        f.unlink(missing_ok=True)
    return len(stale)


def cached_files() -> list[Path]:
    d = codes_dir()
    return sorted(d.glob("tok-*_data-*.safetensors")) if d.exists() else []


def clear() -> int:
    """Delete every cached code file and the temp files of killed extractions (a running extraction's
    temp file is left alone: it finishes normally); returns how many files were removed."""
    if not codes_dir().exists():
        return 0
    files = cached_files()
    for f in files:
        f.unlink(missing_ok=True)
        checksums.forget(f)
    return len(files) + remove_stale_temp_files()
