"""Tokenizer files: safetensors weights with the config (and a card) as JSON metadata.

    save_tokenizer(model, path, card)   format=magtask-tokenizer, written atomically
    load_tokenizer(path=None)           None: the shipped checkpoint (default_tokenizer_path)
    tokenizer_hash(path_or_model)       sha256 over config + weights: what code caches are keyed by

Training state (for --resume) is a safetensors file too (format=magtask-tokenizer-train-state):
weights as model.*, Adam moments as optim.<param>.<name>, and the step, options and history as
JSON metadata. Nothing is ever unpickled; a .pt state is read with torch.load(weights_only=True).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
from pathlib import Path

import numpy as np
import torch

import magtask
from magtask.errors import MagtaskError
from magtask.tensorfile import open_tensors, write_tensors
from magtask.tokenizer.model import VideoTokenizer

FORMAT = "magtask-tokenizer"
STATE_FORMAT = "magtask-tokenizer-train-state"
DEFAULT_NAME = "magtask-tokenizer-v3.safetensors"


def default_tokenizer_path() -> Path:
    """The shipped checkpoint, magtask-tokenizer-v3.safetensors (its card, .json, lies beside it).

    It is package data of `magtask.checkpoints`: pyproject.toml maps the repository's top-level
    checkpoints/ folder onto that package, so wheels, sdists and editable installs all carry it, and
    it is found here with importlib.resources, never relative to a source checkout. Only an editable
    install made before that mapping existed lacks the package; it falls back to the folder beside
    the `magtask` package (reinstall with `pip install -e .` to drop the fallback).
    """
    try:
        found = importlib.resources.files("magtask.checkpoints") / DEFAULT_NAME
    except ModuleNotFoundError:
        found = Path(magtask.__file__).resolve().parent.parent / "checkpoints" / DEFAULT_NAME
    return found if isinstance(found, Path) else Path(str(found))


def _arrays(state: dict[str, torch.Tensor], prefix: str = "") -> dict[str, np.ndarray]:
    return {prefix + k: v.detach().cpu().contiguous().numpy() for k, v in state.items()}


def save_tokenizer(model: VideoTokenizer, path: str | os.PathLike, card: dict | None = None) -> str:
    """Write weights + config (+ card) atomically; returns the tokenizer hash."""
    meta = {"format": FORMAT, "format_version": "1", "config": json.dumps(model.config, sort_keys=True),
            "tokenizer_hash": tokenizer_hash(model)}
    if card is not None:
        meta["card"] = json.dumps(card, sort_keys=True, default=str)
    write_tensors(path, _arrays(model.state_dict()), meta)
    return meta["tokenizer_hash"]


def _read(path: Path, want: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    if not path.exists():
        raise MagtaskError(f"{path}: no such file")
    tensors, meta = open_tensors(path)  # raises one-line errors for truncated / non-safetensors files
    if meta.get("format") != want:
        found = meta.get("format")
        raise MagtaskError(f"{path}: not a {want} file (safetensors with format={found!r})")
    return tensors, meta


def _config(path: Path, meta: dict[str, str]) -> dict:
    try:
        config = json.loads(meta["config"])
        if not isinstance(config, dict):
            raise ValueError("not a table")
        return config
    except (KeyError, ValueError) as e:
        raise MagtaskError(f"{path}: tokenizer config missing or unreadable ({e})") from None


def _build(path: Path, config: dict, weights: dict[str, np.ndarray | torch.Tensor]) -> VideoTokenizer:
    try:
        model = VideoTokenizer(config)
    except (TypeError, ValueError, KeyError, RuntimeError) as e:
        raise MagtaskError(f"{path}: tokenizer config cannot build a model ({type(e).__name__}: {e})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    problems = []
    if missing:
        problems.append(f"missing {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected {_few(unexpected)}")
    shapes = [f"{k} {tuple(weights[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in weights and tuple(weights[k].shape) != tuple(v.shape)]
    if shapes:
        problems.append(f"shape mismatch {_few(shapes)}")
    if problems:
        raise MagtaskError(f"{path}: config does not match the weights: {'; '.join(problems)}")
    model.load_state_dict({k: torch.as_tensor(np.array(v)) if not isinstance(v, torch.Tensor) else v
                           for k, v in weights.items()})
    model.eval()
    for p in model.parameters():
        if not torch.isfinite(p).all():
            raise MagtaskError(f"{path}: weights contain NaN or Inf")
    return model


def _few(names: list[str], n: int = 3) -> str:
    return ", ".join(names[:n]) + (f" (+{len(names) - n} more)" if len(names) > n else "")


def load_tokenizer(path: str | os.PathLike | None = None) -> VideoTokenizer:
    """Load a tokenizer file (None: the shipped default). The card, if any, is on model.card."""
    path = default_tokenizer_path() if path is None else Path(path)
    if path.is_dir():
        raise MagtaskError(f"{path}: is a directory, not a tokenizer file")
    tensors, meta = _read(path, FORMAT)
    model = _build(path, _config(path, meta), tensors)
    try:
        model.card = json.loads(meta["card"]) if "card" in meta else {}
    except ValueError:
        model.card = {}
    model.path = path
    return model


def tokenizer_hash(model_or_path: VideoTokenizer | str | os.PathLike) -> str:
    """sha256 over the config (canonical JSON) and every weight (sorted by name, float32 bytes)."""
    model = model_or_path if isinstance(model_or_path, VideoTokenizer) else load_tokenizer(model_or_path)
    h = hashlib.sha256(json.dumps(model.config, sort_keys=True).encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


# -- training state --------------------------------------------------------------------------------

def save_training_state(path: str | os.PathLike, model: VideoTokenizer, optimizer: torch.optim.Optimizer,
                        info: dict) -> None:
    sd = optimizer.state_dict()
    arrays = _arrays(model.state_dict(), "model.")
    for pid, st in sd["state"].items():
        for k, v in st.items():
            arrays[f"optim.{pid}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous().numpy()
    meta = {"format": STATE_FORMAT, "config": json.dumps(model.config, sort_keys=True),
            "param_groups": json.dumps(sd["param_groups"]), "info": json.dumps(info, default=str)}
    write_tensors(path, arrays, meta)


def load_training_state(path: str | os.PathLike) -> dict:
    """{"model", "optimizer" (state dicts), "config", "step", "steps", "seed", "options", "data", ...}."""
    path = Path(path)
    if path.suffix in (".pt", ".pth"):
        return _load_pt_state(path)
    tensors, meta = _read(path, STATE_FORMAT)
    config = _config(path, meta)
    try:
        info = json.loads(meta["info"])
        groups = json.loads(meta["param_groups"])
    except (KeyError, ValueError) as e:
        raise MagtaskError(f"{path}: training state metadata missing or unreadable ({e})") from None
    weights = {k[len("model."):]: torch.from_numpy(np.array(v)) for k, v in tensors.items() if k.startswith("model.")}
    _build(path, config, weights)  # validates config vs weights with a clear message
    state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = torch.from_numpy(np.array(v))
    return {"model": weights, "optimizer": {"state": state, "param_groups": groups}, "config": config, **info}


def _load_pt_state(path: Path) -> dict:
    import pickle
    import zipfile

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, zipfile.BadZipFile) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise MagtaskError(f"{path}: not a readable training state ({first})") from None
    need = {"model", "optimizer", "config", "step", "steps", "seed", "options", "data"}
    if not isinstance(obj, dict) or need - set(obj):
        raise MagtaskError(f"{path}: not a magtask training state (needs keys {sorted(need)})")
    _build(path, obj["config"], obj["model"])
    obj.setdefault("history", [])
    obj.setdefault("seconds", 0.0)
    return obj
