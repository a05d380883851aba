"""`magtask list-heads` and `magtask plugins`: what the registry found, and what failed."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from magtask.console import err, out
from magtask.registry import get_registry


def _warn_failures(registry) -> None:
    for f in registry.failures:
        err.print(f"[yellow]warning:[/yellow] {f.line()}", soft_wrap=True, highlight=False, markup=True)


def list_heads(as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table.")) -> None:
    """List every head: name, task, aliases, the package that provides it, its version."""
    registry = get_registry()
    _warn_failures(registry)
    rows = registry.head_rows()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="magtask heads")
    for col in ("name", "task", "aliases", "consumes", "package", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["task"], ", ".join(r["aliases"]), r["consumes"],
                      f"{r['package']} {r['version']}", r["description"])
    out.print(table)


def plugins(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List plugin distributions, what each registered, and the plugins that failed."""
    registry = get_registry()
    rows = [{"name": p.name, "package": p.package, "version": p.version, "loaded": p.loaded,
             "heads": p.heads, "tasks": p.tasks, "commands": p.commands} for p in registry.plugins.values()]
    failures = [{"package": f.package, "plugin": f.plugin, "error": f.error} for f in registry.failures]
    if as_json:
        print(json.dumps({"plugins": rows, "failures": failures}, indent=2))
        return
    table = Table(title="magtask plugins")
    for col in ("plugin", "package", "heads", "tasks"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"] + ("" if r["loaded"] else " [red](failed)[/red]"), f"{r['package']} {r['version']}",
                      ", ".join(r["heads"]), ", ".join(r["tasks"]))
    out.print(table)
    _warn_failures(registry)
