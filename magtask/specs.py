"""What a plugin registers: a head (a model for one task) or a task (data in, metrics out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

CLASS_NAMES = ("linear", "circular", "helical", "parabolic")
CONSUMES = ("latents", "indices")


@dataclass
class HeadSpec:
    """A head for one task.

    build(**config) returns the head object; `config` is what the task passes (input shapes,
    number of classes, ...) and is saved in the run dir so the head can be rebuilt. What the object
    must provide is the task's contract (docs/plugins.md): a torch.nn.Module trained by the shared
    loop, or an object with fit(...) for heads that are fitted rather than trained.
    """

    name: str
    task: str
    build: Callable[..., Any]
    aliases: tuple[str, ...] = ()
    description: str = ""
    consumes: str = "latents"  # "latents" (continuous, quantized) or "indices" (token ids)
    package: str = ""  # filled in by the registry: the distribution that registered it
    version: str = ""

    def problems(self) -> list[str]:
        """What is missing or malformed, as short phrases (empty when the spec is usable)."""
        out = []
        if not isinstance(self.name, str) or not self.name:
            out.append("no name")
        if not isinstance(self.task, str) or not self.task:
            out.append("no task")
        if not callable(self.build):
            out.append("build is not callable")
        if self.consumes not in CONSUMES:
            out.append(f"consumes must be one of {', '.join(CONSUMES)}, not {self.consumes!r}")
        if isinstance(self.aliases, str):
            out.append("aliases must be a tuple of names, not a string")
        return out


@dataclass
class TaskSpec:
    """A task: run(ctx) trains/fits ctx.head on codes, evaluates it, writes pictures, returns metrics."""

    name: str
    run: Callable[[Any], dict]
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # task options and their defaults
    package: str = ""
    version: str = ""

    def problems(self) -> list[str]:
        out = []
        if not isinstance(self.name, str) or not self.name:
            out.append("no name")
        if not callable(self.run):
            out.append("run is not callable")
        return out
