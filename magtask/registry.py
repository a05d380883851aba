"""The plugin registry: entry points in the "magtask" group, loaded into one pluggy PluginManager.

Built-in heads and tasks come through this project's own entry points, exactly like a third
party's. A plugin that fails to import, raises in a hook, registers a malformed spec or a name
another package already took is recorded as a failure (distribution, what went wrong) and skipped;
everything else still works. MAGTASK_PLUGINS=name,... loads only the named third-party plugins
(by entry-point or distribution name; an empty value loads none); the built-ins always load.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

import pluggy

from magtask import hookspecs
from magtask.errors import UsageError
from magtask.specs import HeadSpec, TaskSpec

GROUP = "magtask"
BUILTIN_DIST = "magtask"


@dataclass
class Failure:
    package: str
    plugin: str
    error: str

    def line(self) -> str:
        return f"plugin {self.plugin!r} from {self.package}: {self.error}"


@dataclass
class PluginInfo:
    name: str  # entry-point name
    package: str
    version: str
    heads: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    commands: bool = False
    loaded: bool = True


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def _wanted() -> set[str] | None:
    raw = os.environ.get("MAGTASK_PLUGINS")
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


class Registry:
    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.heads: dict[str, HeadSpec] = {}
        self.tasks: dict[str, TaskSpec] = {}
        self.aliases: dict[str, str] = {}  # alias -> head name
        self.failures: list[Failure] = []
        self.plugins: dict[str, PluginInfo] = {}  # plugin (entry-point) name -> info

    # -- loading ---------------------------------------------------------------------------
    def load_entry_points(self) -> "Registry":
        wanted = _wanted()
        for ep in sorted(entry_points(group=GROUP), key=lambda e: (e.dist.name != BUILTIN_DIST if e.dist else True, e.name)):
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            if dist != BUILTIN_DIST and wanted is not None and not ({ep.name, dist} & wanted):
                continue
            self.add_module_from(lambda ep=ep: ep.load(), ep.name, dist, version)
        for hook, kind in ((self.pm.hook.register_tasks, "task"), (self.pm.hook.register_heads, "head")):
            for impl in reversed(hook.get_hookimpls()):  # pluggy lists last-registered first
                self._call(impl, kind)
        return self

    def add_module_from(self, load, name: str, package: str, version: str) -> None:
        if name in self.plugins:
            self.failures.append(Failure(package, name, f"plugin name {name!r} already used by {self.plugins[name].package}"))
            return
        try:
            module = load()
            self.pm.register(module, name=name)
        except Exception as e:  # isolate: any failure in a plugin's import or hook signatures
            self.failures.append(Failure(package, name, f"failed to load: {_one_line(e)}"))
            self.plugins[name] = PluginInfo(name, package, version, loaded=False)
            return
        self.plugins[name] = PluginInfo(name, package, version)

    def _call(self, impl, kind: str) -> None:
        info = self.plugins[impl.plugin_name]
        pending: list[Any] = []
        try:
            impl.function(register=pending.append)
        except Exception as e:
            self.failures.append(Failure(info.package, info.name, f"register_{kind}s raised {_one_line(e)}"))
            return
        for spec in pending:
            self._add(spec, kind, info)

    def _add(self, spec: Any, kind: str, info: PluginInfo) -> None:
        fail = lambda msg: self.failures.append(Failure(info.package, info.name, msg))  # noqa: E731
        want = HeadSpec if kind == "head" else TaskSpec
        if not isinstance(spec, want):
            return fail(f"registered a {type(spec).__name__}, expected a {want.__name__}")
        problems = spec.problems()
        if problems:
            return fail(f"{kind} {getattr(spec, 'name', '?')!r} skipped: {'; '.join(problems)}")
        spec.package, spec.version = info.package, info.version
        if kind == "task":
            if spec.name in self.tasks:
                return fail(f"task {spec.name!r} skipped: already registered by {self.tasks[spec.name].package}")
            self.tasks[spec.name] = spec
            info.tasks.append(spec.name)
            return
        taken = [n for n in (spec.name, *spec.aliases) if n in self.heads or n in self.aliases]
        if taken:
            owner = self.heads.get(taken[0]) or self.heads[self.aliases[taken[0]]]
            return fail(f"head {spec.name!r} skipped: name {taken[0]!r} already taken by {owner.package} ({owner.name})")
        spec.aliases = tuple(spec.aliases)
        self.heads[spec.name] = spec
        for a in spec.aliases:
            self.aliases[a] = spec.name
        info.heads.append(spec.name)

    def add_commands(self, app) -> None:
        for impl in reversed(self.pm.hook.register_commands.get_hookimpls()):
            info = self.plugins[impl.plugin_name]
            try:
                impl.function(app=app)
                info.commands = True
            except Exception as e:
                self.failures.append(Failure(info.package, info.name, f"register_commands raised {_one_line(e)}"))

    # -- lookups -----------------------------------------------------------------------------
    def task(self, name: str) -> TaskSpec:
        if name in self.tasks:
            return self.tasks[name]
        close = difflib.get_close_matches(name, list(self.tasks), n=3)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise UsageError(f"unknown task {name!r}.{hint} Tasks: {', '.join(sorted(self.tasks)) or 'none'}")

    def head(self, task: str, name: str) -> HeadSpec:
        """Resolve a head name or alias for a task, with close matches when it is unknown."""
        self.task(task)
        full = self.aliases.get(name, name)
        spec = self.heads.get(full)
        if spec is None:
            names = list(self.heads) + list(self.aliases)
            close = [self.aliases.get(c, c) for c in difflib.get_close_matches(name, names, n=3, cutoff=0.5)]
            close = list(dict.fromkeys(close))
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            failed = self.failed_plugins(name)
            if failed:
                raise UsageError(f"head {name!r} is not available: " + "; ".join(f.line() for f in failed))
            listing = ", ".join(f"{h.name} ({h.task})" for h in self.heads.values())
            broken = f" Plugins that failed to load: {'; '.join(f.line() for f in self.failures)}" if self.failures else ""
            raise UsageError(f"unknown head {name!r}.{hint} Heads (see `magtask list-heads`): {listing}.{broken}")
        if spec.task != task:
            mine = ", ".join(h.name for h in self.heads.values() if h.task == task) or "none"
            raise UsageError(f"head {spec.name!r} is a {spec.task} head, not a {task} head. {task} heads: {mine}")
        return spec

    def failed_plugins(self, head: str) -> list[Failure]:
        """The failed plugins whose plugin or package name matches `head`: the likely providers of it."""
        def norm(x: str) -> str:
            return x.lower().replace("_", "-").removeprefix("magtask-")

        return [f for f in self.failures if norm(head) in (norm(f.plugin), norm(f.package))
                or norm(f.plugin) in norm(head)]

    def head_named(self, name: str) -> HeadSpec:
        """A head by name or alias, whatever its task."""
        spec = self.heads.get(self.aliases.get(name, name))
        if spec is None:
            tasks = {h.task for h in self.heads.values()} or {""}
            self.head(sorted(tasks)[0], name)  # raises the unknown-head error with its hints
        return spec

    def head_rows(self) -> list[dict]:
        return [h.row() for h in sorted(self.heads.values(), key=lambda h: (h.task, h.name))]


@lru_cache(maxsize=1)
def get_registry() -> Registry:
    return Registry().load_entry_points()
