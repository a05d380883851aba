"""Where magtask keeps what it generates: MAGTASK_CACHE_DIR, else $XDG_CACHE_HOME/magtask."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    env = os.environ.get("MAGTASK_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "magtask"
