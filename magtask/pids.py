"""Whether the process that owns a temp file or dir (its PID is in the name) still runs."""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """True if a process with this PID exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid > 0  # exists, owned by someone else (or an absurd PID: treated as foreign)
    return True
