"""A restricted unpickler for checkpoints made by other tools: it builds plain data, never runs code.

    loads(data)            pickle bytes -> plain data (e.g. magvit2-pytorch's pickled `config`)
    torch_load(path)       a torch.save file -> plain data with tensors, always mapped to CPU

What it will build:
- plain data: dict, list, tuple, set, str, bytes, int, float, bool, None (and OrderedDict, which is
  a dict);
- tensors and storages, through the same rebuild functions torch.load(weights_only=True) allows
  (only in torch_load: a tensor pickled outside torch.save would need torch.load to run on bytes);
- a short list of harmless classes that other tools' configs carry (an nn.Module or activation passed
  as an argument, torchvision's VGG16_Weights enum and what its value holds, functools.partial):
  these are NOT imported or called; each becomes an inert `Opaque` record of its name, arguments
  and state, and `plain()` turns those into strings like "<torchvision.models.vgg.VGG16_Weights>".

Anything else (os.system, builtins.eval, any other class or function) is refused with
UnsafePickleError naming the global, before anything is called. Only `find_class` can bring a
callable into a pickle stream, and it returns nothing outside the lists above.
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from magtask.errors import MagtaskError


class UnsafePickleError(MagtaskError, pickle.UnpicklingError):
    """The pickle asked for a global outside the allowed set (nothing was executed)."""


class Opaque:
    """Stands in for an allowed-but-never-imported class or function: records, never runs."""

    qualname = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.args, obj.kwargs, obj.state = args, kwargs, None
        return obj

    def __init__(self, *args, **kwargs):  # a REDUCE call: the arguments are already recorded
        pass

    def __setstate__(self, state):
        self.state = state

    def __repr__(self) -> str:
        return f"<{self.qualname}>"


# Classes that configs carry but that play no part in a tokenizer's forward pass (only their
# name is kept): lfq_activation = nn.Identity(), vgg_weights = VGG16_Weights.DEFAULT (its value is a
# torchvision Weights dataclass holding a functools.partial of a transform preset).
OPAQUE = frozenset({
    "torch.nn.modules.linear.Identity",
    *(f"torch.nn.modules.activation.{n}" for n in ("Tanh", "Sigmoid", "ReLU", "SiLU", "GELU", "LeakyReLU", "ELU",
                                                    "Hardtanh", "Softsign", "Mish")),
    "torchvision.models.vgg.VGG16_Weights",
    "torchvision.models._api.Weights",
    "torchvision.transforms._presets.ImageClassification",
    "torchvision.transforms.functional.InterpolationMode",
    "functools.partial",
})

PLAIN = {
    "collections.OrderedDict": collections.OrderedDict,
    "builtins.set": set,
    "builtins.frozenset": frozenset,
    "builtins.complex": complex,
    "builtins.bytearray": bytearray,
    "_codecs.encode": None,  # filled below: bytes pickled with protocol < 3 come through it (latin1 only)
}


def _latin1_encode(s: str, encoding: str = "latin1") -> bytes:
    if encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"pickle asked for _codecs.encode with encoding {encoding!r} (refused)")
    return s.encode("latin1")


PLAIN["_codecs.encode"] = _latin1_encode

_opaque_classes: dict[str, type] = {}


def _opaque(qualname: str) -> type:
    if qualname not in _opaque_classes:
        _opaque_classes[qualname] = type(qualname.rsplit(".", 1)[-1], (Opaque,), {"qualname": qualname})
    return _opaque_classes[qualname]


def _torch_allowed() -> dict[str, Any]:
    """The globals torch.load(weights_only=True) allows: tensor/storage rebuild functions, dtypes, Size."""
    try:
        from torch._weights_only_unpickler import _get_allowed_globals

        allowed = dict(_get_allowed_globals())
    except (ImportError, AttributeError):  # pragma: no cover - a torch without the private helper
        from torch import _utils

        allowed = {f"torch._utils.{n}": getattr(_utils, n) for n in ("_rebuild_tensor", "_rebuild_tensor_v2",
                                                                     "_rebuild_parameter")}
        allowed["torch.Size"] = torch.Size
    # keep only what rebuilds tensors / describes them; never a general-purpose callable
    return {k: v for k, v in allowed.items() if k.startswith("torch.") and not k.startswith("torch.nn.")}


class RestrictedUnpickler(pickle.Unpickler):
    """pickle.Unpickler whose find_class only hands out plain types, inert stand-ins or tensor rebuilders."""

    allow_tensors = False

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle protocol
        if module in _compat_pickle.IMPORT_MAPPING:  # Python 2 names, as protocol 2 (torch.save's) writes them
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        full = f"{module}.{name}"
        if full in PLAIN:
            return PLAIN[full]
        if full in OPAQUE:
            return _opaque(full)
        if self.allow_tensors:
            allowed = _TORCH.get(full)
            if allowed is not None:
                return allowed
        raise UnsafePickleError(f"refused to unpickle global {full!r} (only plain data and tensors are loaded)")


_TORCH = _torch_allowed()


class _TensorUnpickler(RestrictedUnpickler):
    allow_tensors = True


def loads(data: bytes) -> Any:
    """Unpickle bytes into plain data (Opaque records for the few allowed classes)."""
    return RestrictedUnpickler(io.BytesIO(data)).load()


class _PickleModule:
    """What torch.load(pickle_module=...) needs: an Unpickler class and load()."""

    Unpickler = _TensorUnpickler
    UnpicklingError = pickle.UnpicklingError
    __name__ = "magtask.tokenizer.safe_pickle"

    @staticmethod
    def load(file, **kwargs):
        return _TensorUnpickler(file, **kwargs).load()


def torch_load(path: str | os.PathLike) -> Any:
    """torch.load through the restricted unpickler, every storage mapped to CPU.

    torch.load(weights_only=True) is tried first (torch's own safe loader); only if it refuses a
    global is the file read again with this module's unpickler, which also builds the inert
    stand-ins above (e.g. a config dict holding an nn.Module) and refuses everything else.
    """
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass  # a global torch's safe loader does not know: read again, restricted to our list
    return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_PickleModule)


def plain(obj: Any) -> Any:
    """Replace Opaque stand-ins by their '<qualname>' string, recursively (dicts, lists, tuples)."""
    if isinstance(obj, Opaque):
        return repr(obj)
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v) for v in obj)
    return obj
