"""Load magvit2-pytorch checkpoints (what the seed project's users hold) without that package.

    load_magvit2(path, config=None)     .pt (the package's save(), its trainer's, hand-written) or a
                                        converted .safetensors -> Magvit2Tokenizer (magtask's tokenizer API)
    is_magvit2_checkpoint(path)         cheap sniff, for load_tokenizer to dispatch on
    convert(path, out, config=None)     write format=magtask-magvit2 safetensors once; returns its hash
    resolve_config(spec)                a preset name ("seed-2026-01") or a JSON file -> config dict
    magvit2_hash(model)                 sha256 over config + weights, as io.tokenizer_hash does

Where the config comes from, first found wins: `config` given by the caller (a preset name, a JSON
file of the package's VideoTokenizer arguments, or a dict), else the checkpoint's pickled `config`
(read with magtask.tokenizer.safe_pickle: plain data only, nothing executed). Trainer and
hand-written checkpoints carry none, so they need `config` ("seed-2026-01" is the seed's model).
Every tensor is mapped to CPU on load (checkpoints saved on a GPU load on a machine without one).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from magtask.errors import MagtaskError
from magtask.tokenizer import safe_pickle
from magtask.tokenizer.magvit2 import Magvit2Tokenizer, load_state, normalize_config

FORMAT = "magtask-magvit2"

PRESETS = {
    # The seed project's model: VideoTokenizer(image_size=64, init_dim=64, layers=('residual', 'residual'),
    # use_fsq=True, fsq_levels=[8, 5, 5, 5]); no compression, 16-frame 64x64 videos.
    "seed-2026-01": {"image_size": 64, "init_dim": 64, "layers": ["residual", "residual"], "use_fsq": True,
                     "fsq_levels": [8, 5, 5, 5], "frames": 16},
}

_STATE_KEYS = ("model_state_dict", "state_dict", "model")


def resolve_config(spec: str | os.PathLike | dict) -> tuple[dict, str]:
    """A preset name, a JSON file or a dict -> (config, where it came from)."""
    if isinstance(spec, dict):
        return dict(spec), "given config"
    name = str(spec)
    if name in PRESETS:
        return dict(PRESETS[name]), f"preset {name}"
    path = Path(name)
    if not path.is_file():
        raise MagtaskError(f"tokenizer config {name!r}: neither a preset ({', '.join(PRESETS)}) nor a JSON file")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise MagtaskError(f"{path}: not a readable JSON tokenizer config ({e})") from None
    if not isinstance(data, dict):
        raise MagtaskError(f"{path}: a tokenizer config must be a JSON object of VideoTokenizer arguments")
    return data, str(path)


def is_magvit2_checkpoint(path: str | os.PathLike) -> bool:
    """True for a converted magvit2 safetensors file or a torch zip whose pickle names this model's layers.

    Reads only the safetensors header or the (small) pickle record of the zip; never unpickles."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        with path.open("rb") as f:
            head = f.read(8)
            if head[:2] == b"PK":
                with zipfile.ZipFile(path) as z:
                    names = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
                    if not names or z.getinfo(names[0]).file_size > 64 << 20:
                        return False
                    pkl = z.read(names[0])
                return b"conv_in.conv.weight" in pkl and b"encoder_layers." in pkl and b"quantizers" in pkl
            if len(head) == 8:
                n = int.from_bytes(head, "little")
                if 0 < n < 100 << 20:
                    header = json.loads(f.read(n))
                    return header.get("__metadata__", {}).get("format") == FORMAT
    except (OSError, ValueError, zipfile.BadZipFile, UnicodeDecodeError):
        return False
    return False


def _read_pt(path: Path) -> dict:
    import pickle

    try:
        obj = safe_pickle.torch_load(path)
    except safe_pickle.UnsafePickleError as e:
        raise MagtaskError(f"{path}: {e}") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise MagtaskError(f"{path}: not a readable torch checkpoint ({first})") from None
    if not isinstance(obj, dict):
        raise MagtaskError(f"{path}: not a magvit2 checkpoint (a {type(obj).__name__}, not a dict)")
    return obj


def _state_dict(path: Path, obj: dict, weights: str) -> tuple[dict, str]:
    """Pick the model weights out of the checkpoint shapes people have."""
    if weights not in ("auto", "ema", "model"):
        raise MagtaskError(f"weights must be auto, ema or model, not {weights!r}")
    if "ema_model" in obj and weights in ("auto", "ema"):  # the trainer's: its own tokenize() uses the EMA
        ema = obj["ema_model"]
        if isinstance(ema, dict):
            sd = {k[len("ema_model."):]: v for k, v in ema.items() if isinstance(k, str) and k.startswith("ema_model.")}
            if sd:
                return sd, "ema_model"
    if weights == "ema":
        raise MagtaskError(f"{path}: no EMA weights in this checkpoint")
    for key in _STATE_KEYS:
        if isinstance(obj.get(key), dict):
            return obj[key], key
    if obj and all(isinstance(k, str) for k in obj) and any(k.startswith("conv_in.") for k in obj):
        return obj, "state dict"
    raise MagtaskError(f"{path}: no model weights found (looked for {', '.join(_STATE_KEYS)}, ema_model, or a bare "
                       f"state dict; keys: {', '.join(map(str, list(obj)[:6]))})")


def _checkpoint_config(path: Path, obj: dict) -> dict | None:
    raw = obj.get("config")
    if raw is None:
        return None
    if isinstance(raw, (bytes, bytearray)):
        try:
            raw = safe_pickle.loads(bytes(raw))
        except safe_pickle.UnsafePickleError as e:
            raise MagtaskError(f"{path}: config: {e}") from None
        except Exception as e:  # a corrupt pickle: one line, nothing executed
            raise MagtaskError(f"{path}: config is not a readable pickle ({type(e).__name__}: {e})") from None
    raw = safe_pickle.plain(raw)
    if not isinstance(raw, dict):
        raise MagtaskError(f"{path}: config is a {type(raw).__name__}, not a table of VideoTokenizer arguments")
    return raw


def _build(path: Path, config: dict, source: str) -> Magvit2Tokenizer:
    try:
        return Magvit2Tokenizer(normalize_config(config, f"{path}: {source}"))
    except MagtaskError:
        raise
    except (TypeError, ValueError, KeyError, RuntimeError) as e:
        raise MagtaskError(f"{path}: {source} cannot build a magvit2 model ({type(e).__name__}: {e})") from None


def load_magvit2(path: str | os.PathLike, config: str | os.PathLike | dict | None = None,
                 weights: str = "auto") -> Magvit2Tokenizer:
    """Load a magvit2-pytorch checkpoint (.pt) or a converted one (.safetensors) on CPU.

    `config`: a preset name, a JSON file or a dict; overrides a config stored in the checkpoint.
    `weights` (trainer checkpoints): "auto"/"ema" use the EMA weights, "model" the online ones.
    """
    path = Path(path)
    if not path.exists():
        raise MagtaskError(f"{path}: no such file")
    if path.is_dir():
        raise MagtaskError(f"{path}: is a directory, not a tokenizer checkpoint")
    if _is_safetensors(path):
        return load_converted(path, config)
    obj = _read_pt(path)
    state, where = _state_dict(path, obj, weights)
    if config is not None:
        cfg, source = resolve_config(config)
    else:
        cfg, source = _checkpoint_config(path, obj), "checkpoint config"
        if cfg is None:
            raise MagtaskError(f"{path}: this checkpoint carries no config (keys: {', '.join(map(str, list(obj)[:6]))});"
                               f" give one: a preset ({', '.join(PRESETS)}) or a JSON file of VideoTokenizer arguments")
    model = _build(path, cfg, source)
    load_state(model, state, f"{path} ({where}, {source})")
    model.card = {"source": str(path), "config_source": source, "weights": where,
                  "package_version": str(obj.get("version")) if obj.get("version") is not None else None}
    model.path = path
    return model


def _is_safetensors(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[:2] != b"PK" and head[8:9] == b"{"


# -- our format ------------------------------------------------------------------------------------

def magvit2_hash(model: Magvit2Tokenizer) -> str:
    """sha256 over the config (canonical JSON) and every weight (sorted by name): what code caches key on."""
    h = hashlib.sha256(json.dumps(model.config, sort_keys=True).encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def save_magvit2(model: Magvit2Tokenizer, out: str | os.PathLike, card: dict | None = None) -> str:
    """Write format=magtask-magvit2 safetensors (weights + config JSON in the metadata); returns the hash."""
    from magtask.tensorfile import write_tensors

    digest = magvit2_hash(model)
    meta = {"format": FORMAT, "format_version": "1", "config": json.dumps(model.config, sort_keys=True),
            "tokenizer_hash": digest}
    if card is not None:
        meta["card"] = json.dumps(card, sort_keys=True, default=str)
    arrays = {k: v.detach().cpu().contiguous().numpy() for k, v in model.state_dict().items()}
    write_tensors(out, arrays, meta)
    return digest


def load_converted(path: str | os.PathLike, config: str | os.PathLike | dict | None = None) -> Magvit2Tokenizer:
    from magtask.tensorfile import open_tensors

    path = Path(path)
    tensors, meta = open_tensors(path)
    if meta.get("format") != FORMAT:
        raise MagtaskError(f"{path}: not a {FORMAT} file (safetensors with format={meta.get('format')!r})")
    if config is not None:
        cfg, source = resolve_config(config)
    else:
        try:
            cfg, source = json.loads(meta["config"]), "stored config"
        except (KeyError, ValueError) as e:
            raise MagtaskError(f"{path}: magvit2 config missing or unreadable ({e})") from None
    model = _build(path, cfg, source)
    load_state(model, {k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}, f"{path} ({source})")
    try:
        model.card = json.loads(meta["card"]) if "card" in meta else {}
    except ValueError:
        model.card = {}
    model.path = path
    return model


def convert(path: str | os.PathLike, out: str | os.PathLike, config: str | os.PathLike | dict | None = None,
            weights: str = "auto") -> str:
    """Read a magvit2-pytorch checkpoint once and write our safetensors format; returns its hash."""
    model = load_magvit2(path, config, weights)
    card = {**getattr(model, "card", {}), "converted_from": str(path)}
    return save_magvit2(model, out, card)
