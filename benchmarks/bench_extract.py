"""Extraction throughput vs the bare batched forward pass, in one process, on the same videos.

    python benchmarks/bench_extract.py --data FILE [--tokenizer FILE] [--bare-every 8] [--json]

Runs `magtask codes extract --data FILE --force`, the real command, in this process (into
MAGTASK_CACHE_DIR). Every --bare-every-th batch (from the second on: the first pays one-off set-up),
right after the extraction has encoded it, the bare forward pass (the tokenizer's encode + quantize,
nothing else) runs again on that same batch, timed apart and not counted as extraction time. So both
throughputs are measured on the same videos at the same moments: other jobs sharing the cores slow
both alike. Also reported: the share of the extraction's own time spent in encode + quantize.
Peak RSS is this process's.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import magtask.codes as cache
import magtask.tokenizer.resolve as resolve


def timed_extract(argv: list[str], bare_every: int) -> dict:
    """Run `magtask codes extract ARGV` here; time the extraction, its forward calls and the bare passes."""
    from magtask.cli import main

    st: dict = {"extract": 0.0, "forward": 0.0, "bare": 0.0, "bare_videos": 0, "batches": 0, "videos": 0}
    open_real, extract_real = resolve.open_tokenizer, cache.extract

    def open_timed(*a, **kw):
        tok = open_real(*a, **kw)
        encode, quantize = tok.encode, tok.quantize

        def enc(x, *p, **k):
            st["batches"] += 1
            st["x"] = x
            t0 = time.perf_counter()
            try:
                return encode(x, *p, **k)
            finally:
                st["forward"] += time.perf_counter() - t0

        def qua(z, *p, **k):
            t0 = time.perf_counter()
            try:
                return quantize(z, *p, **k)
            finally:
                st["forward"] += time.perf_counter() - t0
                b, x = st["batches"], st.pop("x", None)
                if x is not None and b >= 2 and (b - 2) % bare_every == 0:
                    # the bare pass on the batch just encoded (not the first: it pays one-off set-up),
                    # after the real one, so any warm-cache advantage goes to the bare pass
                    t1 = time.perf_counter()
                    quantize(encode(x))
                    st["bare"] += time.perf_counter() - t1
                    st["bare_videos"] += len(x)

        tok.encode, tok.quantize = enc, qua
        return tok

    def extract_timed(dataset, *a, **kw):
        t0 = time.perf_counter()
        try:
            return extract_real(dataset, *a, **kw)
        finally:
            st["extract"] += time.perf_counter() - t0
            st["videos"] += len(dataset)

    resolve.open_tokenizer, cache.extract = open_timed, extract_timed
    t0 = time.perf_counter()
    try:
        main(["codes", "extract", "--force", *argv])
    except SystemExit as e:
        if e.code not in (0, None):
            raise
    finally:
        resolve.open_tokenizer, cache.extract = open_real, extract_real
    st["command"] = time.perf_counter() - t0
    return st


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--tokenizer", type=Path, default=None)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--bare-every", type=int, default=8, help="time the bare forward pass on every k-th batch")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    argv = ["--data", str(args.data), "--batch-size", str(args.batch_size)]
    argv += ["--tokenizer", str(args.tokenizer)] if args.tokenizer else []
    st = timed_extract(argv, max(1, args.bare_every))
    seconds = st["extract"] - st["bare"]  # the extraction's own time
    n = st["videos"]
    res = {"videos": n, "extract_seconds": round(seconds, 2), "command_seconds": round(st["command"] - st["bare"], 2),
           "extract_vps": n / seconds, "bare_vps": st["bare_videos"] / max(st["bare"], 1e-9),
           "bare_videos": st["bare_videos"], "forward_share": st["forward"] / seconds,
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "batch_size": args.batch_size}
    res["ratio"] = res["extract_vps"] / res["bare_vps"] if st["bare_videos"] else None  # one batch: no sample
    if args.json:
        print(json.dumps(res))
    else:
        print(f"extract {n} videos: {res['extract_vps']:.1f} videos/s; bare forward on {st['bare_videos']} of "
              f"them at the same moments {res['bare_vps']:.1f} videos/s; ratio {res['ratio']:.3f}; forward share "
              f"of the extraction {res['forward_share']:.3f}; peak RSS {res['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
