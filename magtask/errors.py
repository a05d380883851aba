"""The two errors the command line turns into one readable line and an exit code."""


class MagtaskError(Exception):
    """A failure the user can act on (bad file, missing run dir, ...): exit 1, one line."""


class UsageError(MagtaskError):
    """The command was called wrongly (bad option value, unknown head): exit 2, one line."""
