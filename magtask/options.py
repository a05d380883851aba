"""Task options: one parser and validator for `magtask run`'s flags and `--set KEY=VALUE`.

Each option a task declares (TaskSpec.options: name -> default) has a rule: a type and a lower
bound. The core's flags have their rules here; another option's type follows from its default
(bool, int, float or str; a None default takes any JSON value). A flag's value (already typed by
Typer) and a `--set` value (text, parsed by the rule) go through the same `check`, so
`--set train_per_class=-3` is refused exactly like `--train-per-class -3`: a UsageError (exit 2).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from magtask.errors import UsageError


@dataclass(frozen=True)
class Rule:
    kind: type  # int, float, bool, str, or object (any JSON value)
    min: float | None = None


RULES = {"train_per_class": Rule(int, 1), "samples": Rule(int, 1), "class_name": Rule(str),
         "past": Rule(int, 1), "future": Rule(int, 1)}
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def rule_for(name: str, default: Any) -> Rule:
    if name in RULES:
        return RULES[name]
    for kind in (bool, int, float, str):  # bool first: it is an int too
        if isinstance(default, kind):
            return Rule(kind)
    return Rule(object)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def parse(name: str, text: str, rule: Rule) -> Any:
    """A `--set` value from its text, by the option's rule."""
    try:
        if rule.kind is bool:
            if text.lower() not in _TRUE + _FALSE:
                raise ValueError
            return text.lower() in _TRUE
        if rule.kind in (int, float):
            return rule.kind(text)
    except ValueError:
        kind = {bool: "true or false", int: "an integer", float: "a number"}[rule.kind]
        raise UsageError(f"{flag(name)} must be {kind}, got {text!r}") from None
    if rule.kind is str:
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def check(name: str, value: Any, rule: Rule) -> Any:
    """The value if it has the rule's type and is in range; a UsageError otherwise."""
    if rule.kind is not object and value is not None:
        ok = isinstance(value, rule.kind) and not (rule.kind is int and isinstance(value, bool))
        if rule.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise UsageError(f"{flag(name)} must be {rule.kind.__name__}, got {value!r}")
        if rule.kind is float and not math.isfinite(value):
            raise UsageError(f"{flag(name)} must be a finite number, got {value!r}")
        if rule.min is not None and value < rule.min:
            raise UsageError(f"{flag(name)} must be at least {rule.min:g}, got {value!r}")
    return value


def task_options(task: str, declared: dict[str, Any], flags: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """The task's options: its defaults, updated by the flags given (None = not given) and by
    `--set KEY=VALUE` pairs (KEY with - or _), every given value checked by its rule."""
    given = {k: v for k, v in flags.items() if v is not None}
    texts = {}
    for pair in sets:
        if "=" not in pair:
            raise UsageError(f"--set takes KEY=VALUE, got {pair!r}")
        key, text = pair.split("=", 1)
        texts[key.strip().replace("-", "_")] = text
    unknown = [k for k in {**given, **texts} if k not in declared]
    if unknown:
        takes = ", ".join(flag(k) for k in declared) or "none"
        raise UsageError(f"{', '.join(flag(k) for k in unknown)} does not apply to task {task!r} (it takes: {takes})")
    for key, text in texts.items():
        given[key] = parse(key, text, rule_for(key, declared[key]))
    return {**declared, **{k: check(k, v, rule_for(k, declared[k])) for k, v in given.items()}}
