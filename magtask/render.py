"""Pictures: dataset contact sheets, and (for runs) sample grids as gif / mp4 / png via imageio."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from magtask.specs import CLASS_NAMES


def ink(videos: np.ndarray) -> np.ndarray:
    """(N, T, 3, H, W) -> (N, T, H, W) in [0, 1]: metrics.ink scaled so each video's darkest ink is 1."""
    from magtask.metrics import ink as raw_ink

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
    for c, name in enumerate(CLASS_NAMES):
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
