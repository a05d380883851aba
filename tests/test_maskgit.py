"""MaskGIT's masking and unmasking rounds (magtask_plugins.blocks.maskgit), shared by token-prior."""

import torch


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
