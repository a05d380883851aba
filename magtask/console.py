"""The rich consoles every command prints through: results to stdout, progress and errors to stderr."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

out = Console()
err = Console(stderr=True)


@contextmanager
def progress_bar(description: str, total: int | None, disable: bool = False) -> Iterator["Tick"]:
    """with progress_bar("encoding", n) as tick: tick(advance=k, info="loss 0.1")  (drawn on stderr)"""
    prog = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                    console=err, disable=disable, transient=False)
    with prog:
        task = prog.add_task(description, total=total, info="")
        yield Tick(prog, task)


class Tick:
    def __init__(self, prog: Progress, task):
        self._prog, self._task = prog, task

    def __call__(self, advance: float = 1, info: str | None = None, completed: float | None = None) -> None:
        kw = {"info": info} if info is not None else {}
        if completed is not None:
            self._prog.update(self._task, completed=completed, **kw)
        else:
            self._prog.update(self._task, advance=advance, **kw)
