"""Heads of the predict task (magtask.contracts.PredictHead, past codes (B, C, tp, h, w) -> future
codes (B, C, tf, h, w)): the code-only `lstm_predictor` and `transformer_predictor` (the two temporal
cores of blocks.code_predict) and `track_predictor` (the track-space predictor of blocks.track_predict,
with side inputs: the ceiling task knowledge buys)."""
