"""Heads of the generate task (magtask.contracts.GenerateHead, labels (B,) -> codes or token indices):
`gaussian_prior` (one Gaussian over the code grid per class), `class_conditional_prior` (a mixture of
low-rank Gaussians over the dot's track per class, codes drawn as training windows) and `token_prior`
(MaskGIT over track tokens, then over the code windows)."""
