"""Heads of the classify task (magtask.contracts.ClassifyHead, codes (B, C, t, h, w) -> logits
(B, n_classes)): `mlp_classifier` (a conv stem over the code grid -> MLP, trained by the shared loop)
and `track_classifier` (the dot's track read off the codes -> motion-model fit residuals -> a small
fitted MLP)."""
