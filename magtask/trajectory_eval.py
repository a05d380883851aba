"""The trajectory domain's evaluation, in one place: the dot tracker, one-dot validity, the judge and
the motion oracle. The same code scores real, reconstructed, generated and predicted videos.

Videos are (N, T, 3, H, W), uint8 or float in [0, 1], numpy or torch. Centres are (N, T, 2) float
pixels, (x, y), pixel centres at +0.5, NaN where the tracker finds no dot.

- Tracker: a pixel's "ink" is how much darker it is than its video's background (metrics.background,
  the per-channel median), so it knows nothing of how a video was made. `dot_centroids` is the
  ink-weighted centroid per frame; `dot_counts` / `one_dot_valid` count 8-connected ink blobs;
  `centre_errors` / `centre_error_px` compare tracked and true centres.
- Judge: which trajectory family does a video show? It classifies the tracked track from rotation-,
  scale- and mirror-invariant features (speeds, turning angles, pairwise distances), is trained only
  on real train-split videos (never on a head's output), and reports its own accuracy on the real
  test split beside every score it gives.
- Motion oracle: `oracle_track` fits a video's TRUE class's motion model (MOTION_FAMILIES) to its past
  track and extrapolates it: the physics ceiling of future-frame prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from magtask.data.splits import TEST, TRAIN
from magtask.metrics import as_float, background

INK_THRESHOLD = 0.1  # darker than the background by this much (mean over RGB) counts as ink
MIN_DOT_AREA = 4  # pixels; smaller blobs are specks and are not counted as dots
MAX_DOT_AREA = 600  # a radius-7 dot with an outline covers about 250


# -- the dot tracker -------------------------------------------------------------------------------

def ink(videos) -> torch.Tensor:
    """(N, T, H, W) how much darker than the background each pixel is (mean over RGB, >= 0)."""
    v = as_float(videos)
    bg = background(v)[:, None, :, None, None]
    return (bg - v).mean(2).clamp_min(0)


def dot_centroids(videos, threshold: float = INK_THRESHOLD) -> np.ndarray:
    """(N, T, 2) ink-weighted centroid (x, y) per frame, pixel centres at +0.5; NaN where no ink."""
    d = ink(videos)
    w = torch.where(d > threshold, d, torch.zeros(()))
    h, wd = w.shape[-2:]
    ys = torch.arange(h, dtype=torch.float32) + 0.5
    xs = torch.arange(wd, dtype=torch.float32) + 0.5
    total = w.sum((-2, -1))
    cx = (w.sum(-2) * xs).sum(-1) / total
    cy = (w.sum(-1) * ys).sum(-1) / total
    out = torch.stack([cx, cy], -1)
    out[total <= 0] = float("nan")
    return out.numpy()


def _max3x3(x: torch.Tensor) -> torch.Tensor:
    p = F.pad(x, (1, 1, 1, 1))
    h = torch.maximum(torch.maximum(p[:, :, :-2], p[:, :, 1:-1]), p[:, :, 2:])
    return torch.maximum(torch.maximum(h[:, :-2], h[:, 1:-1]), h[:, 2:])


def _components(mask: torch.Tensor) -> torch.Tensor:
    """mask (F, H, W) bool -> label map (8-connected), each component labelled by its largest pixel
    id: labels spread by 3x3 max-pooling inside the mask until nothing changes (frames that are done
    drop out of the loop)."""
    f, h, w = mask.shape
    dtype = torch.int16 if h * w < 32767 else torch.int32
    ids = torch.arange(1, h * w + 1, dtype=dtype).view(1, h, w)
    m = mask.to(dtype)
    lab = ids * m
    active = torch.arange(f)
    while len(active):
        cur = lab[active]
        new = _max3x3(cur) * m[active]
        changed = (new != cur).flatten(1).any(1)
        lab[active] = new
        active = active[changed]
    return lab


def dot_counts(videos, threshold: float = 1.5 * INK_THRESHOLD, min_area: int = MIN_DOT_AREA,
               chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """((N, T) number of dots, (N, T) total ink area in pixels): dots are 8-connected ink blobs of at
    least min_area pixels."""
    d = ink(videos)
    n, t, h, w = d.shape
    mask = (d > threshold).reshape(n * t, h, w)
    counts = torch.zeros(n * t, dtype=torch.int64)
    areas = mask.sum((-2, -1))
    for s in range(0, n * t, chunk):
        m = mask[s:s + chunk]
        if not m.any():
            continue
        lab = _components(m).long()
        frame = torch.arange(m.shape[0]).view(-1, 1, 1).expand_as(lab)
        keys = (frame * (h * w + 1) + lab)[m]  # one key per (frame, component), per ink pixel
        uniq, sizes = torch.unique(keys, return_counts=True)
        big = uniq[sizes >= min_area] // (h * w + 1)
        counts[s:s + m.shape[0]] = torch.bincount(big, minlength=m.shape[0])
    return counts.view(n, t).numpy(), areas.view(n, t).numpy()


def one_dot_valid(videos, max_area: int = MAX_DOT_AREA) -> np.ndarray:
    """(N, T) bool: the frame holds exactly one dot, and its ink area is sane."""
    counts, areas = dot_counts(videos)
    return (counts == 1) & (areas >= MIN_DOT_AREA) & (areas <= max_area)


def centre_errors(videos, true_centres) -> np.ndarray:
    """(N, T) px between the tracked dot of each frame and the true centre (N, T, 2); a frame where the
    tracker finds no ink counts as the frame's half-diagonal (a miss is never free)."""
    c = dot_centroids(videos)
    d = np.sqrt(((c - np.asarray(true_centres, dtype=np.float64)) ** 2).sum(-1))
    return np.where(np.isfinite(d), d, videos.shape[-1] / np.sqrt(2))


def centre_error_px(pred_videos, true_centres) -> float:
    """The mean of centre_errors over all frames of all videos."""
    return float(centre_errors(pred_videos, true_centres).mean())


# -- the judge -------------------------------------------------------------------------------------

def track_features(centres: np.ndarray) -> np.ndarray:
    """(N, T, 2) dot centres (NaN where no dot) -> (N, F) float32 features."""
    c = np.asarray(centres, dtype=np.float64)
    c = fill_gaps(c)
    v = np.diff(c, axis=1)
    step = np.linalg.norm(v, axis=-1)
    mean_step = step.mean(axis=1, keepdims=True).clip(min=1e-6)
    speed = step / mean_step
    ang = np.arctan2(v[..., 1], v[..., 0])
    turn = (np.diff(ang, axis=1) + np.pi) % (2 * np.pi) - np.pi
    turn = turn * np.sign(turn.sum(axis=1, keepdims=True) + 1e-9)
    total = np.abs(turn.sum(axis=1, keepdims=True)) / (2 * np.pi)
    p = c / (mean_step[:, :, None] * c.shape[1])
    pair = np.linalg.norm(p[:, :, None] - p[:, None, :], axis=-1).reshape(len(p), -1)
    return np.nan_to_num(np.concatenate([speed, turn, total, pair], axis=1), nan=0.0, posinf=0.0,
                         neginf=0.0).astype(np.float32)


def fill_gaps(c: np.ndarray, empty: float = 0.0) -> np.ndarray:
    """(N, T, 2) centres, NaN where no dot -> the same, dtype kept: frames without a dot take the
    nearest earlier (else later) frame's centre; a video with no dot at all is `empty` everywhere."""
    c = c.copy()
    n, t, _ = c.shape
    for k in range(1, t):
        gap = np.isnan(c[:, k, 0])
        c[gap, k] = c[gap, k - 1]
    for k in range(t - 2, -1, -1):
        gap = np.isnan(c[:, k, 0])
        c[gap, k] = c[gap, k + 1]
    return np.nan_to_num(c, nan=empty)


@dataclass
class Judge:
    model: torch.nn.Module
    mean: np.ndarray
    std: np.ndarray
    frames: int
    test_accuracy: float  # on the real test split: how far to trust its verdicts

    @torch.no_grad()
    def predict(self, videos) -> np.ndarray:
        """videos (N, T, 3, H, W), uint8 or float in [0, 1], with T == the frames it was trained on."""
        if len(videos) == 0:
            return np.zeros(0, dtype=np.int64)
        if videos.shape[1] != self.frames:
            raise ValueError(f"the judge was trained on {self.frames}-frame videos, got {videos.shape[1]}")
        x = (track_features(dot_centroids(videos)) - self.mean) / self.std
        return self.model(torch.from_numpy(x)).argmax(1).numpy()


def train_judge(dataset, seed: int = 0, steps: int = 400, batch: int = 256) -> Judge:
    """Fit the judge on the real train split; measure it on the real test split."""
    train_idx, test_idx = dataset.indices(TRAIN), dataset.indices(TEST)

    def feats(idx):
        return np.concatenate([track_features(dot_centroids(np.asarray(dataset.videos[idx[i:i + batch]])))
                               for i in range(0, len(idx), batch)])

    x_tr, x_te = feats(train_idx), feats(test_idx)
    mean, std = x_tr.mean(0), x_tr.std(0) + 1e-6
    y_tr = torch.from_numpy(np.asarray(dataset.labels[train_idx]))
    gen = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(x_tr.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, len(dataset.class_names)))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (1.0 / max(p.shape[-1], 1)) ** 0.5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt = torch.from_numpy((x_tr - mean) / std)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(xt), y_tr).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy((x_te - mean) / std)).argmax(1).numpy()
    acc = float((pred == np.asarray(dataset.labels[test_idx])).mean()) if len(test_idx) else float("nan")
    return Judge(model=model, mean=mean, std=std, frames=dataset.frames, test_accuracy=acc)


# -- the motion oracle -----------------------------------------------------------------------------

def _fit_plain(track: np.ndarray, name: str, future: int, w: float = 0.0) -> np.ndarray:
    """The class's motion in the image plane, per axis by least squares (no perspective)."""
    p = len(track)
    t, tn = np.arange(p, dtype=np.float64), np.arange(p, p + future, dtype=np.float64)

    def basis(s):
        if name in ("linear", "parabolic"):
            return np.vander(s, 2 if name == "linear" else 3)
        return np.stack([np.ones_like(s), np.cos(w * s), np.sin(w * s)] + ([s] if name == "helical" else []), 1)

    coef, *_ = np.linalg.lstsq(basis(t), track, rcond=None)
    return basis(tn) @ coef


def _fit_projective(track: np.ndarray, name: str, future: int, w: float = 0.0) -> tuple[np.ndarray, float]:
    """The class's 3D motion seen through a pinhole: x(t) = N(t).a / (1 + D(t).d), y(t) = N(t).b / (1 + D(t).d)
    with the same denominator (depth) for both axes. Linear least squares on x (1 + D.d) = N.a;
    returns (extrapolation (future, 2), squared residual of the fit on the past in pixels, inf when
    the depth term is near zero)."""
    p = len(track)
    t, tn = np.arange(p, dtype=np.float64), np.arange(p, p + future, dtype=np.float64)

    def feats(s):
        if name == "linear":
            return np.stack([np.ones_like(s), s], 1), s[:, None]
        if name == "parabolic":
            return np.stack([np.ones_like(s), s, s ** 2], 1), np.stack([s, s ** 2], 1)
        cs = [np.cos(w * s), np.sin(w * s)] + ([s] if name == "helical" else [])
        return np.stack([np.ones_like(s)] + cs, 1), np.stack(cs, 1)

    num, den = feats(t)
    k, m = num.shape[1], den.shape[1]
    a = np.zeros((2 * p, 2 * k + m))
    a[:p, :k], a[p:, k:2 * k] = num, num
    a[:p, 2 * k:], a[p:, 2 * k:] = -track[:, :1] * den, -track[:, 1:] * den
    sol, *_ = np.linalg.lstsq(a, np.concatenate([track[:, 0], track[:, 1]]), rcond=None)

    def curve(nu, de):
        depth = 1 + de @ sol[2 * k:]
        return np.stack([nu @ sol[:k], nu @ sol[k:2 * k]], 1) / depth[:, None], depth.min()

    fit, d_past = curve(num, den)
    pred, d_future = curve(*feats(tn))
    ok = min(d_past, d_future) > 0.3 and np.isfinite(pred).all()
    return pred, float(((fit - track) ** 2).sum()) if ok else np.inf


MOTION_FAMILIES = ("linear", "circular", "helical", "parabolic")  # the classes the oracle has a model for


def oracle_track(track: np.ndarray, name: str, future: int) -> np.ndarray:
    """One video: fit its TRUE class's motion model to its past track (P, 2), extrapolate (future, 2);
    NaN for a class that is not one of MOTION_FAMILIES.

    The 3D motion (linear: constant velocity; parabolic: constant acceleration; circular: uniform
    circular; helical: uniform circular plus a drift along the axis) seen through a pinhole is a
    ratio of two such functions of time sharing one depth denominator; fitted linearly
    (_fit_projective). The angular speed of circular/helical is a grid search (picked by the fit's
    pixel residual on the past). If no fit is sane (depth term near zero) the same model without
    perspective is fitted per axis instead.
    """
    if name not in MOTION_FAMILIES:
        return np.full((future, 2), np.nan)
    if name in ("linear", "parabolic"):
        pred, rss = _fit_projective(track, name, future)
        return pred if np.isfinite(rss) else _fit_plain(track, name, future)
    best, best_w = (None, np.inf), 0.5
    for w in np.linspace(0.05, 1.6, 156):  # rad per frame: 1.1..2 turns over 16 frames is 0.43..0.84
        pred, rss = _fit_projective(track, name, future, w)
        if rss < best[1]:
            best, best_w = (pred, rss), w
    return best[0] if best[0] is not None else _fit_plain(track, name, future, best_w)
