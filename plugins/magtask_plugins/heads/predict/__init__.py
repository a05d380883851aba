"""Heads of the predict task (magtask.contracts.PredictHead, past codes (B, C, tp, h, w) -> future
codes (B, C, tf, h, w)): `lstm_predictor` and `transformer_predictor`, the two temporal cores of the
shared track-space predictor (blocks.track_predict)."""
