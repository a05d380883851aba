"""magtask: downstream tasks on MAGVIT-style video-tokenizer codes.

The public names a plugin imports come from here (see docs/plugins.md).
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("magtask")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

from magtask.errors import MagtaskError, UsageError
from magtask.hookspecs import hookimpl
from magtask.specs import CLASS_NAMES, HeadSpec, TaskSpec

__all__ = [
    "CLASS_NAMES",
    "HeadSpec",
    "MagtaskError",
    "TaskSpec",
    "UsageError",
    "__version__",
    "hookimpl",
]
