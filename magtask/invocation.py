"""The command line this process is running, as `magtask.cli.main` received it (not sys.argv, which
is another program's when main(argv) is called from Python): what cards record as their command."""

from __future__ import annotations

import shlex

_args: list[str] = []


def set_args(args: list[str]) -> None:
    """Called by magtask.cli.main with the arguments after `magtask`."""
    _args[:] = [str(a) for a in args]


def command_from(word: str) -> str | None:
    """'magtask WORDS-BEFORE word ARGS...' quoted for a shell, or None when `word` was not on the line."""
    if word not in _args:
        return None
    return "magtask " + " ".join(shlex.quote(a) for a in _args)
