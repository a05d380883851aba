"""magtask: downstream tasks on MAGVIT-style video-tokenizer codes.

The public names a plugin imports come from here (see docs/plugins.md).
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("magtask")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

from magtask.contracts import BuildConfig, ClassifyHead, GenerateHead, PredictHead, TrainData
from magtask.errors import MagtaskError, UsageError
from magtask.hookspecs import hookimpl
from magtask.specs import SIDE_INPUTS, HeadSpec, Option, TaskSpec

__all__ = [
    "BuildConfig",
    "ClassifyHead",
    "GenerateHead",
    "HeadSpec",
    "MagtaskError",
    "Option",
    "PredictHead",
    "SIDE_INPUTS",
    "TaskSpec",
    "TrainData",
    "UsageError",
    "__version__",
    "hookimpl",
]
