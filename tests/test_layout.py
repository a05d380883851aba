"""The built-in plugins' layout keeps its promises: blocks import no head or task, heads import no
task, and every built-in entry point names a module of plugins/magtask_plugins."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLUGINS = REPO / "plugins" / "magtask_plugins"


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_blocks_import_no_head_or_task_and_heads_no_task():
    for sub, forbidden in (("blocks", ("magtask_plugins.heads", "magtask_plugins.tasks")),
                           ("heads", ("magtask_plugins.tasks",))):
        for path in (PLUGINS / sub).rglob("*.py"):
            bad = [m for m in _imports(path) if m.startswith(forbidden)]
            assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_every_builtin_entry_point_is_a_module_of_the_plugins_folder():
    eps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["magtask"]
    for name, target in eps.items():
        module = target.split(":")[0]
        assert module.startswith("magtask_plugins."), (name, target)
        rel = Path(*module.split(".")[1:]).with_suffix(".py")
        assert (PLUGINS / rel).is_file(), f"entry point {name} = {target}: no {rel} under plugins/magtask_plugins"
