"""`magtask tokenizer train|eval|info`: train, measure and describe video tokenizers."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from magtask import invocation
from magtask.console import err, out
from magtask.errors import MagtaskError, UsageError

app = typer.Typer(help="Train, evaluate and describe MAGVIT-style video tokenizers (causal, FSQ codes).",
                  no_args_is_help=True)


def _dataset(path: Optional[Path]):
    from magtask.data.dataset import load_dataset

    if path is None:
        from magtask.data.defaults import default_dataset_path

        path = default_dataset_path()
    return load_dataset(path)


def _json_safe(v):
    """JSON has no inf / NaN: they become null (a perfect PSNR, an empty region); nested dicts and lists too."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    return v


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"
    return str(v)


@app.command()
def train(
    data: Optional[List[Path]] = typer.Option(None, "--data", help="Training dataset(s); repeat to mix "
                                              "several (their train splits are pooled). Default: the default dataset."),
    out_path: Path = typer.Option(..., "--out", help="Tokenizer file to write (.safetensors)."),
    steps: int = typer.Option(2000, "--steps", help="Optimizer steps."),
    seed: int = typer.Option(0, "--seed", help="Initialization and data order follow from it."),
    batch_size: int = typer.Option(24, "--batch-size", help="Clips per step."),
    lr: float = typer.Option(3e-3, "--lr", help="Peak learning rate (warm-up, then cosine decay)."),
    crop: int = typer.Option(32, "--crop", help="Train on crop x crop windows around the dot (0: whole frames)."),
    clip_frames: int = typer.Option(8, "--clip-frames", help="Frames per training clip (a multiple of the "
                                    "temporal stride; the model is causal and convolutional)."),
    dot_weight: float = typer.Option(5.0, "--dot-weight", min=0.0, help="Extra loss weight on the dot and a "
                                     "1-px ring around it (the dot is ~2 % of the pixels)."),
    width: Optional[int] = typer.Option(None, "--width", help="Channels of the model (default 64)."),
    temporal_stride: Optional[int] = typer.Option(None, "--temporal-stride", help="Frames per latent step (1 or 2)."),
    levels: Optional[str] = typer.Option(None, "--levels", help="FSQ levels per latent channel, comma-separated "
                                         "(default 8,5,5,5: 1 000 codes; more levels per channel code colours "
                                         "more finely)."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Write resumable training state here "
                                              "(default: OUT with .state.safetensors)."),
    checkpoint_every: int = typer.Option(200, "--checkpoint-every", help="Steps between training-state saves."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue from a training-state file."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
    json_out: bool = typer.Option(False, "--json", help="Print the card as JSON on stdout."),
    eval_every: Optional[int] = typer.Option(None, "--eval-every", min=1, help="Steps between held-out PSNR "
                                             "checks (each is a point of the card's loss history; default 200)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto (cuda: bf16 autocast)."),
) -> None:
    """Train a tokenizer on the train split; reports held-out (val) PSNR as it goes.

    Several processes: `torchrun --nproc-per-node 2 -m magtask tokenizer train ...` trains with DDP
    (gloo on CPU, nccl on GPU); each process takes part of every step's batch, rank 0 writes.
    """
    from magtask.distributed import is_main
    from magtask.runner import resolve_device
    from magtask.tokenizer.model import DEFAULT_CONFIG, check_config
    from magtask.tokenizer.train import train_tokenizer, training_options

    device = resolve_device(device)

    if out_path.exists() and not overwrite and resume is None:
        raise MagtaskError(f"{out_path}: exists; pass --overwrite to replace it")
    config = {k: v for k, v in (("width", width), ("temporal_stride", temporal_stride)) if v is not None}
    if levels is not None:
        try:
            config["levels"] = [int(v) for v in levels.split(",")]
        except ValueError:
            raise UsageError(f"--levels must be comma-separated integers, got {levels!r}") from None
    check_config(config, UsageError)  # every option checked before any data is read
    options = {"crop": crop, "clip_frames": clip_frames, "dot_weight": dot_weight,
               **({"eval_every": eval_every} if eval_every else {})}
    training_options(steps, options, batch_size=batch_size, lr=lr)
    stride = config.get("temporal_stride", DEFAULT_CONFIG["temporal_stride"])
    if resume is None and clip_frames % stride:
        raise UsageError(f"--clip-frames {clip_frames} must be a multiple of the temporal stride {stride}")
    if checkpoint_every < 0:
        raise UsageError(f"--checkpoint-every must be >= 0, got {checkpoint_every}")
    if out_path.suffix != ".safetensors":
        raise UsageError(f"--out must name a .safetensors file, got {out_path}")
    sets = [_dataset(p) for p in data] if data else [_dataset(None)]
    state = checkpoint or out_path.with_name(out_path.name.replace(".safetensors", "") + ".state.safetensors")
    command = invocation.command_from("train")
    model, card = train_tokenizer(sets, out_path, steps=steps, seed=seed, config=config or None, resume=resume,
                                  batch_size=batch_size, lr=lr, checkpoint=state, checkpoint_every=checkpoint_every,
                                  command=command, device=device, options=options)
    if not is_main():
        return
    last = card["history"][-1] if card["history"] else {}
    if json_out:
        out.print_json(json.dumps(card, default=str))
    err.print(f"wrote {out_path} ({card['params']:,} params, {card['seconds']:.0f} s, "
              f"val PSNR {last.get('val_psnr', float('nan')):.2f} dB); training state in {state}", soft_wrap=True)


@app.command()
def finetune(
    data: Path = typer.Option(..., "--data", help="Your videos (a magtask dataset, e.g. from `magtask data import`): "
                              "trained on its train split, measured on its val split."),
    out_path: Path = typer.Option(..., "--out", help="Tokenizer file to write (.safetensors), with its card."),
    tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help="magtask tokenizer to start from "
                                             "(default: the shipped one)."),
    steps: int = typer.Option(300, "--steps", help="Optimizer steps (about 0.3 s each on 2 CPU cores)."),
    lr: float = typer.Option(1e-3, "--lr", help="Peak learning rate (short warm-up, then cosine decay)."),
    batch_size: int = typer.Option(16, "--batch-size", help="Clips per step."),
    crop: int = typer.Option(32, "--crop", help="Train on crop x crop windows (around the dot when the data "
                             "has true centres, else anywhere; 0: whole frames)."),
    eval_every: int = typer.Option(50, "--eval-every", min=1, help="Steps between val-PSNR checks; the best "
                                   "weights seen at a check are the ones written."),
    max_seconds: Optional[float] = typer.Option(None, "--max-seconds", help="A time budget for training: the "
                                                "learning rate decays over whichever ends first, --steps or this, "
                                                "and training stops there (e.g. 180 for three minutes)."),
    seed: int = typer.Option(0, "--seed", help="Data order and crops follow from it."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
    json_out: bool = typer.Option(False, "--json", help="Print before/after metrics and the card as JSON."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
) -> None:
    """Adapt a tokenizer to your own videos in minutes: PSNR before and after on their val split.

    Starts from the shipped tokenizer (or --tokenizer), trains on the train split only, keeps the
    weights with the best val PSNR seen, and writes them with a card (command, data, starting
    tokenizer, before/after metrics). Ctrl-C stops training cleanly: the best weights so far are
    measured and written.
    """
    from magtask.data.dataset import load_dataset
    from magtask.runner import resolve_device
    from magtask.tokenizer.evaluate import evaluate_tokenizer
    from magtask.tokenizer.io import default_tokenizer_path, load_tokenizer, save_tokenizer, tokenizer_hash
    from magtask.tokenizer.magvit2_load import is_magvit2_checkpoint
    from magtask.tokenizer.train import train_tokenizer, training_options

    device = resolve_device(device)
    if out_path.suffix != ".safetensors":
        raise UsageError(f"--out must name a .safetensors file, got {out_path}")
    if out_path.exists() and not overwrite:
        raise MagtaskError(f"{out_path}: exists; pass --overwrite to replace it")
    options = {"crop": crop, "eval_every": eval_every, "warmup": max(1, min(50, steps // 10))}
    training_options(steps, options, batch_size=batch_size, lr=lr)
    if max_seconds is not None and not max_seconds > 0:
        raise UsageError(f"--max-seconds must be > 0, got {max_seconds:g}")
    if tokenizer is not None and is_magvit2_checkpoint(tokenizer):
        raise UsageError(f"{tokenizer}: fine-tuning trains magtask tokenizers; a magvit2-pytorch checkpoint is "
                         "fine-tuned with that package's own trainer")
    base = load_tokenizer(tokenizer).to(device)
    dataset = load_dataset(data)
    dataset.require("train", "val")
    base_hash = tokenizer_hash(base)
    before = evaluate_tokenizer(base, dataset, split="val")
    command = invocation.command_from("finetune")
    model, card = train_tokenizer([dataset], None, steps=steps, seed=seed, batch_size=batch_size, lr=lr,
                                  options=options, command=command, device=device, start_from=base, keep_best=True,
                                  stop_on_interrupt=True, max_seconds=max_seconds)
    after = evaluate_tokenizer(model, dataset, split="val")
    keys = ("psnr", "foreground_psnr", "background_psnr", "blank_psnr", "centre_error_px", "one_dot_fraction")
    card.update({"finetuned_from": {"path": str(tokenizer or default_tokenizer_path()), "hash": base_hash},
                 "val_before": {k: before[k] for k in keys}, "val_after": {k: after[k] for k in keys}})
    digest = save_tokenizer(model, out_path, card)
    res = {"out": str(out_path), "hash": digest, "before": before, "after": after,
           "gain_db": after["psnr"] - before["psnr"], "steps_done": card["steps_done"],
           "interrupted_at": card.get("interrupted_at"), "seconds": card["seconds"], "kept": card.get("kept"),
           "stopped_at_time_limit": card.get("time_limit", {}).get("stopped_at_step")}
    if json_out:
        out.print_json(json.dumps(_json_safe(res), default=str))
        return
    table = Table(title=f"fine-tuned on {dataset.path.name}: val split ({before['n_videos']} videos)")
    for col in ("metric", "before", "after"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for k, label, fmt in (("psnr", "PSNR (dB)", ".2f"), ("foreground_psnr", "  foreground (the dot)", ".2f"),
                          ("background_psnr", "  background", ".2f"), ("blank_psnr", "  blank video", ".2f"),
                          ("centre_error_px", "dot centre error (px)", ".3f"),
                          ("one_dot_fraction", "frames with one dot", ".4f")):
        table.add_row(label, format(before[k], fmt), format(after[k], fmt))
    out.print(table)
    stop = f"stopped by Ctrl-C at step {card['interrupted_at']} of {steps}; " if "interrupted_at" in card else ""
    if "time_limit" in card:
        stop = f"stopped at the {max_seconds:g} s time limit at step {card['time_limit']['stopped_at_step']} of {steps}; "
    kept_ = card.get("kept", {})
    err.print(f"{stop}wrote {out_path} (weights of step {kept_.get('step', card['steps_done'])}, val PSNR "
              f"{before['psnr']:.2f} -> {after['psnr']:.2f} dB, {card['seconds']:.0f} s of training)", soft_wrap=True)


@app.command("eval")
def eval_(
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset (default: the default dataset)."),
    tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help="Tokenizer file (default: the shipped one); "
                                             "a magvit2-pytorch .pt works too."),
    tokenizer_config: Optional[str] = typer.Option(None, "--tokenizer-config", help="For a magvit2-pytorch "
                                                   "checkpoint without a config: a preset (seed-2026-01) or a JSON file."),
    split: str = typer.Option("test", "--split", help="train, val, test or all."),
    batch_size: int = typer.Option(32, "--batch-size", help="Videos per encode batch."),
    json_out: bool = typer.Option(False, "--json", help="Print only JSON on stdout."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
) -> None:
    """Reconstruct held-out videos; print each score beside its baseline."""
    from magtask.runner import resolve_device
    from magtask.tokenizer.evaluate import SPLITS, evaluate_tokenizer
    from magtask.tokenizer.resolve import hash_of, open_tokenizer

    device = resolve_device(device)
    if split not in SPLITS:
        raise UsageError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    model = open_tokenizer(tokenizer, tokenizer_config).to(device)
    dataset = _dataset(data)
    res = evaluate_tokenizer(model, dataset, split=split, batch_size=batch_size)
    res["tokenizer"] = hash_of(model)
    if json_out:
        out.print_json(json.dumps(_json_safe(res)))
        return
    table = Table(title=f"tokenizer on {dataset.path.name} ({split}, {res['n_videos']} videos)")
    table.add_column("metric")
    table.add_column("tokenizer", justify="right")
    table.add_column("baseline", justify="right")
    table.add_column("baseline is")
    table.add_row("PSNR (dB)", f"{res['psnr']:.2f}", f"{res['blank_psnr']:.2f}", "an all-background video")
    table.add_row("  foreground PSNR (the dot)", f"{res['foreground_psnr']:.2f}", f"{res['foreground_blank_psnr']:.2f}",
                  f"moving pixels + 1-px ring, {100 * res['foreground_fraction']:.1f} % of the video")
    table.add_row("  background PSNR", f"{res['background_psnr']:.2f}", "", "everything that does not move")
    table.add_row("dot centre error (px)", f"{res['centre_error_px']:.3f}", f"{res['centre_error_px_real']:.3f}",
                  "the tracker on the real videos")
    table.add_row("frames with one valid dot", f"{res['one_dot_fraction']:.4f}", f"{res['one_dot_fraction_real']:.4f}",
                  "the real videos")
    table.add_row("codebook used", f"{res['codebook_fraction_used']:.3f}", "1.000", f"all {res['codebook_size']} codes")
    table.add_row("code perplexity", f"{res['perplexity']:.1f}", f"{res['codebook_size']}", "uniform use")
    table.add_row("compression (values)", f"{res['compression_ratio']:.1f}x", "1x", "raw video")
    table.add_row("encode+decode speed", f"{res['videos_per_second']:.0f} videos/s", "", "")
    out.print(table)


@app.command()
def info(
    tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help="Tokenizer file: ours (.safetensors), "
                                             "a magvit2-pytorch checkpoint (.pt) or a converted one. Default: the "
                                             "shipped one."),
    tokenizer_config: Optional[str] = typer.Option(None, "--tokenizer-config", help="For a magvit2-pytorch "
                                                   "checkpoint without its config: a preset (seed-2026-01) or JSON "
                                                   "file of VideoTokenizer arguments."),
    json_out: bool = typer.Option(False, "--json", help="Print only JSON on stdout."),
) -> None:
    """Architecture, quantizer, codebook size, strides, causal, parameters, hash, latent shape and card,
    for every kind of tokenizer magtask loads."""
    from magtask.tokenizer.io import default_tokenizer_path
    from magtask.tokenizer.resolve import hash_of, open_tokenizer

    model = open_tokenizer(tokenizer, tokenizer_config)
    card = dict(getattr(model, "card", {}) or {})
    res = {"path": str(tokenizer or default_tokenizer_path()), "hash": hash_of(model), **model.info(),
           "config": model.config, "card": {k: v for k, v in card.items() if k != "history"}}
    if json_out:
        out.print_json(json.dumps(res, default=str))
        return
    table = Table(title=f"tokenizer {Path(res['path']).name}", show_header=False)
    table.add_column("key")
    table.add_column("value")
    for k in ("path", "arch", "hash", "params", "quantizer", "codebook_size", "causal", "temporal_stride",
              "spatial_stride", "video_shape", "latent_shape", "compression_ratio"):
        if k in res:
            table.add_row(k, _fmt(res[k]))
    table.add_row("config", json.dumps(model.config, sort_keys=True, default=str))
    for k in ("command", "steps", "seconds", "seed", "source", "config_source", "converted_from"):
        if k in card:
            table.add_row(f"card.{k}", _fmt(card[k]))
    for name in ("eval_seed", "eval_varied"):
        if name in card:
            m = card[name]
            table.add_row(f"card.{name}", f"PSNR {m['psnr']:.2f} dB (blank {m['blank_psnr']:.2f}), centre error "
                          f"{m['centre_error_px']:.3f} px, one dot {m['one_dot_fraction']:.4f}")
    out.print(table)
