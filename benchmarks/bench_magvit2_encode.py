"""Encode speed: magtask's magvit2 implementation against the real magvit2-pytorch, same checkpoint, same videos.

    python3 -m venv /tmp/m2venv && /tmp/m2venv/bin/pip install magvit2-pytorch==0.5.1 torch==2.13.0
    python benchmarks/bench_magvit2_encode.py --package-python /tmp/m2venv/bin/python

The package lives only in that scratch venv (magtask never depends on it). Both sides load the same
checkpoint (default: the seed-preset fixture, FSQ 8,5,5,5, a 64x64 latent grid) and tokenize the same
videos (the first --videos of a generated dataset, --frames frames), in turn, each in a fresh process
with --threads threads, --rounds times alternating; each process times --repeats calls of
tokenize(batch) after one warm-up call and reports the median wall and CPU (process) seconds: on a
machine shared with other jobs the wall clock swings with the load, the CPU time much less, so both
ratios are printed. The token indices of the two sides are compared (they must agree: the same
computation). Prints a markdown row and, with --json, the raw numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "magvit2" / "seed_handwritten.pt"

# The end of both child scripts: `model` tokenizes `video` once to warm up, then `repeats` timed times.
TIMED_TOKENIZE = r"""
times, cpu = [], []
with torch.no_grad():
    idx = model.tokenize(video)
    for _ in range(args["repeats"]):
        t0, c0 = time.perf_counter(), time.process_time(); idx = model.tokenize(video)
        times.append(time.perf_counter() - t0); cpu.append(time.process_time() - c0)
torch.save(idx, args["out"])
print(json.dumps({"median_s": statistics.median(times), "median_cpu_s": statistics.median(cpu), "times": times}))
"""

# Run in the scratch venv: the real package's VideoTokenizer with the seed preset's arguments, the
# checkpoint's weights, tokenize() timed. (torchvision's compiled ops do not load beside CPU torch;
# only its pure-Python parts are needed, so its fake-kernel registrations are skipped.)
PACKAGE_SIDE = r"""
import json, statistics, sys, time, types
sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
import torch
from safetensors.torch import load_file
from magvit2_pytorch import VideoTokenizer
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
kwargs = {**args["kwargs"], "layers": tuple(args["kwargs"]["layers"])}  # beartype wants a tuple
model = VideoTokenizer(perceptual_loss_weight=0, **kwargs)
ckpt = torch.load(args["checkpoint"], map_location="cpu", weights_only=True)
state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["model_state_dict"].items()}
missing, unexpected = model.load_state_dict(state, strict=False)
assert not [k for k in missing if not k.startswith(("discr", "multiscale_discrs", "vgg"))], missing
model.eval()
video = load_file(args["videos"])["videos"].float().div(255).permute(0, 2, 1, 3, 4).contiguous()  # (B, 3, T, H, W)
""" + TIMED_TOKENIZE

OURS_SIDE = r"""
import json, statistics, sys, time
import torch
from safetensors.torch import load_file
from magtask.tokenizer.magvit2_load import load_magvit2
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
model = load_magvit2(args["checkpoint"], args["config"]).eval()
video = load_file(args["videos"])["videos"].float().div(255)  # (B, T, 3, H, W)
""" + TIMED_TOKENIZE

SEED_KWARGS = {"image_size": 64, "init_dim": 64, "layers": ["residual", "residual"], "use_fsq": True,
               "fsq_levels": [8, 5, 5, 5]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--package-python", required=True, help="python of the scratch venv with magvit2-pytorch")
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    import numpy as np
    import torch
    from safetensors.numpy import save_file

    from magtask.data.dataset import load_dataset
    from magtask.data.generate import generate_dataset

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        generate_dataset(tmp / "d.safetensors", per_class=max(1, -(-args.videos // 4)), seed=0, frames=args.frames)
        vids = np.ascontiguousarray(load_dataset(tmp / "d.safetensors").videos[:args.videos])
        save_file({"videos": vids}, str(tmp / "videos.safetensors"))
        common = {"checkpoint": str(FIXTURE), "videos": str(tmp / "videos.safetensors"), "threads": args.threads,
                  "repeats": args.repeats}
        sides = {"magvit2-pytorch 0.5.1": ([args.package_python, "-c", PACKAGE_SIDE],
                                           {**common, "kwargs": SEED_KWARGS}),
                 "magtask": ([sys.executable, "-c", OURS_SIDE], {**common, "config": "seed-2026-01"})}
        res = {name: [] for name in sides}
        cpu = {name: [] for name in sides}
        for r in range(args.rounds):
            for name, (cmd, a) in sides.items():
                out = tmp / f"{name.split()[0]}-{r}.pt"
                proc = subprocess.run([*cmd, json.dumps({**a, "out": str(out)})], capture_output=True, text=True,
                                      cwd=tmp)
                if proc.returncode:
                    sys.exit(f"{name}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
                r_ = json.loads(proc.stdout.strip().splitlines()[-1])
                res[name].append(r_["median_s"])
                cpu[name].append(r_["median_cpu_s"])
        ours = torch.load(tmp / "magtask-0.pt", weights_only=True)
        theirs = torch.load(tmp / "magvit2-pytorch-0.pt", weights_only=True)
        agree = float((ours.long() == theirs.long()).float().mean())
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    pkg, mine = statistics.median(res["magvit2-pytorch 0.5.1"]), statistics.median(res["magtask"])
    pkg_cpu, mine_cpu = statistics.median(cpu["magvit2-pytorch 0.5.1"]), statistics.median(cpu["magtask"])
    summary = {"videos": args.videos, "frames": args.frames, "threads": args.threads, "rounds": res,
               "cpu_rounds": cpu, "package_s": pkg, "magtask_s": mine, "speedup": pkg / mine,
               "package_cpu_s": pkg_cpu, "magtask_cpu_s": mine_cpu, "cpu_speedup": pkg_cpu / mine_cpu,
               "indices_agree": agree,
               "loadavg": load, "latent_shape": list(ours.shape[1:])}
    print(f"| {args.videos} videos x {args.frames} frames, 64x64 -> latents {'x'.join(map(str, ours.shape[1:]))} "
          f"| {pkg:.2f} s ({args.videos / pkg:.2f} videos/s) | {mine:.2f} s ({args.videos / mine:.2f} videos/s) "
          f"| **{pkg / mine:.2f}x** | {pkg_cpu:.2f} / {mine_cpu:.2f} CPU s: **{pkg_cpu / mine_cpu:.2f}x** | {agree:.4f} "
          f"| {args.threads} | {' '.join(load)} |")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
