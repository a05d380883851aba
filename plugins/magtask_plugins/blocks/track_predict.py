"""The track-space predictor both predict heads share: read the dot's per-frame track off the past
codes, extrapolate it with a small learned temporal model, draw the future codes as training
windows placed at the predicted positions.

    past codes (B, C, tp, h, w)
      -> read: per latent step, the k x k window (k = 5) around the step's code centroid
         (dot_windows.code_track), one-hot FSQ levels -> MLP -> the dot's centre in each of the
         step's s frames, in px relative to the window          track (B, tp*s, 2) px
         (fitted on the training videos' true centres; ~0.25 px on held-out videos, where the
         step centroid alone, the mean of its s frames, is ~1.4 px from each frame's centre)
      -> core (the head's: LSTM or causal transformer) over frames, input per frame: its
         displacement from the previous frame and its position, both scaled
         -> at frame j the next `horizon` frames' offsets from frame j   (B, T, horizon, 2)
         (causal: frame j sees frames 0..j only; trained on every frame j with a full horizon
         inside the training clips, Huber loss on the offsets; read tracks in, true centres out)
      -> render: each future step's s predicted positions -> the training window (on the FSQ grid)
         whose dot sits at the nearest positions relative to its corner, pasted at the step's cell
         onto a grid of the video's background code (the most common code of its past)
Every output code is a code the tokenizer produced for a real video, so the decoded dot is crisp.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from magtask import MagtaskError, Option, PredictHead
from magtask_plugins.blocks.data_sized import DataSizedModule
from magtask_plugins.blocks.dot_windows import code_track, corners_around, crop, nearest_rows

SCALE = 8.0  # px: displacements and offsets are divided by this before the core sees them

# What both track heads use beyond the codes: the reader is fitted on the dataset's true centres, the
# future is drawn with training code windows, and the window is found by a one-dot centroid.
TRACK_SIDE_INPUTS = ("true_centres", "training_code_windows", "task_features")
TRACK_OPTIONS = (
    Option("window", int, 5, "side of the code window the reader looks at, in latent cells", lo=1, hi=16),
    Option("reader_hidden", int, 256, "hidden units of the track reader", lo=1, hi=8192),
    Option("reader_steps", int, 2000, "optimiser steps fitting the reader", lo=1, hi=1_000_000),
    Option("augment", bool, True, "mirror / transpose augmentation of the tracks"),
)


def step_corners(cells: torch.Tensor, k: int, h: int, w: int) -> torch.Tensor:
    """(B, t, 2) dot centres (x, y) in cells -> (B, t, 2) long (row, col) of the k x k window around them."""
    return corners_around(cells.flip(-1), k, h, w)


def corner_px(corners: torch.Tensor, patch: float) -> torch.Tensor:
    """(..., 2) (row, col) cells -> (..., 2) (x, y) px of the window's top-left."""
    return corners.flip(-1).float() * patch


def paste_each(windows: torch.Tensor, corners: torch.Tensor, fill: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """windows (B, t, k, k, C), corners (B, t, 2), fill (B, C): each video's own background -> (B, t, h, w, C)."""
    b, t, k = windows.shape[:3]
    out = fill[:, None, None, None, :].expand(b, t, h, w, fill.shape[-1]).clone()
    ar = torch.arange(k)
    rows = (corners[..., 0, None] + ar).view(b, t, k, 1)
    cols = (corners[..., 1, None] + ar).view(b, t, 1, k)
    out[torch.arange(b).view(b, 1, 1, 1), torch.arange(t).view(1, t, 1, 1), rows, cols] = windows
    return out


def background_codes(codes: torch.Tensor, grid) -> torch.Tensor:
    """(B, C, t, h, w) -> (B, C): each video's most common code (grid: the tokenizer's CodeGrid)."""
    idx = grid.indices(codes).flatten(1)
    mode = idx.mode(1).values
    first = (idx == mode[:, None]).float().argmax(1)
    return codes.flatten(2)[torch.arange(len(codes)), :, first]


def build_track_head(cls):
    """build(config) for a TrackPredictor subclass: the predict task's geometry, then the head's options."""
    def build(cfg):
        t = cfg.task_config
        if cfg.grid is None or not cfg.grid.quantized:
            raise MagtaskError("the track heads read one-hot code levels: they need a quantized tokenizer "
                               "(FSQ or LFQ), this one has continuous latents")
        steps = int(t["n_past_steps"]) + int(t["n_future_steps"])
        if "n_past" in t and int(t["n_past"]) + int(t["n_future"]) != steps * int(t["stride"]):
            raise MagtaskError(f"the track heads need a tokenizer whose every latent step holds {t['stride']} "
                               "frames; this one encodes the first frame on a step of its own "
                               "(video_contains_first_frame): use a code-only predict head")
        return cls(cfg.in_shape, cfg.grid, t["n_future_steps"], t["stride"], t["patch"], **cfg.options)
    return build


class TrackPredictor(DataSizedModule, PredictHead):
    """A trained predict head: prepare(data) fits the reader and the window dictionary (side input
    true_centres), the shared loop trains the core on (read track, true centres)."""
    data_sized = ("keys", "windows")  # the training windows: saved and reloaded at the data's size

    def __init__(self, in_shape, grid, core: nn.Module, core_dim: int, stride: int = 2, horizon: int = 4,
                 patch: float = 4.0, window: int = 5, reader_hidden: int = 256, reader_steps: int = 2000,
                 dim: int = 64, augment: bool = True):
        super().__init__()
        self.augment = bool(augment)
        c, _, h, w = (int(v) for v in in_shape)
        self.c, self.h, self.w, self.s = c, h, w, int(stride)
        self.grid, self.k, self.patch = grid, int(window), float(patch)
        self.levels = [int(l) for l in grid.levels]
        self.horizon, self.reader_steps = int(horizon), int(reader_steps)
        self.reader = nn.Sequential(nn.Linear(self.k * self.k * sum(self.levels), reader_hidden), nn.GELU(),
                                    nn.Linear(reader_hidden, 2 * self.s))
        self.embed = nn.Linear(4, dim)
        self.core = core
        self.out = nn.Linear(core_dim, 2 * self.horizon)
        self.register_buffer("keys", torch.zeros(0, 2 * self.s))  # dot positions (px) relative to each window
        self.register_buffer("windows", torch.zeros(0, self.k, self.k, c))

    # -- reading the track off the codes -----------------------------------------------------------
    def _windows(self, codes: torch.Tensor):
        """codes (B, C, t, h, w) -> one-hot windows (B, t, k*k*L), corners (B, t, 2)."""
        corners = step_corners(code_track(codes).float(), self.k, self.h, self.w)
        hot = self.grid.one_hot(codes).permute(0, 2, 3, 4, 1)
        return crop(hot, corners, self.k).flatten(2), corners

    def _frame_targets(self, centres: torch.Tensor, corners: torch.Tensor) -> torch.Tensor:
        """centres (B, t*s, 2) px -> (B, t, s*2) relative to each step's window corner."""
        b, t = corners.shape[:2]
        return (centres.view(b, t, self.s, 2) - corner_px(corners, self.patch)[:, :, None]).flatten(2)

    @torch.no_grad()
    def read(self, codes: torch.Tensor, batch: int = 512) -> torch.Tensor:
        """codes (B, C, t, h, w) -> (B, t*s, 2) the dot's centre (x, y) px in each frame."""
        outs = []
        for lo in range(0, len(codes), batch):
            x, corners = self._windows(codes[lo:lo + batch])
            rel = self.reader(x).view(*corners.shape[:2], self.s, 2)
            outs.append((rel + corner_px(corners, self.patch)[:, :, None]).flatten(1, 2))
        return torch.cat(outs)

    def prepare(self, data) -> None:
        self.fit_reader(data.x, data.side["true_centres"], seed=data.seed)

    def train_tensors(self, data) -> tuple[torch.Tensor, torch.Tensor]:
        return self.read(data.x), data.side["true_centres"]

    def loss(self, track: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        return self.track_loss(track, centres)

    def predict(self, past: torch.Tensor, n_future_steps: int) -> torch.Tensor:
        return self.predict_codes(past, n_future_steps)

    def fit_reader(self, codes: torch.Tensor, centres: torch.Tensor, seed: int = 0) -> None:
        """Fit the reader (MLP, Huber on px) and the window dictionary on training codes (N, C, t, h, w)
        and the true frame centres (N, t*s, 2) px. The core is trained afterwards by the shared loop."""
        x, corners = self._windows(codes)
        y = self._frame_targets(centres.float(), corners)
        with torch.no_grad():
            self.keys = y.reshape(-1, 2 * self.s).clone()
            self.windows = crop(codes.permute(0, 2, 3, 4, 1), corners, self.k).reshape(-1, self.k, self.k,
                                                                                      self.c).clone()
        fx, fy = x.reshape(-1, x.shape[-1]), y.reshape(-1, 2 * self.s)
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.AdamW(self.reader.parameters(), lr=2e-3, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, self.reader_steps)
        self.reader.train()
        for _ in range(self.reader_steps):
            i = torch.randint(0, len(fx), (min(256, len(fx)),), generator=gen)
            loss = F.smooth_l1_loss(self.reader(fx[i]), fy[i])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        for p in self.reader.parameters():
            p.requires_grad_(False)
        self.reader.eval()

    # -- the temporal model ------------------------------------------------------------------------
    def forward(self, track: torch.Tensor) -> torch.Tensor:
        """track (B, T, 2) px -> (B, T, horizon, 2): at frame j, the offsets (px) of frames j+1..j+horizon
        from frame j, from frames 0..j only."""
        vel = torch.cat([torch.zeros_like(track[:, :1]), track[:, 1:] - track[:, :-1]], 1) / SCALE
        pos = track / (self.patch * max(self.h, self.w)) * 2 - 1
        z = self.core(self.embed(torch.cat([vel, pos], -1)))
        return self.out(z).view(*track.shape[:2], self.horizon, 2) * SCALE

    def track_loss(self, track: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        """Huber on the predicted offsets, at every frame whose whole horizon lies inside the clip: read
        track in, true centres out (both (B, T, 2) px)."""
        if self.training and self.augment:
            track, centres = self.symmetries(track, centres)
        t, f = track.shape[1], self.horizon
        pred = self(track)[:, 1:t - f]  # frames 1..T-f-1 (frame 0 has no velocity)
        j = torch.arange(1, t - f)
        fut = centres[:, j[:, None] + torch.arange(1, f + 1)]  # (B, J, f, 2)
        return F.smooth_l1_loss(pred / SCALE, (fut - track[:, j, None]) / SCALE)

    def symmetries(self, *tracks: torch.Tensor):
        """The same random mirror / transpose of the image for each clip of the batch, applied to every
        (B, T, 2) px track given: a mirrored scene moves by the same physics."""
        size = self.patch * max(self.h, self.w)
        b = len(tracks[0])
        flip = torch.rand(b, 1, 2, device=tracks[0].device) < 0.5
        swap = torch.rand(b, 1, 1, device=tracks[0].device) < 0.5
        out = []
        for tr in tracks:
            tr = torch.where(flip, size - tr, tr)
            out.append(torch.where(swap, tr.flip(-1), tr))
        return out

    @torch.no_grad()
    def predict_track(self, past: torch.Tensor, frames: int) -> torch.Tensor:
        """past codes (B, C, tp, h, w) -> (B, frames, 2) px: the next frames' dot centres."""
        if frames > self.horizon:
            raise ValueError(f"this head predicts {self.horizon} frames ahead, asked for {frames}")
        track = self.read(past)
        return track[:, -1:] + self(track)[:, -1, :frames]

    # -- drawing the codes -------------------------------------------------------------------------
    @torch.no_grad()
    def render(self, positions: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        """positions (B, t*s, 2) px, background (B, C) -> codes (B, C, t, h, w): per step the training
        window nearest in its frames' dot positions, pasted at the step's cell."""
        b = len(positions)
        size = self.patch * max(self.h, self.w)
        pos = positions.clamp(-0.5 * self.patch, size + 0.5 * self.patch).view(b, -1, self.s, 2)
        t = pos.shape[1]
        corners = step_corners(pos.mean(2) / self.patch - 0.5, self.k, self.h, self.w)
        query = (pos - corner_px(corners, self.patch)[:, :, None]).reshape(-1, 2 * self.s)
        win = self.windows[nearest_rows(query, self.keys)].view(b, t, self.k, self.k, self.c)
        return paste_each(win, corners, background, self.h, self.w).permute(0, 4, 1, 2, 3).contiguous()

    @torch.no_grad()
    def predict_codes(self, past: torch.Tensor, steps: int) -> torch.Tensor:
        """past codes (B, C, tp, h, w) -> future codes (B, C, steps, h, w), every code on the FSQ grid."""
        self.eval()
        pos = self.predict_track(past, steps * self.s)
        return self.render(pos, background_codes(past, self.grid))
