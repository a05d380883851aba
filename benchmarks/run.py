"""One command for the benchmark table: data generation, tokenizer training, extraction vs the bare
forward pass, code-cache load, each head's train time and score, and the peak RSS of every step.

    python benchmarks/run.py                                       # 500 videos per class, every head
    python benchmarks/run.py --per-class 7500 --heads classify:mlp # 30 000 videos (about 6 GB of data)
    python benchmarks/run.py --quick --readme /tmp/README.md       # a smoke test: tiny sizes

Each step runs in a fresh process, as a user runs it; its peak RSS comes from the kernel (wait4).
Data and code caches go to a temporary work dir, deleted at the end (--keep keeps it). The table is
written into benchmarks/README.md (or --readme) between `<!-- run.py:per-class-N:begin -->` and
`<!-- run.py:per-class-N:end -->`, so runs of other sizes keep their own tables, with the machine
it ran on (CPU, cores, torch, date, load average: the cores may be shared with other jobs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable
RSS_TARGET_MB = 2048  # issue 9: generate, extract and classify 30 000 videos in <= 2 GB

TRAIN_SNIPPET = """
import json, sys
from magtask.tokenizer.io import load_tokenizer
from magtask.tokenizer.train import train_tokenizer
card = load_tokenizer(None).card  # the shipped tokenizer: its config and training options
opts = {**card["options"], "eval_videos": 0}  # no held-out evaluation inside the timed loop
_, c = train_tokenizer(sys.argv[1], None, steps=int(sys.argv[2]), config=card["config"], options=opts, progress=False)
print(json.dumps({"seconds": c["seconds"], "steps": c["steps_done"], "batch_size": opts["batch_size"]}))
"""

LOAD_SNIPPET = """
import json, sys, time
from magtask.codes import open_codes
from magtask.tensorfile import open_lazy
t0 = time.perf_counter(); c = open_codes(sys.argv[1]); t1 = time.perf_counter()
lat = open_lazy(c.path, "latents")[:]; idx = open_lazy(c.path, "indices")[:]  # as heads read them (RunContext.inputs)
t2 = time.perf_counter()
print(json.dumps({"open_s": t1 - t0, "read_s": t2 - t1, "mb": (lat.nbytes + idx.nbytes) / 1e6, "n": len(lat)}))
"""


class StepFailed(Exception):
    pass


def measure(cmd: list, env: dict) -> dict:
    """Run cmd; its wall seconds, peak RSS (MB, from wait4) and output. Raises StepFailed on failure."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([str(c) for c in cmd], stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t0
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        tail = [line for line in stderr.strip().splitlines() if line.strip()][-1:] or ["(no output)"]
        raise StepFailed(f"{' '.join(map(str, cmd[:6]))} ... exited {proc.returncode}: {tail[0]}")
    rss = usage.ru_maxrss / (1024 if sys.platform != "darwin" else 1024 * 1024)
    return {"seconds": seconds, "rss_mb": rss, "stdout": stdout, "stderr": stderr}


def last_json(text: str) -> dict:
    return json.loads([line for line in text.strip().splitlines() if line.startswith("{")][-1])


def machine() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu, "torch": torch.__version__,
            "python": platform.python_version(), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load_start": os.getloadavg()[0]}


def pick_heads(env: dict, wanted: str | None) -> list[tuple[str, str]]:
    heads = json.loads(measure([PY, "-m", "magtask", "list-heads", "--json"], env)["stdout"])
    if not wanted or wanted == "all":
        return [(h["task"], h["name"]) for h in heads]
    out = []
    for item in wanted.split(","):
        task, _, name = item.strip().partition(":")
        match = [h for h in heads if h["task"] == task and (name == h["name"] or name in h["aliases"])]
        if not match:
            raise StepFailed(f"--heads: no head {item!r} (see `magtask list-heads`)")
        out.append((task, match[0]["name"]))
    return out


def score(task: str, m: dict) -> str:
    f = lambda v, spec: "n/a" if v is None else format(v, spec)  # noqa: E731
    if task == "classify":
        return f"accuracy {f(m['accuracy'], '.4f')} (chance {f(m['chance'], '.2f')})"
    if task == "generate":
        return (f"valid {f(m['valid_fraction'], '.3f')}, class match {f(m.get('class_match'), '.3f')}, "
                f"diversity {f(m['diversity_ratio'], '.2f')}")
    if task == "predict":
        return (f"mse {f(m['mse'], '.5f')} (copy-last {f(m['copy_last_mse'], '.5f')}), "
                f"centre error {f(m['centroid_error_px'], '.1f')} px")
    nums = [f"{k} {v:.4g}" for k, v in m.items() if isinstance(v, float) and k != "seconds"]
    return ", ".join(nums[:3])


def met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def run_steps(args, work: Path, env: dict) -> list[dict]:
    rows, heads = [], pick_heads(env, args.heads)  # a bad --heads fails before the long steps
    n = 4 * args.per_class
    data = work / "data.safetensors"

    r = measure([PY, "-m", "magtask", "data", "generate", "--out", data, "--per-class", args.per_class,
                 "--seed", "0"], env)
    target = f"RSS <= 2 GB {met(r['rss_mb'] <= RSS_TARGET_MB)}"
    if n == 30000:
        target = f"<= 60 s {met(r['seconds'] <= 60)}; " + target
    rows.append({"step": "data generate", "command": f"magtask data generate --per-class {args.per_class} --seed 0",
                 **r, "throughput": f"{n / r['seconds']:.0f} videos/s",
                 "result": f"{n} videos, {data.stat().st_size / 1e9:.2f} GB", "target": target})

    r = measure([PY, "-c", TRAIN_SNIPPET, data, args.train_steps], env)
    t = last_json(r["stdout"])
    rows.append({"step": "tokenizer train", "command": f"shipped config, {t['steps']} steps of {t['batch_size']} "
                 "clips (train_tokenizer)", **r, "throughput": f"{t['steps'] / t['seconds']:.2f} steps/s",
                 "result": f"{t['seconds']:.1f} s in the training loop", "target": ""})

    r = measure([PY, HERE / "bench_extract.py", "--data", data, "--json", "--bare-every", args.bare_every], env)
    e = last_json(r["stdout"])
    ratio = "n/a (one batch)" if e["ratio"] is None else f"{e['ratio']:.3f}"
    rows.append({"step": "codes extract", "command": "magtask codes extract (bench_extract.py)", **r,
                 "throughput": f"{e['extract_vps']:.1f} videos/s; bare forward {e['bare_vps']:.1f} videos/s "
                 f"(on {e['bare_videos']} of the same videos, at the same moments)",
                 "result": f"extraction / bare forward **{ratio}**; encode + quantize share of the "
                 f"extraction {e['forward_share']:.3f}", "extract": e,
                 "target": f">= 0.90 {met((e['ratio'] or 0) >= 0.9)}; RSS <= 2 GB {met(r['rss_mb'] <= RSS_TARGET_MB)}"})

    [cache] = list((work / "cache" / "codes").glob("*.safetensors"))
    r = measure([PY, "-c", LOAD_SNIPPET, cache], env)
    c = last_json(r["stdout"])
    rows.append({"step": "code cache load", "command": "open_codes + read every latent and index into memory", **r,
                 "throughput": f"{c['mb'] / c['read_s']:.0f} MB/s",
                 "result": f"open {c['open_s'] * 1e3:.1f} ms, read all {c['mb']:.0f} MB in {c['read_s']:.2f} s",
                 "target": ""})

    for task, head in heads:
        cmd = [PY, "-m", "magtask", "run", task, head, "--data", data, "--run-dir", work / "runs" / f"{task}-{head}",
               "--json", "--seed", "0"] + (["--epochs", args.epochs] if args.epochs else [])
        r = measure(cmd, env)
        m = json.loads(r["stdout"])  # with --json, stdout holds only the metrics
        train = m.get("train_seconds")
        target = f"RSS <= 2 GB {met(r['rss_mb'] <= RSS_TARGET_MB)}" if task == "classify" else ""
        rows.append({"step": f"run {task} {head}", "command": f"magtask run {task} {head}" +
                     (f" --epochs {args.epochs}" if args.epochs else ""), **r,
                     "throughput": f"train {train:.1f} s" if train is not None else "(codes cached)",
                     "result": score(task, m), "side_inputs": ", ".join(m["side_inputs"]) or "none (code-only)",
                     "metrics": {k: v for k, v in m.items() if not isinstance(v, (dict, list))},
                     "target": target})
    return rows


def table(rows: list[dict], info: dict, argv: list[str]) -> str:
    contended = info["load_start"] > info["cores"] - 0.5 or info["load_end"] > info["cores"] - 0.5
    lines = [f"`python benchmarks/run.py {' '.join(argv)}` on {info['date']}: {info['cpu']}, {info['cores']} cores, "
             f"{info['gpu']}, torch {info['torch']}, Python {info['python']}. Load average {info['load_start']:.1f} "
             f"at the start, {info['load_end']:.1f} at the end" +
             (" (*contended*: other jobs shared the cores, so times are pessimistic)" if contended else "") +
             f". Whole run {info['seconds']:.0f} s; each step a fresh process.", "",
             "| step | what ran | wall s | throughput | peak RSS MB | result | side inputs | target |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['step']} | `{r['command']}` | {r['seconds']:.1f} | {r['throughput']} | {r['rss_mb']:.0f} | "
                     f"{r['result']} | {r.get('side_inputs', '')} | {r['target']} |")
    return "\n".join(lines)


def write_readme(path: Path, key: str, body: str, per_class: int) -> None:
    begin, end = f"<!-- run.py:{key}:begin -->", f"<!-- run.py:{key}:end -->"
    text = path.read_text() if path.exists() else ""
    block = f"{begin}\n{body}\n{end}"
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + f"\n\n## `benchmarks/run.py`: {4 * per_class} videos\n\n{block}\n"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-class", type=int, default=500, help="videos per class (7500: the 30 000-video run)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes for a smoke test (8 per class, 2 steps, 1 epoch)")
    ap.add_argument("--train-steps", type=int, default=20, help="tokenizer training steps timed")
    ap.add_argument("--bare-every", type=int, default=8, help="time the bare forward pass on every k-th batch")
    ap.add_argument("--heads", default="all", help="comma list of TASK:HEAD (names or aliases), or all")
    ap.add_argument("--epochs", type=int, default=None, help="epochs for every head (default: each head's own)")
    ap.add_argument("--readme", type=Path, default=HERE / "README.md", help="file to write the table into")
    ap.add_argument("--json", type=Path, default=None, help="also write every measurement here")
    ap.add_argument("--workdir", type=Path, default=None, help="where the temporary data and caches go")
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    args = ap.parse_args()
    if args.quick:
        args.per_class, args.train_steps, args.bare_every = 8, 2, 1
        args.epochs = args.epochs or 1
    if min(args.per_class, args.train_steps, args.bare_every) < 1:
        sys.exit("run.py: error: --per-class, --train-steps and --bare-every must be at least 1")
    info = machine()
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="magtask-bench-", dir=args.workdir))
    env = {**os.environ, "MAGTASK_CACHE_DIR": str(work / "cache"), "COLUMNS": "200"}
    try:
        rows = run_steps(args, work, env)
    except StepFailed as e:
        sys.exit(f"run.py: {e}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    info.update(load_end=os.getloadavg()[0], seconds=time.perf_counter() - t0)
    body = table(rows, info, sys.argv[1:])
    print(body)
    write_readme(args.readme, f"per-class-{args.per_class}", body, args.per_class)
    if args.json:
        slim = [{k: v for k, v in r.items() if k not in ("stdout", "stderr")} for r in rows]
        args.json.write_text(json.dumps({"machine": info, "steps": slim}, indent=2))


if __name__ == "__main__":
    main()
