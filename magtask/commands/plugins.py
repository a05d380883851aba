"""`magtask list-heads` and `magtask plugins`: what the registry found, and what failed."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.table import Table

from magtask.console import err, out
from magtask.registry import get_registry


def _warn_failures(registry) -> None:
    for f in registry.failures:
        err.print(f"[yellow]warning:[/yellow] {f.line()}", soft_wrap=True, highlight=False, markup=True)


def list_heads(head: Optional[str] = typer.Argument(None, help="One head's name or alias: show its options."),
               as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List every head: name, task, aliases, package and version, side inputs (what it uses beyond the
    codes; none = code-only) and options (`magtask run TASK HEAD -o KEY=VALUE`)."""
    registry = get_registry()
    _warn_failures(registry)
    rows = registry.head_rows()
    if head is not None:
        spec = registry.head_named(head)
        row = spec.row()
        if as_json:
            print(json.dumps(row, indent=2))
            return
        out.print(f"[bold]{row['name']}[/bold] ({row['task']}; {row['package']} {row['version']}): {row['description']}",
                  soft_wrap=True, highlight=False)
        out.print(f"side inputs: {', '.join(row['side_inputs']) or 'none (code-only)'}", highlight=False)
        table = Table(title="options (-o KEY=VALUE)")
        for col in ("option", "values", "default", "help"):
            table.add_column(col)
        for o in row["options"]:
            table.add_row(o["name"], o["values"], repr(o["default"]), o["help"])
        out.print(table)
        return
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="magtask heads")
    for col in ("name", "task", "aliases", "side inputs", "package", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["task"], ", ".join(r["aliases"]), ", ".join(r["side_inputs"]) or "code-only",
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
