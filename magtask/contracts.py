"""The contracts between the core, the tasks and their heads (docs/plugins.md documents all of it).

Every task builds its head the same way, `spec.build(config)` with a BuildConfig, and accepts the
same three kinds of head (head_kind):
  fitted          the head has fit(data): the task calls it once with the TrainData, no optimiser;
  trained         a torch.nn.Module with trainable parameters: the shared loop (magtask/loop.py)
                  minimises its loss; before that, prepare(data) if the head has it;
  parameter-free  neither: used as built.
What the head provides beyond that is its task's contract: ClassifyHead, GenerateHead, PredictHead
below. Each optional capability is declared once, on the base class, with its default; a head need
not subclass the base (capability() reads the head's value, else the base's default).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, ClassVar

import torch

from magtask.errors import MagtaskError
from magtask.specs import DATA_SIDE_INPUTS, SIDE_INPUTS


@dataclass(frozen=True)
class BuildConfig:
    """What build(config) receives, for every task. Saved in the run dir, so the head can be rebuilt.

    in_shape      what the head consumes per video: (C, t, h, w) latents or (t, h, w) indices
                  (predict: the clip, past + future latent steps)
    class_names   the dataset's classes, in label order (n_classes = len(class_names))
    codebook_size the tokenizer's number of tokens
    levels        the tokenizer's FSQ levels per code channel, or None when it has none
    grid          the tokenizer's code grid (magtask.tokenizer.grid.CodeGrid): FSQ, LFQ or none; per-channel
                  digits, one-hot, token indices and snap(values) for any of them. Heads put what they
                  produce on the grid with grid.snap and nothing else.
    frames, image_size  the videos' T and H (= W)
    options       the head's options (HeadSpec.options), validated, defaults filled in
    task          the task's name; task_config its extra facts (predict: n_past_steps, n_future_steps,
                  stride, patch)
    """

    task: str
    in_shape: tuple[int, ...]
    class_names: tuple[str, ...]
    codebook_size: int
    levels: tuple[int, ...] | None
    frames: int
    image_size: int
    options: dict[str, Any] = field(default_factory=dict)
    task_config: dict[str, Any] = field(default_factory=dict)
    grid: Any = None  # CodeGrid; None only in configs saved before it existed (then FSQ `levels`)

    def __post_init__(self):
        if self.grid is None and self.levels is not None:
            from magtask.tokenizer.grid import CodeGrid

            object.__setattr__(self, "grid", CodeGrid.fsq(self.levels))

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def to_json(self) -> dict:
        d = asdict(self)
        d["grid"] = None if self.grid is None else self.grid.to_json()
        return d

    @classmethod
    def from_json(cls, d: dict) -> "BuildConfig":
        d = dict(d)
        d["in_shape"] = tuple(int(s) for s in d["in_shape"])
        d["class_names"] = tuple(d["class_names"])
        d["levels"] = None if d.get("levels") is None else tuple(int(v) for v in d["levels"])
        if d.get("grid") is not None:
            from magtask.tokenizer.grid import CodeGrid

            d["grid"] = CodeGrid.from_json(d["grid"])
        return cls(**d)


class SideInputs:
    """The side inputs a task hands a head: only those the head declared, computed on first use.

    side["tracker_tracks"] returns the data; asking for one the head did not declare is an error, so a
    head cannot quietly use more than its metrics.json says."""

    def __init__(self, head: str, declared: tuple[str, ...], providers: dict[str, Callable[[], Any]]):
        self.head, self.declared, self._providers, self._values = head, tuple(declared), providers, {}

    def __contains__(self, name: str) -> bool:
        return name in self.declared and name in self._providers

    def __getitem__(self, name: str) -> Any:
        if name not in SIDE_INPUTS:
            raise MagtaskError(f"head {self.head} asked for {name!r}, which is not a side input "
                               f"(known: {', '.join(SIDE_INPUTS)})")
        if name not in self.declared:
            raise MagtaskError(f"head {self.head} asked for side input {name!r} without declaring it "
                               "(HeadSpec.side_inputs): refused")
        if name not in self._providers:
            raise MagtaskError(f"head {self.head}: this task does not provide side input {name!r}")
        if name not in self._values:
            self._values[name] = self._providers[name]()
        return self._values[name]


def check_side_inputs(head_spec, task_spec) -> None:
    """Refuse, before any work, a head that declares data the task cannot hand it."""
    from magtask.errors import UsageError

    missing = [s for s in head_spec.side_inputs if s in DATA_SIDE_INPUTS and s not in task_spec.provides]
    if missing:
        raise UsageError(f"head {head_spec.name} needs side input(s) {', '.join(missing)}, which task "
                         f"{task_spec.name} does not provide (it provides: {', '.join(task_spec.provides) or 'none'})")


@dataclass
class TrainData:
    """What fit(data) / prepare(data) / train_tensors(data) receive: the train split only.

    x        (N, *in_shape) the head's inputs (latents float32, or indices int64)
    y        (N,) int64 class labels
    side     the declared side inputs (SideInputs)
    seed     the run's seed (for a head's own random draws)
    """

    x: torch.Tensor
    y: torch.Tensor
    side: SideInputs
    seed: int = 0


def head_kind(head) -> str:
    """'fitted', 'trained' or 'parameter-free' (see the module docstring)."""
    if callable(getattr(head, "fit", None)):
        return "fitted"
    if isinstance(head, torch.nn.Module) and any(p.requires_grad for p in head.parameters()):
        return "trained"
    return "parameter-free"


def capability(head, base: type, name: str) -> Any:
    """The head's value of an optional capability, else the task contract's default."""
    return getattr(head, name, getattr(base, name))


class Head:
    """Capabilities every head may declare.

    train_defaults   trained heads: the shared loop's settings (epochs, batch_size, lr, weight_decay,
                     patience); `--epochs` overrides epochs
    fit(data)        makes the head a fitted head (TrainData)
    prepare(data)    trained heads: sees the training data once, before the optimiser is made
    train_tensors(data) -> tuple of tensors indexed along dim 0, the loop's minibatches (default: the task's)
    loss(*batch)     trained heads: the scalar to minimise on a minibatch (default: the task's, if it has one)
    state_dict() / load_state_dict()  how the head is saved to and rebuilt from the run dir
                     (torch.nn.Module provides them; a head without them is rebuilt from its config alone)
    """

    train_defaults: ClassVar[dict] = {}


class ClassifyHead(Head):
    """Task classify: head(x) -> (B, n_classes) scores for codes x (B, *in_shape); argmax is the class.

    Default loss of a trained head: cross entropy of head(x) against the labels; minibatches (x, y).

    scores         what head(x) returns, so that `magtask apply` can turn it into class probabilities:
                   "logits" (softmax), "probabilities" (used as they are, renormalised), or "votes"
                   (non-negative counts or weights, e.g. a k-NN's neighbours per class: divided by their sum)
    """

    scores: ClassVar[str] = "logits"


class GenerateHead(Head):
    """Task generate: head.sample(labels (B,) int64, generator) -> codes (B, C, t, h, w) float, or token
    indices (B, t, h, w) int; a trained head must define loss(x, y, generator=None).

    conditional    samples are drawn per requested class (False: labels are all -1, class_match is null)
    snap_to_grid   float samples are put on the code grid by the tokenizer's quantizer before decoding
    """

    conditional: ClassVar[bool] = False
    snap_to_grid: ClassVar[bool] = True


class PredictHead(Head):
    """Task predict: head.predict(past (B, C, tp, h, w), n_future_steps) -> future codes
    (B, C, n_future_steps, h, w), from the past only. Default minibatches of a trained head: (clips,),
    the train split's clips (N, C, tp + tf, h, w); it must define loss(clips) (or its own
    train_tensors / loss)."""
