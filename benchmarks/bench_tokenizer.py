"""Measure a tokenizer: held-out reconstruction metrics and encode throughput.

    PYTHONPATH=. python benchmarks/bench_tokenizer.py [--tokenizer FILE] [--data FILE] [--split test]

Prints one JSON object: the eval metrics (as `magtask tokenizer eval --json`), plus encode
throughput (videos/s, video -> token indices, batch 64) over the whole dataset, and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from magtask.data.dataset import load_dataset
from magtask.tokenizer.evaluate import evaluate_tokenizer
from magtask.tokenizer.io import load_tokenizer, tokenizer_hash


@torch.no_grad()
def encode_throughput(model, videos, batch_size: int = 64) -> tuple[float, float]:
    torch.set_flush_denormal(True)
    model.eval()
    model.tokenize(torch.from_numpy(np.array(videos[:2])).float() / 255)  # warm-up
    t0 = time.perf_counter()
    for s in range(0, len(videos), batch_size):
        model.tokenize(torch.from_numpy(np.array(videos[s:s + batch_size])).float() / 255)
    seconds = time.perf_counter() - t0
    return len(videos) / seconds, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokenizer", default=None)
    ap.add_argument("--data", default=None)
    ap.add_argument("--split", default="test")
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    if args.data is None:
        from magtask.data.defaults import default_dataset_path

        args.data = default_dataset_path()
    model = load_tokenizer(args.tokenizer)
    ds = load_dataset(args.data)
    vps, secs = encode_throughput(model, ds.videos, args.batch_size)
    res = evaluate_tokenizer(model, ds, split=args.split)
    res.update({"encode_videos_per_second": vps, "encode_seconds_all": secs, "n_encoded": len(ds),
                "params": model.num_params(), "tokenizer": tokenizer_hash(model),
                "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "machine": platform.processor()
                or platform.machine(), "torch": torch.__version__})
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
