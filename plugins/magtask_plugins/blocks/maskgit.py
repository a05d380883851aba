"""One MaskGIT unmasking round (Chang et al. 2022), used by `token-prior` (blocks.patch_maskgit).

Every still-masked slot gets a token sampled from its distribution; the most confident ones (log
probability of the sampled token + Gumbel noise that anneals to zero) are kept and the rest masked
again, so that after round s of n about total * cos(pi/2 * s/n) slots stay masked (none after the last).
"""

from __future__ import annotations

import math

import torch


def unmask_round(seq: torch.Tensor, masked: torch.Tensor, logp: torch.Tensor, step: int, steps: int, total: int,
                 mask_id: int, noise: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """seq (B, L) token ids; masked (B, L) bool, the slots to fill (the same count in every row);
    logp (M, V) log-probabilities of token ids for the masked slots in row-major order (M = masked.sum());
    step 0..steps-1; total: how many slots the rounds fill altogether. Returns the new seq."""
    pick = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(1)
    frac = (step + 1) / steps
    gumbel = -torch.log(-torch.log(torch.rand(len(pick), generator=generator).clamp(1e-20, 1)))
    conf = torch.full(seq.shape, float("inf"))
    conf[masked] = logp.gather(1, pick[:, None]).squeeze(1) + noise * (1 - frac) * gumbel
    out = seq.clone()
    out[masked] = pick
    keep_masked = int(math.floor(total * math.cos(math.pi / 2 * frac))) if step < steps - 1 else 0
    keep_masked = min(keep_masked, int(masked.sum(1).min()) - 1)  # fill at least one slot a round
    if keep_masked > 0:
        cut = conf.sort(1).values[:, keep_masked - 1:keep_masked]
        out[(conf <= cut) & masked] = mask_id
    return out


def random_mask(cand: torch.Tensor, ratio: float | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """cand (B, L) bool, the slots that may be masked -> (B, L) bool mask for training: per row a ratio
    drawn from MaskGIT's cosine schedule (or the given one) of its candidates, at least one, at random."""
    b, n = cand.shape
    n_cand = cand.sum(1, keepdim=True)
    if ratio is None:
        u = torch.rand(b, 1, generator=generator)
        n_mask = (torch.cos(u * math.pi / 2) * n_cand).ceil().clamp(min=1)
    else:
        n_mask = (ratio * n_cand).ceil().clamp(min=1)
    r = torch.rand(b, n, generator=generator).masked_fill(~cand, 2.0)
    return r.argsort(1).argsort(1) < n_mask
