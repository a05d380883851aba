"""The built-in heads, one subpackage per task (`classify`, `generate`, `predict`), one module per
head, each registering its HeadSpec through `register_heads`."""
