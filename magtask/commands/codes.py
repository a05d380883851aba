"""`magtask codes extract|info|clear`: the code cache every head reads from."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from magtask import codes as cache
from magtask.console import err, out
from magtask.errors import MagtaskError

app = typer.Typer(help="Encode datasets with a tokenizer and manage the cached codes "
                  "(MAGTASK_CACHE_DIR, default ~/.cache/magtask).", no_args_is_help=True)


@app.command()
def extract(
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset file. Default: the default dataset."),
    tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help="Tokenizer checkpoint. Default: the shipped one."),
    tokenizer_config: Optional[str] = typer.Option(None, "--tokenizer-config", help="For a magvit2-pytorch "
                                                   "checkpoint without a config: a preset (seed-2026-01) or a JSON file."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Videos per encoding batch (16 is fastest on 2 CPU cores)."),
    force: bool = typer.Option(False, "--force", help="Re-extract even if cached."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
) -> None:
    """Encode every video of a dataset and cache latents, token indices, labels and split.

    Several processes: `torchrun --nproc-per-node 2 -m magtask codes extract ...` shards the batches
    by rank and writes one merged cache, equal to the single-process one.
    """
    from magtask.data.dataset import load_dataset
    from magtask.data.defaults import default_dataset_path
    from magtask.runner import resolve_device
    from magtask.tokenizer.resolve import hash_of, open_tokenizer

    from magtask.distributed import init

    device = resolve_device(device)
    rank, _ = init(device)
    ds = load_dataset(data if data is not None else default_dataset_path())
    tok = open_tokenizer(tokenizer, tokenizer_config).to(device).eval()
    tok.latent_shape(ds.frames, ds.size)
    digest = hash_of(tok)
    path = cache.cache_path(digest, ds.hash)
    if not force and cache.open_cached(ds, digest) is not None:
        err.print(f"already cached (verified): {path}", soft_wrap=True)
        return
    t0 = time.perf_counter()
    cache.extract(ds, tok, digest, batch_size=batch_size, device=device, quiet=rank != 0)
    if rank == 0:
        err.print(f"cached {len(ds)} videos' codes in {time.perf_counter() - t0:.1f} s: {path}", soft_wrap=True)


@app.command()
def info(as_json: bool = typer.Option(False, "--json", help="Print JSON only.")) -> None:
    """List the cached code files: videos, latent shape, tokenizer and data hashes, size."""
    rows = []
    for f in cache.cached_files():
        try:
            c = cache.open_codes(f)
        except MagtaskError as e:  # listed, not fatal: the next extract or run rebuilds it
            rows.append({"path": str(f), "problem": str(e), "bytes": f.stat().st_size})
            continue
        rows.append({"path": str(f), "n": len(c.labels), "latent_shape": list(c.latents.shape[1:]),
                     "codebook_size": int(c.meta.get("codebook_size", 0)), "tokenizer_hash": c.meta["tokenizer_hash"],
                     "data_hash": c.meta["data_hash"], "data_path": c.meta.get("data_path"),
                     "bytes": f.stat().st_size})
    if as_json:
        print(json.dumps({"cache_dir": str(cache.codes_dir()), "files": rows}, indent=2))
        return
    t = Table(title=f"code cache: {cache.codes_dir()}")
    for col in ("file", "videos", "latents", "tokenizer", "data", "MB"):
        t.add_column(col)
    for r in rows:
        if "problem" in r:
            t.add_row(Path(r["path"]).name, "", "", "", f"[red]{r['problem']}[/red]", f"{r['bytes'] / 1e6:.1f}")
            continue
        t.add_row(Path(r["path"]).name, str(r["n"]), "x".join(map(str, r["latent_shape"])), r["tokenizer_hash"][:12],
                  f"{r['data_hash'][:12]} ({r['data_path']})", f"{r['bytes'] / 1e6:.1f}")
    out.print(t)


@app.command()
def clear() -> None:
    """Delete every cached code file (a running extraction is not disturbed)."""
    n = cache.clear()
    err.print(f"removed {n} file(s) from {cache.codes_dir()}")
