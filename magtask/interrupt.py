"""What an interrupted command (Ctrl-C) kept, so the CLI can say so in one line.

Code that leaves a usable file behind on purpose (a finished code cache, a training-state
checkpoint) calls `kept(what)`; everything else is written to a temp name and renamed into place
only when complete, so an interruption leaves nothing of it.
"""

from __future__ import annotations

_kept: list[str] = []


def kept(what: str) -> None:
    """Record a file (or dir) that stays valid if the command is interrupted from now on."""
    if what not in _kept:
        _kept.append(what)


def message() -> str:
    """'interrupted: nothing written' or 'interrupted: kept A; B'."""
    return "interrupted: kept " + "; ".join(_kept) if _kept else "interrupted: nothing written"
