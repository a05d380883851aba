"""What a plugin registers: a head (a model for one task, with its options and side inputs) or a task.

The contracts a head's object must meet live in magtask/contracts.py; docs/plugins.md documents them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from magtask.errors import UsageError

CONSUMES = ("latents", "indices")

# What a head may use beyond the train split's codes and labels. A head declares the ones it uses
# (HeadSpec.side_inputs); the task hands it only those, and metrics.json and list-heads show them.
# An empty list means the head is code-only.
SIDE_INPUTS = {
    "true_centres": "the dataset's ground-truth dot centres of the training videos",
    "tracker_tracks": "the evaluation's dot tracker run on the tokenizer's decoding of the training codes",
    "decoded_pixels": "the tokenizer's decoding of the training codes, as pixels",
    "training_code_windows": "code windows cut from training videos and copied into the head's output",
    "task_features": "hand-written features that presume the task's domain (one dot moving)",
}
# The side inputs that are data the task hands over (the others are declarations of what the head does).
DATA_SIDE_INPUTS = ("true_centres", "tracker_tracks", "decoded_pixels")

_TYPES = {int: "int", float: "float", bool: "bool", str: "str"}


@dataclass(frozen=True)
class Option:
    """One setting of a head (`magtask run TASK HEAD -o name=value`) or a task (its own flag).

    type is int, float, bool or str; default may be None ("not set"); lo / hi bound numbers
    (inclusive); choices restricts the value to a list.
    """

    name: str
    type: type
    default: Any
    help: str = ""
    lo: float | None = None
    hi: float | None = None
    choices: tuple | None = None

    def parse(self, raw: Any, label: str = "") -> Any:
        """A value from the command line (a string) or from code -> the typed value, or a UsageError
        naming it as `label` (default: "option NAME")."""
        label = label or f"option {self.name}"
        if raw is None:
            return None
        try:
            value = _convert(self.type, raw)
        except (TypeError, ValueError):
            raise UsageError(f"{label} takes {self.describe()}, got {raw!r}") from None
        if self.type in (int, float):
            if self.lo is not None and value < self.lo or self.hi is not None and value > self.hi:
                raise UsageError(f"{label} must be {self.describe()}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise UsageError(f"{label} must be one of {', '.join(map(str, self.choices))}, got {value!r}")
        return value

    def describe(self) -> str:
        """'an int in [1, 512]', 'a float >= 0', 'a bool', 'one of a, b'."""
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        kind = _TYPES[self.type]
        text = f"a{'n' if kind == 'int' else ''} {kind}"
        if self.lo is not None and self.hi is not None:
            return f"{text} in [{_num(self.lo)}, {_num(self.hi)}]"
        if self.lo is not None:
            return f"{text} >= {_num(self.lo)}"
        if self.hi is not None:
            return f"{text} <= {_num(self.hi)}"
        return text

    def row(self) -> dict:
        return {"name": self.name, "type": _TYPES.get(self.type, "?"), "default": self.default, "help": self.help,
                "values": self.describe()}

    def problems(self) -> list[str]:
        out = []
        if not isinstance(self.name, str) or not self.name.isidentifier():
            out.append(f"option name {self.name!r} is not an identifier")
        if self.type not in _TYPES:
            out.append(f"option {self.name!r} has type {self.type!r}; use int, float, bool or str")
        elif self.default is not None:
            try:
                if self.parse(self.default) != self.default:
                    out.append(f"option {self.name!r}: default {self.default!r} is not a {_TYPES[self.type]}")
            except UsageError as e:
                out.append(f"option {self.name!r}: default {self.default!r} is not valid ({e})")
        return out


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _convert(kind: type, raw: Any) -> Any:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ValueError(raw)
    if kind is int:
        if isinstance(raw, bool):
            raise TypeError(raw)
        if isinstance(raw, float):
            if not raw.is_integer():
                raise ValueError(raw)
            return int(raw)
        return int(str(raw).strip())
    if kind is float:
        if isinstance(raw, bool):
            raise TypeError(raw)
        value = float(str(raw).strip()) if isinstance(raw, str) else float(raw)
        if not math.isfinite(value):
            raise ValueError(raw)
        return value
    if not isinstance(raw, str):
        raise TypeError(raw)
    return raw


def resolve_options(declared: tuple[Option, ...], given: dict[str, Any], owner: str, flags: bool = False) -> dict[str, Any]:
    """Every declared option's value: the default, or the given value parsed. Unknown keys and bad values
    raise a UsageError that lists the options (KEY and key-with-dashes are the same key). flags: name
    the values as command-line flags (--train-per-class) in messages, as a task's options are."""
    by_name = {o.name: o for o in declared}
    out = {o.name: o.default for o in declared}
    for key, raw in given.items():
        name = key.strip().replace("-", "_")
        if name not in by_name:
            listing = "; ".join(f"{o.name} ({o.describe()}, default {o.default!r})" for o in declared) or "none"
            raise UsageError(f"{owner} has no option {key!r}. Its options: {listing}")
        label = "--" + name.replace("_", "-") if flags else f"option {name} of {owner}"
        out[name] = by_name[name].parse(raw, label)
    return out


@dataclass
class HeadSpec:
    """A head for one task.

    build(config: magtask.contracts.BuildConfig) returns the head object; what the object must provide
    is its task's contract (magtask/contracts.py). `options` are the settings a user may give with
    `-o KEY=VALUE` (they reach build as config.options); `side_inputs` names what the head uses beyond
    the train split's codes and labels (keys of SIDE_INPUTS; empty: code-only).
    """

    name: str
    task: str
    build: Callable[..., Any]
    aliases: tuple[str, ...] = ()
    description: str = ""
    consumes: str = "latents"  # "latents" (continuous, quantized) or "indices" (token ids)
    options: tuple[Option, ...] = ()
    side_inputs: tuple[str, ...] = ()
    package: str = ""  # filled in by the registry: the distribution that registered it
    version: str = ""

    def problems(self) -> list[str]:
        """What is missing or malformed, as short phrases (empty when the spec is usable)."""
        out = []
        if not isinstance(self.name, str) or not self.name:
            out.append("no name")
        if not isinstance(self.task, str) or not self.task:
            out.append("no task")
        if not callable(self.build):
            out.append("build is not callable")
        if self.consumes not in CONSUMES:
            out.append(f"consumes must be one of {', '.join(CONSUMES)}, not {self.consumes!r}")
        if isinstance(self.aliases, str):
            out.append("aliases must be a tuple of names, not a string")
        if isinstance(self.side_inputs, str):
            out.append("side_inputs must be a tuple of names, not a string")
        else:
            unknown = [s for s in self.side_inputs if s not in SIDE_INPUTS]
            if unknown:
                out.append(f"unknown side input(s) {', '.join(map(repr, unknown))} (known: {', '.join(SIDE_INPUTS)})")
        if not all(isinstance(o, Option) for o in self.options):
            out.append("options must be Option(...) objects")
        else:
            for o in self.options:
                out.extend(o.problems())
        return out

    def row(self) -> dict:
        """What list-heads shows (and --json prints)."""
        return {"name": self.name, "task": self.task, "aliases": list(self.aliases), "package": self.package,
                "version": self.version, "description": self.description, "consumes": self.consumes,
                "side_inputs": list(self.side_inputs), "options": [o.row() for o in self.options]}


@dataclass
class TaskSpec:
    """A task: run(ctx) trains/fits ctx.head on codes, evaluates it, writes pictures, returns metrics.

    options: the task's own settings (each a flag of `magtask run`, or `--set KEY=VALUE` for a
    plugin's task); provides: the data side inputs (DATA_SIDE_INPUTS) it can hand a head that declares them.
    """

    name: str
    run: Callable[[Any], dict]
    description: str = ""
    options: tuple[Option, ...] = ()
    provides: tuple[str, ...] = ()
    package: str = ""
    version: str = ""

    def problems(self) -> list[str]:
        out = []
        if not isinstance(self.name, str) or not self.name:
            out.append("no name")
        if not callable(self.run):
            out.append("run is not callable")
        if not all(isinstance(o, Option) for o in self.options):
            out.append("options must be Option(...) objects")
        return out
