"""The plugin contract: a few one-line hooks, each handed a `register` callable.

A plugin module (found through the "magtask" entry-point group) implements any of these with
`@magtask.hookimpl`. See docs/plugins.md.
"""

import pluggy

hookspec = pluggy.HookspecMarker("magtask")
hookimpl = pluggy.HookimplMarker("magtask")


@hookspec
def register_heads(register):
    """Call register(HeadSpec(...)) once per head this plugin provides."""


@hookspec
def register_tasks(register):
    """Call register(TaskSpec(...)) once per task this plugin provides."""


@hookspec
def register_commands(app):
    """Add Typer sub-commands to the `magtask` app (app.command() / app.add_typer())."""
