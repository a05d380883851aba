"""Pictures: dataset contact sheets, and (for runs) sample grids as gif / mp4 / png via imageio."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont



def ink(videos: np.ndarray) -> np.ndarray:
    """(N, T, 3, H, W) -> (N, T, H, W) in [0, 1]: trajectory_eval.ink scaled so each video's darkest ink is 1."""
    from magtask.trajectory_eval import ink as raw_ink

    d = raw_ink(videos).numpy()
    peak = d.reshape(len(d), -1).max(axis=1).clip(min=1e-6)
    return d / peak[:, None, None, None]


def trails(videos: np.ndarray) -> np.ndarray:
    """(N, T, 3, H, W) uint8 -> (N, H, W, 3) uint8: each video's dot over all frames, blue early, red late."""
    a = ink(videos)
    n, t, h, w = a.shape
    img = np.ones((n, h, w, 3), np.float32)
    for k in range(t):
        s = k / max(t - 1, 1)
        colour = np.array([0.1 + 0.85 * s, 0.15, 0.95 - 0.85 * s], np.float32)
        ak = a[:, k, :, :, None]
        img = img * (1 - ak) + colour * ak
    return (img * 255 + 0.5).astype(np.uint8)


def labelled_grid(rows: list[np.ndarray], labels: list[str], scale: int = 2, pad: int = 4) -> np.ndarray:
    """rows: each (K, H, W, 3) uint8 -> one (rows*H', label + K*W', 3) image with a label per row."""
    k = max(len(r) for r in rows)
    h, w = rows[0].shape[1] * scale, rows[0].shape[2] * scale
    label_w = 90
    sheet = np.full((len(rows) * (h + pad) + pad, label_w + k * (w + pad) + pad, 3), 255, np.uint8)
    for i, r in enumerate(rows):
        for j, tile in enumerate(r):
            y, x = pad + i * (h + pad), label_w + pad + j * (w + pad)
            sheet[y:y + h, x:x + w] = np.kron(tile, np.ones((scale, scale, 1), np.uint8))
    im = Image.fromarray(sheet)
    draw = ImageDraw.Draw(im)
    font = ImageFont.load_default()
    for i, text in enumerate(labels):
        draw.text((6, pad + i * (h + pad) + h // 2 - 6), text, fill=(0, 0, 0), font=font)
    return np.asarray(im)


def trail_sheet(ds, per_class: int = 6, split: str = "test") -> np.ndarray:
    """A row per class of `per_class` trail tiles from one split of a Dataset."""
    idx = ds.indices(split)
    rows, labels = [], []
    for c, name in enumerate(ds.class_names):
        pick = idx[ds.labels[idx] == c][:per_class]
        if len(pick):
            rows.append(trails(np.asarray(ds.videos[np.sort(pick)])))
            labels.append(name)
    return labelled_grid(rows, labels)


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write a PNG atomically (temp file + rename)."""
    import imageio.v3 as iio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    iio.imwrite(tmp, image, extension=path.suffix)
    os.replace(tmp, path)


def confusion_image(matrix, names, cell: int = 48) -> np.ndarray:
    """A confusion matrix (rows true, columns predicted) as an RGB image with counts in the cells."""
    m = np.asarray(matrix, dtype=float)
    k = len(names)
    left, top = 80, 40
    im = Image.new("RGB", (left + k * cell + 8, top + k * cell + 8), "white")
    draw = ImageDraw.Draw(im)
    font = ImageFont.load_default()
    rows = m.sum(axis=1, keepdims=True).clip(min=1)
    for i in range(k):
        draw.text((4, top + i * cell + cell // 2 - 6), names[i], fill="black", font=font)
        draw.text((left + i * cell + 2, top - 14), names[i][:8], fill="black", font=font)
        for j in range(k):
            frac = m[i, j] / rows[i, 0]
            shade = int(255 - 200 * frac)
            x, y = left + j * cell, top + i * cell
            draw.rectangle([x, y, x + cell - 2, y + cell - 2], fill=(shade, shade, 255))
            draw.text((x + 6, y + cell // 2 - 6), str(int(m[i, j])), fill="black" if frac < 0.6 else "white", font=font)
    draw.text((left, 4), "predicted ->   (rows: true class)", fill="black", font=font)
    return np.asarray(im)


# -- run samples: gif / mp4 / png grids ------------------------------------------------------------
# A run dir that holds samples has samples.safetensors with (at least)
#   videos  (N, T, 3, H, W) uint8    what the head produced
#   labels  (N,) int                 the class of each (requested, or true for predict runs; -1: none)
#   truth   (N, T, 3, H, W) uint8    optional: the real videos, shown beside `videos`
#   metadata class_names             JSON list, in label order (without it, rows are named by number)
SAMPLES_FILE = "samples.safetensors"
RENDER_FORMATS = ("gif", "mp4", "png")


def _upscale(tiles: np.ndarray, scale: int) -> np.ndarray:
    """(..., H, W, 3) -> (..., H*scale, W*scale, 3), nearest neighbour."""
    return tiles.repeat(scale, axis=-3).repeat(scale, axis=-2) if scale > 1 else tiles


def _pairs(truth: np.ndarray, pred: np.ndarray, gap: int = 2) -> np.ndarray:
    """(K, H, W, 3) twice -> (K, H, 2W+gap, 3): truth left, prediction right, a dark gap between."""
    sep = np.full((*truth.shape[:2], gap, 3), 60, np.uint8)
    return np.concatenate([truth, sep, pred], axis=2)


def _with_title(image: np.ndarray, text: str, height: int = 16) -> np.ndarray:
    band = Image.new("RGB", (image.shape[1], height), "white")
    ImageDraw.Draw(band).text((6, 2), text, fill=(0, 0, 0), font=ImageFont.load_default())
    return np.concatenate([np.asarray(band), image], axis=0)


def _rows(labels: np.ndarray, per_row: int, unlabelled_rows: int = 4) -> list[tuple[int, np.ndarray]]:
    """[(label, sample indices)]: one row per label (its first per_row samples); unlabelled (-1)
    samples fill up to `unlabelled_rows` rows."""
    out = []
    for c in sorted(set(np.asarray(labels).tolist())):
        idx = np.flatnonzero(labels == c)
        n_rows = unlabelled_rows if c < 0 else 1
        for r in range(n_rows):
            part = idx[r * per_row:(r + 1) * per_row]
            if len(part):
                out.append((c, part))
    return out


def _label(c: int, names) -> str:
    if 0 <= c < len(names):
        return names[c]
    return "samples" if c < 0 else f"class {c}"


def sample_frames(videos: np.ndarray, labels: np.ndarray, truth: np.ndarray | None = None,
                  names=(), per_row: int = 8, scale: int = 3) -> np.ndarray:
    """(N, T, 3, H, W) uint8 samples -> (T, H', W', 3) uint8 animation frames: a labelled row per class,
    each tile scaled up; with `truth`, each tile is truth | sample."""
    rows = _rows(np.asarray(labels), per_row)
    t = videos.shape[1]
    frames = []
    for k in range(t):
        tiles, texts = [], []
        for c, idx in rows:
            v = np.asarray(videos[idx, k]).transpose(0, 2, 3, 1)  # (K, H, W, 3)
            if truth is not None:
                v = _pairs(np.asarray(truth[idx, k]).transpose(0, 2, 3, 1), v)
            tiles.append(_upscale(v, scale))
            texts.append(_label(c, names))
        what = "each tile: truth | prediction" if truth is not None else "rows: class"
        frames.append(_with_title(labelled_grid(tiles, texts, scale=1), f"frame {k + 1:2d}/{t}   {what}"))
    return np.stack(frames)


def sample_trails(videos: np.ndarray, labels: np.ndarray, truth: np.ndarray | None = None,
                  names=(), per_row: int = 8, scale: int = 3) -> np.ndarray:
    """One still: each sample's dot over all frames (blue early, red late), rows as sample_frames."""
    tiles, texts = [], []
    for c, idx in _rows(np.asarray(labels), per_row):
        v = trails(np.asarray(videos[idx]))
        if truth is not None:
            v = _pairs(trails(np.asarray(truth[idx])), v)
        tiles.append(_upscale(v, scale))
        texts.append(_label(c, names))
    what = "each tile: truth | prediction" if truth is not None else "rows: class"
    return _with_title(labelled_grid(tiles, texts, scale=1), f"dot over all frames (blue early, red late)   {what}")


def marked_frames(videos: np.ndarray, colours: np.ndarray, titles: list[str], per_row: int = 8, scale: int = 3,
                  border: int = 4) -> np.ndarray:
    """(N, T, 3, H, W) uint8 -> (T, H', W', 3) animation frames: the videos side by side (per_row to a row),
    scaled up, every tile of frame k framed in colours[k] (T, 3) and the frame titled titles[k]
    (e.g. grey for a given frame, red for a predicted one). The last row of tiles ends the image."""
    n, t = videos.shape[:2]
    gap = 4
    frames = []
    for k in range(t):
        tiles = _upscale(np.asarray(videos[:, k]).transpose(0, 2, 3, 1), scale)
        tiles = np.pad(tiles, ((0, 0), (border, border), (border, border), (0, 0)))
        tiles[:, :border], tiles[:, -border:], tiles[:, :, :border], tiles[:, :, -border:] = (colours[k],) * 4
        rows = []
        for lo in range(0, n, per_row):
            part = list(tiles[lo:lo + per_row])
            part += [np.full_like(tiles[0], 255)] * (min(per_row, n) - len(part))
            spaced = [x for tile in part for x in (tile, np.full((tile.shape[0], gap, 3), 255, np.uint8))][:-1]
            rows.append(np.concatenate(spaced, axis=1))
        spaced_rows = [x for r in rows for x in (r, np.full((gap, r.shape[1], 3), 255, np.uint8))][:-1]
        frames.append(_with_title(np.concatenate(spaced_rows, axis=0), titles[k]))
    return np.stack(frames)


def write_animation(path: str | os.PathLike, frames: np.ndarray, fps: float = 8.0) -> None:
    """(T, H, W, 3) uint8 -> a looping .gif, or an .mp4 (H.264 through PyAV); atomic."""
    import imageio.v3 as iio

    path = Path(path)
    ext = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        if ext == ".mp4":
            h, w = frames.shape[1:3]
            ph, pw = -h % 16, -w % 16  # encoders want sizes that are multiples of 16
            frames = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), constant_values=255)
            iio.imwrite(tmp, frames, extension=".mp4", plugin="pyav", codec="libx264", fps=fps)
        else:
            iio.imwrite(tmp, frames, extension=ext, duration=int(1000 / fps), loop=0)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
