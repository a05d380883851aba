"""One module per command group; each holds a Typer app or plain command functions."""
