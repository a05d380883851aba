"""The `predict` task (task.py: the run, its registration, the head contract and the evaluation)."""
