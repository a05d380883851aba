"""The track stage of `token-prior`: position tokens, augmentation, and that it learns the class."""

import math

import torch

from magtask_plugins.blocks.track_maskgit import TrackMaskGIT


def lines(n: int, t: int = 4, generator=None):
    """Class 0 moves one cell right per step, class 1 one cell down; random start in a 12 x 12 grid."""
    y = torch.arange(n) % 2
    start = torch.randint(0, 8, (n, 2), generator=generator).float()
    step = torch.where(y[:, None] == 0, torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.0]))
    return start[:, None] + step[:, None] * torch.arange(t).float()[None, :, None], y


def test_tokens_are_absolute_rows_and_columns_and_round_trip():
    m = TrackMaskGIT(t=3, size=12, res=2, n_classes=2, dim=16, depth=1, heads=2)
    track = torch.tensor([[[0.0, 11.9], [1.26, 5.0], [2.74, 0.0]]])
    tok = m.tokens(track)
    assert tok.tolist() == [[0, 23, 3, 10, 5, 0]]  # 1/2 cells, clamped to the grid
    assert torch.equal(m.track(tok), tok.view(1, 3, 2))


def test_augment_maps_tracks_onto_the_frame_and_keeps_their_shape():
    m = TrackMaskGIT(t=4, size=12, res=1, n_classes=2, dim=16, depth=1, heads=2)
    track, _ = lines(64, generator=torch.Generator().manual_seed(0))
    aug = m.augment(track, torch.Generator().manual_seed(1))
    assert aug.min() >= 0 and aug.max() <= 11
    step = aug[:, 1:] - aug[:, :-1]  # still one cell a step, along one axis
    assert torch.equal(step.abs().sum(-1), torch.ones(64, 3))
    assert (step == step[:, :1]).all()
    assert not torch.equal(aug, track)  # something moved


def test_it_learns_class_conditional_tracks_and_samples_them():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    m = TrackMaskGIT(t=4, size=12, res=1, n_classes=2, dim=32, depth=2, heads=2)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    first = None
    for _ in range(250):
        track, y = lines(64, generator=gen)
        loss = m.loss(track, y, gen)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    track, y = lines(64, generator=torch.Generator().manual_seed(5))
    assert m.loss(track, y, torch.Generator().manual_seed(0), ratio=0.5).item() < 0.5 * first
    q = m.sample(torch.tensor([0] * 16 + [1] * 16), steps=8, generator=torch.Generator().manual_seed(2))
    assert q.shape == (32, 4, 2) and q.dtype == torch.long and q.min() >= 0 and q.max() <= 11
    step = (q[:, 1:] - q[:, :-1]).float()
    along_cols = (step[..., 1].abs() > step[..., 0].abs()).float().mean(1)  # per sample
    assert along_cols[:16].mean() > 0.8 and along_cols[16:].mean() < 0.2  # right for 0, down for 1
    assert math.isfinite(step.abs().sum(-1).mean().item())


def test_unmask_rounds_follow_the_cosine_schedule_and_fill_only_masked_slots():
    from magtask_plugins.blocks.maskgit import unmask_round

    mask_id, total, steps = 9, 6, 3
    seq = torch.tensor([[5, 5] + [mask_id] * total] * 2)
    cand = seq == mask_id
    gen = torch.Generator().manual_seed(0)
    left = []
    for s in range(steps):
        masked = seq == mask_id
        logp = torch.log_softmax(torch.randn(int(masked.sum()), mask_id, generator=gen), -1)
        seq = unmask_round(seq, masked, logp, s, steps, total, mask_id, noise=1.0, generator=gen)
        left.append((seq == mask_id).sum(1).tolist())
    assert left == [[5, 5], [3, 3], [0, 0]]  # floor(6 cos(pi/2 s/3)) after rounds 1, 2; none after the last
    assert (seq[:, :2] == 5).all() and (seq[cand] < mask_id).all()


def test_random_mask_masks_a_share_of_the_candidates_only():
    from magtask_plugins.blocks.maskgit import random_mask

    cand = torch.zeros(50, 10, dtype=torch.bool)
    cand[:, 2:] = True
    m = random_mask(cand, 0.5, torch.Generator().manual_seed(0))
    assert not (m & ~cand).any() and (m.sum(1) == 4).all()
    m = random_mask(cand, None, torch.Generator().manual_seed(0))
    assert not (m & ~cand).any() and (m.sum(1) >= 1).all() and len(set(m.sum(1).tolist())) > 2
