"""A folder of the user's videos (DIR/<class name>/<video>) to a magtask dataset file.

Two passes, one video in memory at a time: the first decodes every video (video_files.read_video:
checked, resampled where allowed) and hashes its pixels, dropping exact duplicates (the first in
sorted order is kept); the second decodes the kept videos again and streams them into the
TensorWriter, which renames the file into place only once complete. Nothing is written when any
video is refused.

The file is our own format (format=magtask-dataset), as `data generate` writes it but without
ground truth: labels (N,) int64 (index into the class_names metadata, the class folders sorted by
name), split (N,) uint8 (stratified, seed 0), videos (N, T, 3, S, S) uint8, in the order of
`source_files` (class, then name). Each class needs at least MIN_PER_CLASS videos after
deduplication, so that the train, val and test splits each hold one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager

import numpy as np

from magtask.data.splits import SPLIT_NAMES, stratified_split
from magtask.data.video_files import VideoFile, find_videos, read_video
from magtask.errors import MagtaskError
from magtask.tensorfile import TensorWriter

IMPORTER_VERSION = "1"
MIN_PER_CLASS = 3
SPLIT_SEED = 0


@dataclass
class Imported:
    path: Path
    class_names: list[str]
    counts: list[int]  # videos per class, after deduplication
    duplicates: list[tuple[str, str]]  # (dropped, the video it repeats)
    hash: str

    @property
    def n(self) -> int:
        return sum(self.counts)


@contextlib.contextmanager
def _no_bar(description: str, total: int):
    yield lambda *a, **k: None


def _check_counts(root: Path, names: list[str], labels: list[int], after: str = "") -> None:
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(names))
    for name, n in zip(names, counts.tolist()):
        if n < MIN_PER_CLASS:
            raise MagtaskError(f"{root / name}: {n} video{'s' * (n != 1)}{after}; a class needs at least "
                               f"{MIN_PER_CLASS} (one each for the train, val and test splits)")


def import_folder(root: str | Path, out: str | Path, frames: int = 16, size: int = 64,
                  resample_frames: bool = False, resample_size: bool = False,
                  bar: Callable[[str, int], ContextManager[Callable]] = _no_bar) -> Imported:
    """Write the dataset atomically; `bar(description, total)` is a progress context (console.progress_bar)."""
    root, out = Path(root), Path(out)
    names, videos = find_videos(root)
    if len(names) < 2:
        raise MagtaskError(f"{root}: one class folder ({names[0]}); a dataset needs at least 2 classes")
    _check_counts(root, names, [v.label for v in videos])

    def decoded(v: VideoFile) -> tuple[np.ndarray, bytes]:
        x = read_video(v, frames, size, resample_frames, resample_size)
        return x, hashlib.sha256(x.tobytes()).digest()

    first: dict[bytes, str] = {}
    kept: list[tuple[VideoFile, bytes]] = []
    duplicates: list[tuple[str, str]] = []
    with bar("checking", len(videos)) as tick:
        for v in videos:
            _, key = decoded(v)
            if key in first:
                duplicates.append((v.name, first[key]))
            else:
                first[key] = v.name
                kept.append((v, key))
            tick()
    if duplicates:
        _check_counts(root, names, [v.label for v, _ in kept], after=" once duplicates are dropped")

    labels = np.array([v.label for v, _ in kept], dtype=np.int64)
    split = stratified_split(labels, SPLIT_SEED)
    meta = {
        "format": "magtask-dataset", "format_version": "1", "source": "import",
        "importer_version": IMPORTER_VERSION, "seed": str(SPLIT_SEED), "frames": str(frames), "size": str(size),
        "class_names": json.dumps(names), "split_names": json.dumps(list(SPLIT_NAMES)),
        "source_files": json.dumps([v.name for v, _ in kept]),
    }
    layout = {"labels": (labels.shape, labels.dtype), "split": (split.shape, split.dtype),
              "videos": ((len(kept), frames, 3, size, size), np.uint8)}
    with bar("importing", len(kept)) as tick, TensorWriter(out, layout, meta) as w:
        w.write("labels", labels)
        w.write("split", split)
        for v, key in kept:
            x, again = decoded(v)
            if again != key:
                raise MagtaskError(f"{v.path}: changed while it was being imported")
            w.write("videos", x[None])
            tick()
    return Imported(out, names, np.bincount(labels, minlength=len(names)).tolist(), duplicates,
                    w.metadata["content_hash"])
