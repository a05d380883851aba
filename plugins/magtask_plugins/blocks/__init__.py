"""Building blocks the heads share, functions and small modules that know nothing of a head or a
task: `dot_windows` (the dot as a track plus k x k windows of the code grid; the code track),
`maskgit` (masking and unmasking on the cosine schedule), `patch_maskgit` (a class-conditional
MaskGIT over a token grid read in patches), `code_mixture` (k-means mixtures of low-rank Gaussians
over code grids), `low_rank_gaussian` (per-group PPCA Gaussians), `code_predict` (the code-space
predictor the code-only predict heads wrap), `track_predict` (the track-space predictor of
`track-predictor`) and `grid_symmetries` (random mirrors / transposes of code grids).
Codes as per-channel categories (digits, one-hot, indices) come from the tokenizer contract's
CodeGrid (config.grid), never from a block that presumes one quantizer."""
