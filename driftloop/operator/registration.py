"""What a finished training Job produced, and its registration in MLflow, exactly once.

The Job stops at the gate (`driftloop run --no-deploy`) and leaves its outcome in the
pod's termination message and in its MLflow run. The operator reattaches to that run
with the spec it recorded and registers + promotes through the same deploy executor as
every other runner, with deploy's inputs read from the records the earlier steps left.
The version is tagged with the resource's uid and generation, and deploy finds a version
carrying them instead of making a second: a retry, or a restarted operator, registers once.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.constants import RUN_TAG_ERROR, RUN_TAG_STATUS
from driftloop.operator import constants as k
from driftloop.operator.render import Owner, run_tags

if TYPE_CHECKING:
    from driftloop.mlflow_gateway import MLflowGateway

# The run tags (and version tags) that name one resource generation.
_IDENTITY = (k.TAG_UID, k.TAG_GENERATION)


@dataclass(frozen=True)
class Outcome:
    """A finished generation, as `status` shows it."""

    run_id: str | None
    succeeded: bool
    gate_passed: bool = False
    gate_reasons: list[str] = field(default_factory=list)
    model_version: str | None = None
    promoted: bool = False
    already_registered: bool = False
    error: str | None = None


def parse_termination_message(message: str | None) -> dict[str, Any]:
    """The JSON `driftloop run --json` left in the termination log; {} if absent or cut short."""
    if not message:
        return {}
    try:
        parsed = json.loads(message)
    except ValueError:  # truncated at 4 KiB, or log lines (FallbackToLogsOnError)
        return {}
    return parsed if isinstance(parsed, dict) else {}


def find_run(gateway: MLflowGateway, owner: Owner, *, experiment: str) -> str | None:
    """The MLflow run a generation's Job started in `experiment`, found by its resource tags."""
    identity = {key: value for key, value in run_tags(owner).items() if key in _IDENTITY}
    found = gateway.find_run(identity, experiment=experiment)
    return found.run_id if found is not None else None


def failure_reason(*, tracking_uri: str, owner: Owner, run_id: str | None,
                   experiment: str | None = None) -> str | None:
    """The one-line error a failed run left in its tags; None if MLflow or the run cannot tell.

    Args:
        experiment: where to look for the run when `run_id` is unknown [the resource's name].
    """
    from driftloop.errors import RegistryUnavailable
    from driftloop.mlflow_gateway import connect

    try:
        gateway = connect(tracking_uri)
        run_id = run_id or find_run(gateway, owner, experiment=experiment or owner.name)
        if run_id is None:
            return None
        return gateway.get_run(run_id).tags.get(RUN_TAG_ERROR)
    except RegistryUnavailable:
        return None


def kill_run(*, tracking_uri: str, owner: Owner, experiment: str, reason: str) -> str | None:
    """End a generation's MLflow run as KILLED, with `reason` as its error, if it is still running.

    Returns:
        The run's id; None when the generation has no run, or one that already ended.

    Raises:
        RegistryUnavailable: MLflow cannot be reached.
    """
    from driftloop.mlflow_gateway import connect

    gateway = connect(tracking_uri)
    identity = {key: value for key, value in run_tags(owner).items() if key in _IDENTITY}
    found = gateway.find_run(identity, experiment=experiment)
    if found is None or found.status != "RUNNING":
        return None
    gateway.set_run_tags(found.run_id, {RUN_TAG_STATUS: "killed", RUN_TAG_ERROR: reason})
    gateway.end_run(found.run_id, "KILLED")
    return found.run_id


def finish(*, tracking_uri: str, model_name: str, owner: Owner, run_id: str | None,
           experiment: str | None = None) -> Outcome:
    """Read the run's outcome and, when the gate passed, register and promote exactly once.

    Args:
        experiment: where to look for the run when `run_id` is unknown [`model_name`].

    Raises:
        RegistryUnavailable: MLflow cannot be reached (the caller retries later).
    """
    from driftloop.components.context import attach_recorded_run
    from driftloop.components.deploy import recorded_inputs
    from driftloop.components.steps import step
    from driftloop.mlflow_gateway import connect

    gateway = connect(tracking_uri)
    run_id = run_id or find_run(gateway, owner, experiment=experiment or model_name)
    if run_id is None:
        return Outcome(None, False, error="the Job finished but left no MLflow run")
    tags = gateway.get_run(run_id).tags
    if tags.get(RUN_TAG_STATUS) != "completed":
        return Outcome(run_id, False, error=tags.get(RUN_TAG_ERROR) or "the training run did not complete")
    with tempfile.TemporaryDirectory(prefix="driftloop-registration-") as tmp:
        ctx = attach_recorded_run(gateway, run_id, Path(tmp) / "spec", model_name=model_name)
        inputs = recorded_inputs(ctx, Path(tmp) / "records")
    blessing = inputs.blessing
    if not blessing.passed:
        return Outcome(run_id, True, False, blessing.reasons)
    deployed = step("deploy").execute(ctx, blessing, data_sha256=inputs.data_sha256, task=inputs.task,
                              tags=run_tags(owner), once_by=_IDENTITY)
    return Outcome(run_id, True, True, blessing.reasons, str(deployed.version), True,
                   already_registered=deployed.already_registered)

