"""The table of the pipeline's steps, in order: every runner walks this one list.

Each step's module holds its pure function (`run`, `decide`) and one executor,
`execute(ctx, ...)`, that adds the step's MLflow logging. The table names the module
rather than importing it, so a KFP task that runs one step loads only that step
(train's torch is not imported by the gate task, validate's Great Expectations by no other).

Users: the in-process runner (`driftloop.runner`), the KFP components and pipeline
(`driftloop.pipelines.kfp_components`, `.pipeline`) and the kfp-local outcome reader
(`driftloop.pipelines.local`). An MLTrainingJob's pod runs the in-process runner.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Step:
    """One step: its name (also its KFP task's name) and the module holding its executor."""

    name: str
    module: str

    @property
    def execute(self) -> Callable[..., Any]:
        """The step's executor, `execute(ctx, ...)`; importing its module on first use."""
        return importlib.import_module(self.module).execute  # type: ignore[no-any-return]


STEPS: tuple[Step, ...] = (
    Step("validate", "driftloop.components.validate"),
    Step("feature", "driftloop.components.feature"),
    Step("train", "driftloop.components.train"),
    Step("evaluate", "driftloop.components.evaluate"),
    Step("gate", "driftloop.components.gate"),
    Step("deploy", "driftloop.components.deploy"),
)
STEP_NAMES: tuple[str, ...] = tuple(step.name for step in STEPS)


def step(name: str) -> Step:
    """The step called `name`.

    Raises:
        KeyError: no such step.
    """
    for candidate in STEPS:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no step {name!r}; steps are: {', '.join(STEP_NAMES)}")
