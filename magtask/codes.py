"""Code extraction and the safetensors code cache. Every head reads codes only through here.

A cache file holds, for one (tokenizer, dataset) pair:
  latents  (N, C, t, h, w) float32  quantized latents (on the FSQ grid): what "latents" heads eat
  indices  (N, t, h, w)    int32    token indices: what "indices" heads eat
  labels   (N,) int64, split (N,) uint8   copied from the dataset
Its name is a hash of the tokenizer (weights + config) and of the dataset's content, so a changed
tokenizer or dataset never serves stale codes. Files are written atomically and memory-mapped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from magtask.console import progress_bar
from magtask.errors import MagtaskError
from magtask.paths import cache_dir
from magtask.tensorfile import TensorWriter, open_tensors


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


def extract(dataset, tokenizer, tokenizer_hash: str, batch_size: int = 64, device: str = "cpu",
            quiet: bool = False) -> Path:
    """Encode every video of `dataset` in batches and write the cache file; returns its path."""
    c, t, h, w = tokenizer.latent_shape(dataset.frames, dataset.size)
    n = len(dataset)
    path = cache_path(tokenizer_hash, dataset.hash)
    meta = {"format": "magtask-codes", "tokenizer_hash": tokenizer_hash, "data_hash": dataset.hash,
            "data_path": str(dataset.path), "codebook_size": str(tokenizer.codebook_size),
            "latent_shape": f"{c},{t},{h},{w}", "n": str(n)}
    layout = {"labels": ((n,), np.int64), "split": ((n,), np.uint8),
              "latents": ((n, c, t, h, w), np.float32), "indices": ((n, t, h, w), np.int32)}
    t0 = time.perf_counter()
    tokenizer.eval()
    with TensorWriter(path, layout, meta) as writer:
        writer.write("labels", dataset.labels)
        writer.write("split", dataset.split)
        idx_parts = []
        with torch.inference_mode(), progress_bar("encoding", n, disable=quiet) as tick:
            for lo in range(0, n, batch_size):
                codes, idx = encode_batch(tokenizer, dataset.videos[lo:lo + batch_size], device)
                writer.write("latents", codes.cpu().numpy())
                idx_parts.append(idx.to(torch.int32).cpu().numpy())
                tick(len(codes))
        writer.write("indices", np.concatenate(idx_parts) if idx_parts else np.zeros((0, t, h, w), np.int32))
        writer.metadata["seconds"] = f"{time.perf_counter() - t0:.3f}"
    return path


def open_codes(path: Path) -> Codes:
    tensors, meta = open_tensors(path)
    if meta.get("format") != "magtask-codes":
        raise MagtaskError(f"{path}: not a magtask code cache")
    return Codes(latents=tensors["latents"], indices=tensors["indices"], labels=np.asarray(tensors["labels"]),
                 split=np.asarray(tensors["split"]), path=path, meta=meta)


def load_codes(dataset, tokenizer, tokenizer_hash: str, batch_size: int = 64, device: str = "cpu",
               quiet: bool = False) -> Codes:
    """The cached codes of (tokenizer, dataset), extracting them first if they are not cached."""
    path = cache_path(tokenizer_hash, dataset.hash)
    if not path.exists():
        extract(dataset, tokenizer, tokenizer_hash, batch_size=batch_size, device=device, quiet=quiet)
    return open_codes(path)


def cached_files() -> list[Path]:
    d = codes_dir()
    return sorted(d.glob("tok-*_data-*.safetensors")) if d.exists() else []


def clear() -> int:
    """Delete every cached code file (and stray temp files); returns how many files were removed."""
    d = codes_dir()
    if not d.exists():
        return 0
    files = cached_files() + sorted(d.glob(".*.tmp"))
    for f in files:
        f.unlink()
    return len(files)
