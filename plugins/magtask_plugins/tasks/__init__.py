"""The built-in tasks, one module or package each, each registering its TaskSpec through
`register_tasks`: `classify` (codes -> class), `generate` (class -> codes -> videos) and `predict`
(past frames' codes -> future frames' codes -> frames). A task's module docstring states its head
contract (magtask.contracts) and what it scores."""
