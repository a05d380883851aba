"""Heads of the generate task (magtask.contracts.GenerateHead, labels (B,) -> codes or token indices).

Code-only (side inputs: none): `gaussian_prior` (an unconditional mixture of low-rank Gaussians over
the code grid), `class_conditional_prior` (one such mixture per class) and `token_prior` (a
class-conditional MaskGIT over the token grid). With side inputs: `track_prior` (a mixture over the
dot's frame track read by the evaluation's tracker, drawn with training code windows).
"""
