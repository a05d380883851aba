"""The `magtask` command line: thin Typer commands that call the core and print with rich.

Exit codes: 0 success, 2 usage error, 1 any other failure. Errors are one readable line;
`--debug` (anywhere on the line) or MAGTASK_DEBUG=1 shows the traceback instead.
"""

from __future__ import annotations

import os
import sys

import typer

from magtask.commands import apply, codes, convert, data, plugins, render, run, tokenizer
from magtask.console import err
from magtask.errors import MagtaskError, UsageError

app = typer.Typer(
    name="magtask",
    help="Downstream tasks on MAGVIT-style video-tokenizer codes.\n\n"
    "Start with `magtask run classify mlp`: it generates the default dataset, encodes it with the "
    "shipped tokenizer, trains a head and prints held-out scores beside their baselines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data.app, name="data")
tokenizer.app.command("convert")(convert.convert)
app.add_typer(tokenizer.app, name="tokenizer")
app.add_typer(codes.app, name="codes")
app.command("list-heads")(plugins.list_heads)
app.command("plugins")(plugins.plugins)
app.command("run", context_settings={"help_option_names": ["--help", "-h"]})(run.run)
app.command("render")(render.render)
app.command("apply")(apply.apply)
app.command("sample")(apply.sample)


def _fail(message: str, code: int) -> None:
    err.print(f"[bold red]Error:[/bold red] {message}", soft_wrap=True, highlight=False, markup=True)
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    from magtask.loop import flush_denormals

    flush_denormals()  # before torch starts its threads, so that they inherit it
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("MAGTASK_DEBUG") == "1"
    args = [a for a in args if a != "--debug"]
    from magtask import invocation

    invocation.set_args(args)
    from magtask.registry import get_registry

    registry = get_registry()
    registry.add_commands(app)
    try:
        # standalone mode: Typer itself prints usage errors (exit 2) and handles --help; our own
        # errors and anything unexpected come out here as exceptions.
        app(args=args, prog_name="magtask")
    except UsageError as e:
        if debug:
            raise
        _fail(str(e), 2)
    except MagtaskError as e:
        if debug:
            raise
        _fail(str(e), 1)
    except SystemExit as e:
        if e.code != 130:  # Typer turns Ctrl-C (KeyboardInterrupt) into a silent exit 130
            raise
        from magtask.interrupt import message

        err.print(message(), soft_wrap=True, highlight=False, markup=False)
        # Leave without interpreter finalization: everything the command wrote was already cleaned
        # up or kept on the way out, and under load CPython can turn the handled Ctrl-C into a
        # death by SIGINT at exit (return code -2 instead of 130).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    except Exception as e:
        if debug:
            raise
        text = str(e).strip().splitlines()
        _fail(f"{type(e).__name__}: {text[0] if text else ''} (run with --debug for the traceback)", 1)
