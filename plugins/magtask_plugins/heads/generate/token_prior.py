"""Head `token-prior` (alias `maskgit`): a class-conditional masked-token model over token indices.

MaskGIT (Chang et al. 2022), the generator MAGVIT itself uses, over the sparse view of a video's
tokens (magtask_plugins.blocks.dot_windows): almost every cell holds the background token, so per latent
step what matters is where the dot is and the k x k token indices of the window around it:

    indices (B, t, h, w), e.g. 8 x 16 x 16 = 2 048 tokens, ~83 % of them the background token
      -> the dot's centre per step (centroid of each cell's code distance from the background code),
         in 1/res cells (res = 4): the track, q (B, t, 2)
      -> per step the k x k window of token indices whose corner is round(centre - (k-1)/2)

Two stages, each a class-conditional transformer trained with MaskGIT's masked-token loss:
1. Track (magtask_plugins.blocks.track_maskgit): 2t position tokens, the absolute row and column of every
   step, sampled by iterative unmasking (`position_steps` rounds). Tracks are augmented by the
   frame's dihedral group and time reversal, `track_copies` augmented copies per batch.
2. Windows, given the track: per step a transformer position whose input is its tokens and its two
   neighbours' (a 3-step stem), the position as start + displacements (Fourier features of the
   values), the centre's offset inside its window; [class] + t positions -> pre-norm transformer, a
   skip path from the stem to the output; logits over the codes the training windows use. Sampled
   over `steps` MaskGIT rounds.
The class is dropped ("no class") 10 % of the time in both. Then (`snap`, on by default) each sampled
window is replaced by the training window nearest to it in code space (FSQ digits): sampled windows
alone decode to one clean dot less often. Windows are pasted at their corners onto a grid of the
background token (the most common training token). Samples are token indices: always on the codebook.

History (benchmarks/generate.md): one model over start + displacement tokens reached valid 1.000 but
class_match 0.33 -- a wrong displacement is a drift every later step inherits, and its samples
wandered; absolute position tokens in a model of their own fixed that.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from magtask import GenerateHead, HeadSpec, Option, hookimpl
from magtask_plugins.blocks.data_sized import DataSizedModule
from magtask_plugins.blocks.dot_windows import centres, crop, index_digits, index_mass, nearest_rows, paste
from magtask_plugins.blocks.maskgit import random_mask, unmask_round
from magtask_plugins.blocks.track_maskgit import TrackMaskGIT

CODE, ABS, DISP = 0, 1, 2  # slot kinds


class TokenPrior(DataSizedModule, GenerateHead):
    data_sized = ("train_windows",)  # the training windows: saved and reloaded at the data's size
    conditional = True
    # 44 steps per epoch of the default 1 400 training videos, 234-244 s for 40 epochs on 2 quiet cores; the track
    # stage is still improving at 25 epochs (proxy class accuracy of its tracks 0.84 at 1 100 steps, 0.88 at 2 200)
    train_defaults = {"epochs": 40, "batch_size": 32, "lr": 2e-3, "weight_decay": 0.01, "patience": 40}

    def __init__(self, in_shape, n_classes: int = 4, codebook_size: int = 1000, levels=None, window: int = 4,
                 res: int = 4, max_disp: int = 32, dim: int = 128, depth: int = 4, heads: int = 4, emb: int = 32,
                 class_dropout: float = 0.1, steps: int = 8, position_steps: int = 16, temperature: float = 1.0,
                 noise: float = 4.5, track_noise: float = 2.0, snap: bool = True, augment: bool = True,
                 track_copies: int = 4, track_dim: int = 128, track_depth: int = 2, **_):
        super().__init__()
        t, h, w = (int(s) for s in in_shape)
        self.grid = (t, h, w)
        self.levels = None if levels is None else [int(l) for l in levels]
        self.k = k = max(1, min(int(window), h, w))
        self.res, self.max_disp = int(res), int(max_disp)
        self.slots = 2 + k * k
        self.n_abs = max(h, w) * self.res
        # token ids: codes 0..codebook-1 | absolute 0..n_abs-1 | displacement -max_disp..max_disp | mask
        self.codebook_size = int(codebook_size)
        self.abs0 = self.codebook_size
        self.disp0 = self.abs0 + self.n_abs
        self.n_out = self.disp0 + 2 * self.max_disp + 1
        self.mask_id = self.n_out
        kind = torch.full((t, self.slots), CODE)
        kind[0, :2], kind[1:, :2] = ABS, DISP
        self.register_buffer("kind", kind.flatten(), persistent=False)  # (L,)
        self.register_buffer("background", torch.tensor(0))
        self.register_buffer("used", torch.zeros(self.codebook_size, dtype=torch.bool))  # codes the windows use
        # the training windows (prepare() fills them), for snapping: their token indices
        self.register_buffer("train_windows", torch.zeros(0, k * k, dtype=torch.long))
        self.n_classes = int(n_classes)
        self.class_dropout, self.steps, self.position_steps = class_dropout, int(steps), int(position_steps)
        self.temperature, self.noise, self.snap, self.augment_tracks = temperature, noise, bool(snap), bool(augment)
        self.track_noise, self.track_copies = float(track_noise), max(1, int(track_copies))
        self.tracks = TrackMaskGIT(t, max(h, w), self.res, self.n_classes, dim=track_dim, depth=track_depth,
                                   heads=heads, class_dropout=class_dropout)
        self.tok = nn.Embedding(self.mask_id + 1, emb)
        self.slot = nn.Parameter(torch.randn(self.slots, emb))
        self.n_off = k * self.res + 1  # offsets 0..k*res
        self.off = nn.Embedding(2 * self.n_off, dim)
        self.inp = nn.Linear(3 * self.slots * emb, dim)  # a step and its two neighbours
        self.register_buffer("freqs", torch.tensor([0.125, 0.25, 0.5, 1.0, 2.0]) * math.pi, persistent=False)
        self.num = nn.Linear(2 * (2 + 2 * len(self.freqs)), dim)  # row/col values as numbers
        self.pos = nn.Parameter(torch.randn(t + 1, dim))
        self.cls = nn.Embedding(self.n_classes + 1, dim)  # the last one: "no class"
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.body = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.skip = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim))
        self.out = nn.Linear(dim, self.slots * emb)
        self.head = nn.Linear(emb, self.codebook_size)  # window slots hold codes only

    # -- layout: indices (B, t, h, w) <-> sequence (B, L), L = t * slots -----------------------------
    def track(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, t, h, w) indices -> (B, t, 2) long: the dot's centre per step in 1/res cells."""
        c = centres(index_mass(idx, int(self.background), self.levels))
        return (c * self.res).round().long().clamp(0, self.n_abs - 1)

    def corners(self, q: torch.Tensor) -> torch.Tensor:
        """(B, t, 2) centres in 1/res cells -> window corners round(centre - (k-1)/2), inside the grid."""
        _, h, w = self.grid
        top = torch.tensor([h - self.k, w - self.k])
        c = torch.div(2 * q - (self.k - 2) * self.res, 2 * self.res, rounding_mode="floor")
        return torch.minimum(c.clamp_min(0), top)

    def offsets(self, q: torch.Tensor) -> torch.Tensor:
        """(B, t, 2) -> where the centre sits inside its window, 0..k*res (1/res cells)."""
        return (q - self.res * self.corners(q)).clamp(0, self.k * self.res)

    def lead_tokens(self, q: torch.Tensor) -> torch.Tensor:
        """(B, t, 2) centres -> (B, t, 2) position tokens: absolute at step 0, displacements after."""
        d = (q[:, 1:] - q[:, :-1]).clamp(-self.max_disp, self.max_disp)
        return torch.cat([self.abs0 + q[:, :1], self.disp0 + self.max_disp + d], 1)

    def positions(self, seq: torch.Tensor) -> torch.Tensor:
        """(B, L) with every position token known -> (B, t, 2) centres."""
        s = seq.view(len(seq), self.grid[0], self.slots)[..., :2]
        d = torch.cat([s[:, :1] - self.abs0, s[:, 1:] - self.disp0 - self.max_disp], 1)
        return d.cumsum(1).clamp(0, self.n_abs - 1)

    def to_seq(self, idx: torch.Tensor, q: torch.Tensor | None = None) -> torch.Tensor:
        """(B, t, h, w) indices (and their track, if already computed) -> (B, L)."""
        idx = idx.long()
        q = self.track(idx) if q is None else q
        win = crop(idx, self.corners(q), self.k).flatten(2)
        return torch.cat([self.lead_tokens(q), win], -1).flatten(1)

    def from_seq(self, seq: torch.Tensor) -> torch.Tensor:
        b = len(seq)
        t, h, w = self.grid
        q = self.positions(seq)
        win = seq.view(b, t, self.slots)[..., 2:].clamp(0, self.codebook_size - 1).reshape(b, t, self.k, self.k)
        return paste(win, self.corners(q), self.background, h, w)

    @torch.no_grad()
    def prepare(self, data) -> None:
        """See the training indices data.x (N, t, h, w) once: the background token, the codes the windows
        use, the windows."""
        x = data.x
        self.background.fill_(int(torch.bincount(x.flatten().long(), minlength=self.codebook_size).argmax()))
        seq = self.to_seq(x.long())
        win = seq.view(len(x), self.grid[0], self.slots)[..., 2:]
        self.used.zero_()
        self.used[win.flatten()] = True
        self.train_windows = win.reshape(-1, self.k * self.k).clone()

    # -- the network ------------------------------------------------------------------------------
    def features(self, seq: torch.Tensor, labels: torch.Tensor, off: torch.Tensor) -> torch.Tensor:
        """seq (B, L) token ids, labels (B,), off (B, t, 2) the centres' offsets in their windows -> (B, L, emb)."""
        b, t = len(seq), self.grid[0]
        e = (self.tok(seq).view(b, t, self.slots, -1) + self.slot).flatten(2)
        z = torch.zeros_like(e[:, :1])
        x = self.inp(torch.cat([torch.cat([z, e[:, :-1]], 1), e, torch.cat([e[:, 1:], z], 1)], -1))
        lead = seq.view(b, t, self.slots)[..., :2]
        known = lead != self.mask_id
        val = torch.where(lead < self.disp0, lead - self.abs0 - self.n_abs / 2, lead - self.disp0 - self.max_disp)
        val = torch.where(known, val.float() / self.res, 0.0)
        ang = val[..., None] * self.freqs
        k = known.float()[..., None]
        x = x + self.num(torch.cat([k, val[..., None] / 8, ang.sin() * k, ang.cos() * k], -1).flatten(2))
        x = x + self.off(off[..., 0]) + self.off(off[..., 1] + self.n_off)
        h = torch.cat([self.cls(labels)[:, None], x], 1) + self.pos
        h = self.norm(self.body(h))[:, 1:] + self.skip(x)
        f = self.out(h).view(b, t, self.slots, -1) + self.slot
        return f.flatten(1, 2)

    def logits(self, feats: torch.Tensor) -> torch.Tensor:
        """(M, emb) features of window slots -> (M, codebook) logits, -inf on codes no training window uses."""
        return self.head(feats).masked_fill(~self.used, float("-inf"))

    def loss(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None,
             phase: str | None = None, ratio: float | None = None) -> torch.Tensor:
        """x (B, t, h, w) indices, y (B,) classes: the track stage's loss (cross-entropy on masked position
        tokens, over `track_copies` augmented copies of the batch's tracks) + the window stage's
        (cross-entropy on masked window tokens, every position known). phase ("positions" / "codes") and a
        fixed mask ratio are for diagnostics; by default both stages, mask ratio on the cosine schedule."""
        q = self.track(x.long())
        parts = {"positions": None, "codes": None}
        total = []
        if phase in (None, "positions"):
            track = q.float() / self.res  # in cells, on the 1/res grid the track stage tokenises
            labels = y.long()
            if self.training:
                track, labels = track.repeat(self.track_copies, 1, 1), labels.repeat(self.track_copies)
                if self.augment_tracks:
                    track = self.tracks.augment(track, generator)
            pos = self.tracks.loss(track, labels, generator, ratio)
            parts["positions"] = pos.item()
            total.append(pos)
        if phase in (None, "codes"):
            codes = self.window_loss(self.to_seq(x, q), y, generator, ratio)
            if codes is not None:
                parts["codes"] = codes.item()
                total.append(codes)
        self.last_parts = parts
        return sum(total)

    def window_loss(self, seq: torch.Tensor, y: torch.Tensor, generator, ratio) -> torch.Tensor | None:
        b, n = seq.shape
        mask = random_mask((self.kind == CODE).expand(b, n), ratio, generator)
        labels = y.long().clone()
        if self.training and self.class_dropout > 0:
            labels[torch.rand(b, generator=generator) < self.class_dropout] = self.n_classes
        feats = self.features(torch.where(mask, self.mask_id, seq), labels, self.offsets(self.positions(seq)))
        target = seq[mask]
        lg = self.logits(feats[mask])
        seen = torch.isfinite(lg.gather(1, target[:, None]).squeeze(1))  # held out: a code no training window uses
        if not seen.any():  # is not scored (it would be infinite)
            return None
        return F.cross_entropy(lg[seen], target[seen])

    # -- sampling -----------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, labels: torch.Tensor, generator: torch.Generator | None = None, chunk: int = 64) -> torch.Tensor:
        """labels (B,) -> indices (B, t, h, w), by iterative unmasking."""
        self.eval()
        return torch.cat([self._sample(labels[i:i + chunk].long(), generator) for i in range(0, len(labels), chunk)])

    def _sample(self, labels: torch.Tensor, generator) -> torch.Tensor:
        b, n = len(labels), len(self.kind)
        q = self.tracks.sample(labels, steps=self.position_steps, temperature=self.temperature,
                               noise=self.track_noise, generator=generator)
        seq = torch.cat([self.lead_tokens(q), torch.full((b, self.grid[0], self.slots - 2), self.mask_id)], -1)
        is_code = (self.kind == CODE).expand(b, n)
        seq = self._unmask(seq.flatten(1), labels, is_code, max(self.steps, 1), self.offsets(q), generator)
        if self.snap and len(self.train_windows):
            seq = self.snap_windows(seq)
        return self.from_seq(seq)

    def snap_windows(self, seq: torch.Tensor) -> torch.Tensor:
        """Each window -> the training window nearest to it: by squared distance between their codes
        (FSQ digits scaled to [-1, 1], so a cell's faint rim counts little and the dot's core a lot), or
        by token mismatches when the tokenizer has no FSQ levels."""
        b, t = len(seq), self.grid[0]
        s = seq.view(b, t, self.slots).clone()
        win = s[..., 2:].reshape(b * t, -1)
        if self.levels is not None:
            half = torch.tensor([l // 2 for l in self.levels], dtype=torch.float32)
            a = (index_digits(win, self.levels) / half).flatten(1)
            ref = (index_digits(self.train_windows, self.levels) / half).flatten(1)
            best = nearest_rows(a, ref, chunk=512)
        else:
            best = torch.cat([(win[lo:lo + 256, None] != self.train_windows[None]).sum(-1).argmin(1)
                              for lo in range(0, len(win), 256)])
        s[..., 2:] = self.train_windows[best].view(b, t, -1)
        return s.flatten(1)

    def _unmask(self, seq, labels, cand, n_steps: int, off, generator) -> torch.Tensor:
        """MaskGIT rounds over the still-masked slots `cand` (B, L) until none of them is masked."""
        total = int(cand[0].sum())
        for s in range(n_steps):
            masked = (seq == self.mask_id) & cand
            logp = F.log_softmax(self.logits(self.features(seq, labels, off)[masked]) / max(self.temperature, 1e-6), -1)
            seq = unmask_round(seq, masked, logp, s, n_steps, total, self.mask_id, self.noise, generator)
        return seq


@hookimpl
def register_heads(register):
    register(HeadSpec(
        name="token-prior", task="generate", aliases=("maskgit",), consumes="indices",
        build=lambda cfg: TokenPrior(cfg.in_shape, n_classes=cfg.n_classes, codebook_size=cfg.codebook_size,
                                     levels=cfg.levels, **cfg.options),
        side_inputs=("training_code_windows", "task_features"),
        options=(Option("steps", int, 8, "MaskGIT unmasking rounds of the window stage", lo=1, hi=256),
                 Option("position_steps", int, 16, "MaskGIT unmasking rounds of the track stage", lo=1, hi=256),
                 Option("temperature", float, 1.0, "sampling temperature", lo=1e-3, hi=100),
                 Option("snap", bool, True, "replace each sampled window by the nearest training window"),
                 Option("window", int, 4, "side of the token window around the dot, in latent cells", lo=1, hi=16)),
        description="Class-conditional MaskGIT in two stages: the dot's absolute position per latent step, then a "
                    "4x4 window of token indices around it (snapped to the nearest training window in code space), "
                    "pasted onto the background token; samples are always on the codebook"))
