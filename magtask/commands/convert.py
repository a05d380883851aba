"""`magtask tokenizer convert THEIR.pt --out MINE.safetensors`: a magvit2-pytorch checkpoint, converted once.

Mount with `app.command("convert")(convert)` on the tokenizer Typer app.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from magtask.console import out
from magtask.errors import UsageError


def convert(
    path: Path = typer.Argument(..., help="A magvit2-pytorch checkpoint (.pt): its save(), its trainer's, or "
                                "hand-written ({'model_state_dict', ...})."),
    out_path: Path = typer.Option(..., "--out", help="File to write (.safetensors, format magtask-magvit2)."),
    tokenizer_config: Optional[str] = typer.Option(
        None, "--tokenizer-config", help="Preset name (seed-2026-01) or JSON file of VideoTokenizer arguments; "
        "needed when the checkpoint carries no config, overrides one that it does."),
    weights: str = typer.Option("auto", "--weights", help="Trainer checkpoints: auto/ema (EMA weights, what the "
                                "package tokenizes with) or model (online weights)."),
    json_out: bool = typer.Option(False, "--json", help="Print only JSON on stdout."),
) -> None:
    """Convert a magvit2-pytorch checkpoint to magtask's safetensors format (no pickle on later loads)."""
    from magtask.tokenizer.magvit2_load import convert as convert_file, load_converted

    if weights not in ("auto", "ema", "model"):
        raise UsageError(f"--weights must be auto, ema or model, not {weights!r}")
    if out_path.suffix != ".safetensors":
        raise UsageError(f"--out must name a .safetensors file (the format written), got {out_path}")
    if out_path.resolve() == path.resolve():
        raise UsageError("--out must differ from the input checkpoint")
    digest = convert_file(path, out_path, tokenizer_config, weights)
    model = load_converted(out_path)
    res = {"path": str(out_path), "source": str(path), "hash": digest, "config_source": model.card.get("config_source"),
           "weights": model.card.get("weights"), "params": model.num_params(),
           "temporal_stride": model.temporal_stride, "spatial_stride": model.spatial_stride,
           "codebook_size": model.codebook_size, "latent_channels": model.latent_channels}
    if json_out:
        out.print_json(json.dumps(res))
        return
    out.print(f"wrote {out_path} (hash {digest[:12]}, {res['params']} parameters, codebook {res['codebook_size']}, "
              f"strides time {res['temporal_stride']} / space {res['spatial_stride']}; config from "
              f"{res['config_source']}, weights from {res['weights']})")
