"""The `predict` task: `task` (the run and its registration; its docstring states the head contract
and the evaluation), `codes` (encoding clips and decoding predicted codes), `baselines` (copy-last,
constant velocity and the tracks redrawn in a video's style), `scores` (per-video scores, the judge's
verdicts) and `report` (the tables and the samples file)."""
