"""`magtask apply` on a classify run: each input's class and class probabilities.

The head's scores become probabilities by what it declares (ClassifyHead.scores): logits by softmax,
votes / weights (a k-NN's neighbours per class) divided by their sum (uniform if all are zero),
probabilities renormalised as they are."""

from __future__ import annotations

import numpy as np
import torch
from rich.table import Table

from magtask import MagtaskError
from magtask.console import out as stdout
from magtask.contracts import ClassifyHead, capability

OUTPUTS = (".json",)


def probabilities(scores: torch.Tensor, kind: str) -> torch.Tensor:
    """(B, K) scores -> (B, K) probabilities, rows summing to 1."""
    s = scores.detach().double()
    if kind == "logits":
        return torch.softmax(s, 1)
    if kind in ("votes", "probabilities"):
        s = s.clamp_min(0)
        total = s.sum(1, keepdim=True)
        return torch.where(total > 0, s / total.clamp_min(1e-300), torch.full_like(s, 1 / s.shape[1]))
    raise MagtaskError(f"the head declares scores={kind!r}; classify heads return logits, votes or probabilities")


@torch.no_grad()
def apply(run, videos, out) -> dict:
    from magtask.runs import write_json

    run.check_geometry(videos)
    names = run.class_names
    x = run.head_inputs(np.stack([v.video for v in videos]))
    head = run.head
    scores = torch.cat([head(x[i:i + 256].to(run.device)).cpu() for i in range(0, len(x), 256)])
    if tuple(scores.shape) != (len(videos), len(names)):
        raise MagtaskError(f"head {run.head_spec.name} returned scores of shape {tuple(scores.shape)}, expected "
                           f"{(len(videos), len(names))}")
    kind = capability(head, ClassifyHead, "scores")
    p = probabilities(scores, kind).numpy()
    rows = [{"input": v.name, "class": names[int(p[i].argmax())],
             "probabilities": {c: float(p[i, j]) for j, c in enumerate(names)}, "true_class": v.true_class}
            for i, v in enumerate(videos)]
    result = {"run_dir": str(run.run_dir), "task": "classify", "head": run.head_spec.name,
              "probabilities_from": kind, "inputs": rows}
    if out is not None:
        write_json(out, result)
    if not run.quiet:
        show(result, names)
    return result


def show(result: dict, names) -> None:
    rows = result["inputs"]
    known = any(r["true_class"] is not None for r in rows)
    t = Table(title=f"{result['head']} on {len(rows)} video{'s' * (len(rows) != 1)} (probabilities from "
                    f"{result['probabilities_from']})")
    t.add_column("input", overflow="fold")
    t.add_column("class")
    if known:
        t.add_column("true class")
    for c in names:
        t.add_column(c, justify="right")
    for r in rows:
        t.add_row(r["input"], r["class"], *([r["true_class"] or "-"] if known else []),
                  *(f"{r['probabilities'][c]:.3f}" for c in names))
    stdout.print(t)
    if known:
        right = sum(r["class"] == r["true_class"] for r in rows if r["true_class"] is not None)
        stdout.print(f"accuracy on the labelled inputs: {right / sum(r['true_class'] is not None for r in rows):.3f}")
