"""Write a shipped tokenizer's card: its training card plus held-out evaluations on named test sets.

    python benchmarks/tokenizer_card.py --tokenizer out/v3.safetensors --name magtask-tokenizer-v3 \
        --eval default=data/seed0.safetensors --eval bright=data/bright3.safetensors ... \
        --data-command "magtask data generate ..." --held-out bright --held-out mist \
        --out checkpoints/magtask-tokenizer-v3.json

Each --eval NAME=FILE is `magtask tokenizer eval --data FILE --split test --json` (recorded as such
under eval_commands). --held-out NAME marks an eval set whose look the training data never drew
(its description is styles.HELD_OUT's). --extra FILE merges a JSON object of further
fields (timings measured elsewhere). The JSON is written atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from magtask.data.dataset import load_dataset
from magtask.data.styles import HELD_OUT
from magtask.tokenizer.evaluate import evaluate_tokenizer
from magtask.tokenizer.io import load_tokenizer, tokenizer_hash
from magtask.tensorfile import read_header

def training_card(path: str) -> dict:
    header, _ = read_header(path)
    return json.loads((header.get("__metadata__") or {}).get("card", "{}"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--eval", action="append", default=[], metavar="NAME=FILE")
    ap.add_argument("--held-out", action="append", default=[], choices=sorted(HELD_OUT))
    ap.add_argument("--data-command", action="append", default=[])
    ap.add_argument("--extra", default=None, help="JSON file of further fields to merge in")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    model = load_tokenizer(args.tokenizer)
    card = {"format": "magtask-tokenizer-card", "name": args.name, **training_card(args.tokenizer),
            "tokenizer_hash": tokenizer_hash(model), "data_commands": args.data_command,
            "eval_commands": [], "held_out_looks": {}}
    for spec in args.eval:
        name, _, path = spec.partition("=")
        t0 = time.perf_counter()
        res = evaluate_tokenizer(model, load_dataset(path), split="test")
        res["eval_seconds"] = time.perf_counter() - t0
        card[f"eval_{name}"] = res
        card["eval_commands"].append(f"magtask tokenizer eval --data {path} --split test --json")
        print(f"{name}: psnr {res['psnr']:.2f} dB (blank {res['blank_psnr']:.2f}), centre error "
              f"{res['centre_error_px']:.3f} px, one dot {res['one_dot_fraction']:.4f}", flush=True)
    for name in args.held_out:
        card["held_out_looks"][name] = HELD_OUT[name]
    if args.extra:
        card.update(json.loads(Path(args.extra).read_text()))
    tmp = Path(args.out).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card, indent=1, sort_keys=True, default=str) + "\n")
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
