"""Extraction throughput vs the bare batched forward pass, in one process, on the same videos.

    python benchmarks/bench_extract.py --data FILE [--tokenizer FILE] [--bare-videos 256] [--json]

1. bare forward: the tokenizer's encode + quantize on batches of the dataset's first --bare-videos
   videos (read and converted to float beforehand, untimed), before and after step 2;
2. `magtask codes extract --data FILE --force`, the real command, run in this process (into
   MAGTASK_CACHE_DIR): its wall time, and how much of it its batches spent in encode + quantize.
Reports videos/s of both, extraction / bare (the issue's target: >= 0.90) and, since the machine
may be shared, the same ratio from inside the extraction (forward seconds / extraction seconds),
which contention cannot skew. Peak RSS is this process's at the end of the extraction.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch

import magtask.tokenizer.resolve as resolve
from magtask.data.dataset import load_dataset


def bare_forward(tok, videos_u8: np.ndarray, batch_size: int) -> float:
    """Videos/s of encode + quantize alone (batches converted before the clock starts)."""
    seconds = 0.0
    with torch.inference_mode():
        for lo in range(0, len(videos_u8), batch_size):
            x = torch.from_numpy(videos_u8[lo:lo + batch_size]).float().div_(255.0)
            t0 = time.perf_counter()
            tok.quantize(tok.encode(x))
            seconds += time.perf_counter() - t0
    return len(videos_u8) / max(seconds, 1e-9)


def timed_extract(args) -> dict:
    """Run `magtask codes extract` in this process, timing the tokenizer's calls inside it."""
    from magtask.cli import main

    inside = {"seconds": 0.0}
    open_real = resolve.open_tokenizer

    def open_timed(*a, **kw):
        tok = open_real(*a, **kw)
        for name in ("encode", "quantize"):
            fn = getattr(tok, name)

            def timed(*x, _fn=fn, **k):
                t0 = time.perf_counter()
                try:
                    return _fn(*x, **k)
                finally:
                    inside["seconds"] += time.perf_counter() - t0
            setattr(tok, name, timed)
        return tok

    resolve.open_tokenizer = open_timed
    argv = ["codes", "extract", "--data", str(args.data), "--force", "--batch-size", str(args.batch_size)]
    argv += ["--tokenizer", str(args.tokenizer)] if args.tokenizer else []
    t0 = time.perf_counter()
    try:
        main(argv)
    except SystemExit as e:
        if e.code not in (0, None):
            raise
    finally:
        resolve.open_tokenizer = open_real
    return {"seconds": time.perf_counter() - t0, "forward_seconds": inside["seconds"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--tokenizer", type=Path, default=None)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--bare-videos", type=int, default=256)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    torch.set_flush_denormal(True)  # as extraction does
    ds = load_dataset(args.data)
    tok = resolve.open_tokenizer(args.tokenizer).eval()
    sample = np.asarray(ds.videos[:min(args.bare_videos, len(ds))])
    before = bare_forward(tok, sample, args.batch_size)
    ext = timed_extract(args)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    after = bare_forward(tok, sample, args.batch_size)
    n = len(ds)
    res = {"videos": n, "extract_seconds": round(ext["seconds"], 2), "extract_vps": n / ext["seconds"],
           "bare_vps_before": before, "bare_vps_after": after, "bare_videos": len(sample),
           "ratio": n / ext["seconds"] / ((before + after) / 2),
           "forward_share": ext["forward_seconds"] / ext["seconds"], "peak_rss_mb": round(rss_mb, 1),
           "batch_size": args.batch_size}
    if args.json:
        print(json.dumps(res))
    else:
        print(f"extract {n} videos: {res['extract_vps']:.1f} videos/s; bare forward {before:.1f} / {after:.1f} "
              f"videos/s (before / after); ratio {res['ratio']:.3f}; forward share inside the extraction "
              f"{res['forward_share']:.3f}; peak RSS {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
