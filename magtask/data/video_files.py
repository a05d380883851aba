"""Reading the user's own videos: DIR/<class name>/<video>, a video being a .gif, an .mp4 or a folder of
numbered .png frames.

    find_videos(root)                  -> (class names, sorted; [VideoFile, ...] sorted by class, then name)
    read_video(video, frames, size, resample_frames, resample_size)
                                       -> (T, 3, S, S) uint8 RGB, checked and (where allowed) resampled

GIF and PNG are decoded with Pillow (PNG through imageio), MP4 with PyAV (FFmpeg). Grayscale, palette
and RGBA inputs become RGB (alpha is composited on white: the videos have a light background).
Time is resampled by taking the nearest frame at evenly spaced times (a one-frame GIF, what GIF
writers make of a still video, becomes T copies of it); space by Pillow's
antialiased bilinear resize to S x S (frames that are not square are stretched). Frames are shrunk
as they are decoded, so one long, large video costs T x S x S x 3 bytes per frame, not its full size.
Every problem is a MagtaskError naming the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from magtask.errors import MagtaskError

KINDS = ".gif, .mp4 or a folder of numbered .png frames"


@dataclass(frozen=True)
class VideoFile:
    path: Path
    label: int
    name: str  # path relative to the import root, with "/" (what errors and the metadata show)
    kind: str  # "gif", "mp4" or "png"


def _visible(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=lambda p: p.name)


def find_videos(root: str | Path) -> tuple[list[str], list[VideoFile]]:
    """Class folders (sorted by name) and their videos; refuses anything that is not a video."""
    root = Path(root)
    if not root.exists():
        raise MagtaskError(f"{root}: no such folder")
    if not root.is_dir():
        raise MagtaskError(f"{root}: not a folder (expected DIR/<class name>/<video>)")
    entries = _visible(root)
    for p in entries:
        if not p.is_dir():
            raise MagtaskError(f"{p}: a file at the top of {root}; videos go in {root}/<class name>/")
    if not entries:
        raise MagtaskError(f"{root}: no class folders (expected {root}/<class name>/<video>: {KINDS})")
    names, videos = [p.name for p in entries], []
    for label, folder in enumerate(entries):
        for p in _visible(folder):
            rel = f"{folder.name}/{p.name}"
            if p.is_dir():
                videos.append(VideoFile(p, label, rel, "png"))
            elif p.suffix.lower() in (".gif", ".mp4"):
                videos.append(VideoFile(p, label, rel, p.suffix.lower()[1:]))
            else:
                raise MagtaskError(f"{p}: not a video (a video is a {KINDS})")
    return names, videos


def _number_key(p: Path) -> tuple:
    """frame_2.png before frame_10.png: split the name into text and numbers."""
    return tuple((0, int(s), "") if s.isdigit() else (1, 0, s) for s in re.split(r"(\d+)", p.name))


def _rgb(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 from gray (H, W), gray+alpha, RGB or RGBA (alpha composited on white)."""
    f = np.asarray(frame)
    if f.ndim == 2:
        f = f[..., None]
    if f.dtype != np.uint8:
        raise ValueError(f"{f.dtype} pixels, not 8-bit")
    if f.shape[-1] in (2, 4):
        a = f[..., -1:].astype(np.float32) / 255.0
        f = np.round(f[..., :-1] * a + 255.0 * (1.0 - a)).astype(np.uint8)
    if f.shape[-1] == 1:
        f = np.repeat(f, 3, axis=-1)
    return f


def _gif_frames(path: Path) -> Iterator[np.ndarray]:
    """Frames as shown: GIF writers merge repeated frames into one of longer duration, so each frame
    is repeated round(duration / shortest duration) times (a still stretch keeps its length)."""
    from PIL import Image, ImageSequence

    with open(path, "rb") as fh:
        head = fh.read(6)
        fh.seek(-1, 2)
        tail = fh.read(1)
    if head not in (b"GIF87a", b"GIF89a"):
        raise MagtaskError(f"{path}: not a GIF file")
    if tail != b";":  # every complete GIF ends with its trailer byte; Pillow would stop silently
        raise MagtaskError(f"{path}: truncated GIF (no trailer at the end)")
    with Image.open(path) as im:
        shown = [(np.asarray(f.convert("RGBA")), float(f.info.get("duration") or 0)) for f in ImageSequence.Iterator(im)]
    unit = min((d for _, d in shown if d > 0), default=0.0)
    for frame, d in shown:
        for _ in range(max(1, round(d / unit)) if unit else 1):
            yield frame


def _mp4_frames(path: Path) -> Iterator[np.ndarray]:
    try:
        import av
    except ImportError:
        raise MagtaskError(f"{path}: reading .mp4 needs PyAV (pip install av)") from None

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise MagtaskError(f"{path}: no video stream")
        stream = container.streams.video[0]
        declared, n = stream.frames, 0
        for frame in container.decode(stream):
            n += 1
            yield frame.to_ndarray(format="rgb24")
    if declared and n < declared:
        raise MagtaskError(f"{path}: truncated video ({n} of {declared} frames decode)")


def _png_frames(folder: Path) -> Iterator[tuple[np.ndarray, Path]]:
    import imageio.v3 as iio

    files = sorted(_visible(folder), key=_number_key)
    if not files:
        raise MagtaskError(f"{folder}: an empty folder, not a video")
    for p in files:
        if p.is_dir() or p.suffix.lower() != ".png":
            raise MagtaskError(f"{p}: a frames folder holds only numbered .png files")
        yield iio.imread(p, plugin="pillow"), p


def _frames(video: VideoFile) -> Iterator[tuple[np.ndarray, Path]]:
    if video.kind == "png":
        yield from _png_frames(video.path)
    elif video.kind == "gif":
        for f in _gif_frames(video.path):
            yield f, video.path
    else:
        for f in _mp4_frames(video.path):
            yield f, video.path


def _resize(frame: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize((size, size), Image.BILINEAR))


def _decode(video: VideoFile, size: int | None) -> tuple[list[np.ndarray], tuple[int, ...] | None]:
    """The video's frames as (H, W, 3) RGB (each resized to size x size if size is given, as it is
    decoded) and the shape of its first frame as stored."""
    out, shape = [], None
    try:
        for raw, where in _frames(video):
            f = _rgb(raw)
            if shape is None:
                shape = f.shape
            elif f.shape != shape:
                raise MagtaskError(f"{where}: frame of {f.shape[1]}x{f.shape[0]}, the video's first is "
                                   f"{shape[1]}x{shape[0]}; all frames of a video must be one size")
            out.append(_resize(f, size) if size is not None and f.shape[:2] != (size, size) else f)
    except MagtaskError:
        raise
    except Exception as e:  # decoders raise OSError, ValueError, av.FFmpegError, SyntaxError (Pillow), ...
        first = getattr(e, "strerror", None) or (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise MagtaskError(f"{video.path}: unreadable {video.kind} video ({first})") from None
    if not out:
        raise MagtaskError(f"{video.path}: no frames")
    return out, shape


def _retime(frames: list[np.ndarray], n: int) -> list[np.ndarray]:
    """n frames at evenly spaced times (the nearest frame to each)."""
    return frames if len(frames) == n else [frames[i] for i in np.round(np.linspace(0, len(frames) - 1, n)).astype(int)]


def read_frames(video: VideoFile, frames: int | None = None, size: int | None = None) -> np.ndarray:
    """(T, 3, H, W) uint8 RGB as stored, resampled to `frames` frames and/or size x size where given."""
    out, _ = _decode(video, size)
    return np.stack(_retime(out, frames) if frames is not None else out).transpose(0, 3, 1, 2)


def video_file(path: str | Path) -> VideoFile:
    """One video (a .gif, an .mp4 or a folder of .png frames) at path, outside any import root."""
    path = Path(path)
    if path.is_dir():
        return VideoFile(path, -1, str(path), "png")
    if path.suffix.lower() in (".gif", ".mp4"):
        return VideoFile(path, -1, str(path), path.suffix.lower()[1:])
    raise MagtaskError(f"{path}: not a video (a video is a {KINDS})")


def read_video(video: VideoFile, frames: int, size: int, resample_frames: bool = False,
               resample_size: bool = False) -> np.ndarray:
    """(frames, 3, size, size) uint8 RGB. Without resample_*, a video of another geometry is refused."""
    out, shape = _decode(video, size if resample_size else None)
    n = len(out)
    h, w = shape[:2]
    bad_t, bad_s = n != frames and not resample_frames, (h, w) != (size, size) and not resample_size
    if bad_t or bad_s:
        hint = " ".join(opt for opt, bad in ((f"--frames {frames}", bad_t), (f"--size {size}", bad_s)) if bad)
        raise MagtaskError(f"{video.path}: {n} frame{'s' * (n != 1)} of {w}x{h}, the dataset takes {frames} frames of "
                           f"{size}x{size} (pass {hint} to resample)")
    return np.stack(_retime(out, frames)).transpose(0, 3, 1, 2)
