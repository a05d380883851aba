"""Head `track-prior`: a Gaussian mixture per class over the dot's frame track, read by the evaluation's
tracker, and the training code windows that draw it there; sampled by class. Not code-only: its side
inputs are tracker_tracks and training_code_windows (until issue 18 it was `class-conditional-prior`).

What it models is where the dot is in every frame: the task gives it each training video's frame
track (plugins/magtask_plugins/tasks/generate.py, frame_tracks: the dot read off the tokenizer's reconstruction of the
video's codes, (row, col) per frame in latent cells). Each class's tracks are split into `components`
clusters (k-means) and each cluster gets a low-rank Gaussian (top-`rank` principal directions, fitted
in closed form; magtask_plugins.blocks.low_rank_gaussian) over its T x 2 numbers, 16 x 2 = 32 on the default
data. A sample of class c picks a cluster of class c (in proportion to its size), draws a track from
its Gaussian and clips it to the grid.

Codes for that track: the sparse view of a video's latents (magtask_plugins.blocks.dot_windows) is, per latent
step, a k x k window of latents around the dot (default k = 4) on a grid of the background code. A
latent step holds T / t frames (2 on the default data), and its window's corner is
round(mean of its frames' positions - (k-1)/2). Each sampled step takes the training window whose
frames sat at the same places inside their window (nearest in those 2 x T / t numbers): a window
draws the dot where it is in each of its frames, which the step's centre alone does not pin down.
Windows are pasted at their corners onto a grid of the background code (the training latents'
per-channel median), so every decoded code is a training window's or the background's: on the codebook.

History (benchmarks/generate.md): the first version, one Gaussian over all 8 192 latents, reached
class_match 0.34; a mixture over the 8 step centres read off the codes + the windows' latents, windows
snapped by (offset, velocity), 0.914-0.938. Nearest-window choice from the step centres tops out
at 0.94 even with real tracks; by frame positions it reaches 0.985-0.99.
"""

from __future__ import annotations

import torch

from magtask import GenerateHead, HeadSpec, MagtaskError, Option, hookimpl
from magtask_plugins.blocks.data_sized import DataSizedModule
from magtask_plugins.blocks.dot_windows import corners_around, crop, nearest_rows, paste
from magtask_plugins.blocks.code_mixture import kmeans
from magtask_plugins.blocks.low_rank_gaussian import LowRankGaussians


class TrackPrior(DataSizedModule, GenerateHead):
    data_sized = ("keys", "windows")  # the training windows: saved and reloaded at the data's size
    conditional = True
    snap_to_grid = True

    def __init__(self, in_shape, n_classes: int = 4, rank: int = 4, components: int = 8, window: int = 4,
                 frames: int | None = None, **_):
        super().__init__()
        c, t, h, w = (int(s) for s in in_shape)
        self.in_shape = (c, t, h, w)
        self.k = max(1, min(int(window), h, w))
        self.n_classes, self.m = int(n_classes), int(components)
        self.frames = int(frames) if frames else 2 * t  # T; fit() checks it against the tracks it is given
        self.prior = LowRankGaussians((self.frames * 2,), rank=rank, groups=self.n_classes * self.m)
        self.register_buffer("weights", torch.zeros(self.n_classes * self.m))  # cluster sizes
        self.register_buffer("background", torch.zeros(c))
        self.register_buffer("keys", torch.zeros(0, 2 * (self.frames // t)))  # frames inside each training window
        self.register_buffer("windows", torch.zeros(0, self.k, self.k, c))

    def frame_corners_and_keys(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, 2) frame positions in cells -> the window corners (B, t, 2) long, and per step where its
        frames sit inside the window (B, t, 2 T/t)."""
        _, t, h, w = self.in_shape
        per = frames.view(len(frames), t, -1, 2)  # (B, t, T/t, 2)
        corners = corners_around(per.mean(2), self.k, h, w)
        return corners, (per - corners[:, :, None].float()).flatten(2)

    def nearest_windows(self, keys: torch.Tensor) -> torch.Tensor:
        """(B, t, 2 T/t) keys -> (B * t, k, k, C): the training window whose frames sat nearest."""
        return self.windows[nearest_rows(keys.reshape(-1, self.keys.shape[1]), self.keys)]

    def fit(self, data) -> None:
        """A fitted head: data.x latents, data.y classes, and the side input tracker_tracks."""
        self.fit_tracks(data.x, data.y, data.side["tracker_tracks"])

    @torch.no_grad()
    def fit_tracks(self, x: torch.Tensor, y: torch.Tensor, frames: torch.Tensor) -> None:
        """x (N, C, t, h, w) latents on the FSQ grid, y (N,) classes, frames (N, T, 2) the dot's (row, col)
        per frame in latent cells (the generate task's tracker_tracks)."""
        c, t, h, w = self.in_shape
        if frames.shape[1] != self.frames or frames.shape[1] % t:
            raise MagtaskError(f"track-prior was built for {self.frames} frames over {t} latent "
                               f"steps, got frame tracks of {frames.shape[1]} frames")
        x, y, frames = x.float(), y.long(), frames.float()
        corners, keys = self.frame_corners_and_keys(frames)
        win = crop(x.permute(0, 2, 3, 4, 1), corners, self.k)  # (N, t, k, k, C)
        feats = frames.flatten(1)
        groups = torch.full((len(x),), -1, dtype=torch.long)
        for cl in range(self.n_classes):
            rows = torch.nonzero(y == cl).squeeze(1)
            if len(rows):
                groups[rows] = cl * self.m + kmeans(feats[rows], self.m)
        self.weights.copy_(torch.bincount(groups[groups >= 0], minlength=len(self.weights)).float())
        self.prior.fit_groups(feats, groups)
        self.prior.residual_std.zero_()  # no diagonal noise: it only jitters the track
        self.weights[~self.prior.fitted] = 0  # a cluster of one video has no Gaussian
        self.background.copy_(x.permute(0, 2, 3, 4, 1).reshape(-1, c).median(0).values)
        self.keys = keys.reshape(-1, keys.shape[-1]).clone()
        self.windows = win.reshape(-1, self.k, self.k, c).clone()

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """labels (B,) -> latents (B, C, t, h, w), every value on the FSQ grid."""
        c, t, h, w = self.in_shape
        labels = labels.long()
        per_class = self.weights.view(self.n_classes, self.m)
        if labels.min() < 0 or labels.max() >= self.n_classes or bool((per_class[labels].sum(1) <= 0).any()):
            raise MagtaskError("this prior was not fitted for a requested class: too few training videos for its "
                               f"{self.m} clusters per class (try -o components=1)")
        comp = torch.multinomial(per_class[labels], 1, generator=generator).squeeze(1) + labels * self.m
        frames = self.prior.sample(comp, generator=generator).view(len(labels), self.frames, 2)
        frames = torch.minimum(frames.clamp_min(0), torch.tensor([h - 1.0, w - 1.0]))
        corners, keys = self.frame_corners_and_keys(frames)
        win = self.nearest_windows(keys).view(len(labels), t, self.k, self.k, c)
        return paste(win, corners, self.background, h, w).permute(0, 4, 1, 2, 3).contiguous()


@hookimpl
def register_heads(register):
    register(HeadSpec(
        name="track-prior", task="generate", consumes="latents",
        build=lambda cfg: TrackPrior(cfg.in_shape, n_classes=cfg.n_classes, frames=cfg.frames,
                                     **cfg.options),
        side_inputs=("tracker_tracks", "training_code_windows"),
        options=(Option("rank", int, 4, "principal directions of each cluster's track Gaussian", lo=1, hi=64),
                 Option("components", int, 8, "k-means clusters of tracks per class", lo=1, hi=256),
                 Option("window", int, 4, "side of the code window drawn at the dot, in latent cells", lo=1, hi=16)),
        description="Per class, a mixture of low-rank Gaussians over the dot's position in every frame; each "
                    "latent step takes the training 4x4 code window whose frames sat at the same places, pasted "
                    "onto the background code"))
