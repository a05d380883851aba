"""The shipped tokenizer checkpoint and its card, installed as package data of `magtask.checkpoints`.

pyproject.toml maps this folder onto that package, so a wheel, an sdist and an editable install all
carry it; `magtask.tokenizer.io.default_tokenizer_path` finds it with importlib.resources.
"""
