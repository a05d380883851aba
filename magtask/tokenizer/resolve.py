"""One door for every command that needs a tokenizer: ours, or a magvit2-pytorch checkpoint.

`--tokenizer FILE` may be our safetensors checkpoint, a magvit2-pytorch `.pt` (its save(), its
trainer's, or a hand-written dict; read without executing pickled code) or one converted with
`magtask tokenizer convert`. `--tokenizer-config` (a preset such as seed-2026-01, or a JSON file)
gives the architecture of a magvit2 checkpoint that carries none.
"""

from __future__ import annotations

import os

from magtask.errors import UsageError


def open_tokenizer(path: str | os.PathLike | None = None, config: str | os.PathLike | None = None):
    from magtask.tokenizer.io import load_tokenizer
    from magtask.tokenizer.magvit2_load import is_magvit2_checkpoint, load_magvit2

    if path is not None and is_magvit2_checkpoint(path):
        return load_magvit2(path, config)
    if config is not None:
        raise UsageError("--tokenizer-config applies only to magvit2-pytorch checkpoints "
                         "(.pt files, or ones converted by `magtask tokenizer convert`)")
    return load_tokenizer(path)


def hash_of(model) -> str:
    """The content hash that names a tokenizer in code caches and metrics.json."""
    from magtask.tokenizer.io import tokenizer_hash
    from magtask.tokenizer.magvit2 import Magvit2Tokenizer
    from magtask.tokenizer.magvit2_load import magvit2_hash

    return magvit2_hash(model) if isinstance(model, Magvit2Tokenizer) else tokenizer_hash(model)
