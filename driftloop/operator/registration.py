"""What a finished training Job produced, and its registration in MLflow, exactly once.

The Job stops at the gate (`driftloop run --no-deploy`) and leaves its outcome in the
pod's termination message and in its MLflow run's tags. The operator reads the gate's
blessing from the run and registers + promotes through the same deploy step as
`driftloop run`, tagging the version with the resource's uid and generation. A retry,
or a restarted operator, finds that version by those tags instead of making a second.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driftloop.constants import (
    BLESSING_FILE,
    EVALUATION_DIR,
    RUN_TAG_DEPLOYED,
    RUN_TAG_ERROR,
    RUN_TAG_MODEL_VERSION,
    RUN_TAG_STATUS,
    TAG_TASK,
)
from driftloop.operator import constants as k
from driftloop.operator.render import Owner, run_tags


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


def _registry(tracking_uri: str) -> Any:
    from driftloop.registry import Registry
    from driftloop.tracking import connect

    return Registry(connect(tracking_uri), tracking_uri)


def find_run(registry: Any, owner: Owner) -> str | None:
    """The MLflow run a generation's Job started, found by its resource tags."""
    clauses = " and ".join(f"tags.`{key}` = '{value}'" for key, value in run_tags(owner).items()
                           if key in (k.TAG_UID, k.TAG_GENERATION))
    experiments = [e.experiment_id for e in registry.client.search_experiments()]
    runs = registry.client.search_runs(experiments, clauses, order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0].info.run_id if runs else None


def failure_reason(*, tracking_uri: str, owner: Owner, run_id: str | None) -> str | None:
    """The one-line error a failed run left in its tags; None if MLflow or the run cannot tell."""
    from driftloop.errors import RegistryUnavailable

    try:
        registry = _registry(tracking_uri)
        run_id = run_id or find_run(registry, owner)
        if run_id is None:
            return None
        return registry.client.get_run(run_id).data.tags.get(RUN_TAG_ERROR)
    except RegistryUnavailable:
        return None


def finish(*, tracking_uri: str, model_name: str, owner: Owner, run_id: str | None) -> Outcome:
    """Read the run's outcome and, when the gate passed, register and promote exactly once.

    Raises:
        RegistryUnavailable: MLflow cannot be reached (the caller retries later).
    """
    from mlflow.artifacts import download_artifacts

    from driftloop.components import deploy
    from driftloop.components.gate import Blessing

    registry = _registry(tracking_uri)
    run_id = run_id or find_run(registry, owner)
    if run_id is None:
        return Outcome(None, False, error="the Job finished but left no MLflow run")
    run = registry.client.get_run(run_id)
    tags, params = run.data.tags, run.data.params
    if tags.get(RUN_TAG_STATUS) != "completed":
        return Outcome(run_id, False, error=tags.get(RUN_TAG_ERROR) or "the training run did not complete")
    with tempfile.TemporaryDirectory(prefix="driftloop-blessing-") as tmp:
        path = download_artifacts(artifact_uri=f"runs:/{run_id}/{EVALUATION_DIR}/{BLESSING_FILE}", dst_path=tmp,
                                  tracking_uri=tracking_uri)
        blessing = Blessing.load(Path(path))
    if not blessing.passed:
        return Outcome(run_id, True, False, blessing.reasons)
    identity = {key: value for key, value in run_tags(owner).items() if key in (k.TAG_UID, k.TAG_GENERATION)}
    existing = registry.find_version(model_name, identity)
    if existing is None:
        deployed = deploy.run(blessing, registry=registry, model_name=model_name, run_id=run_id,
                              data_uri=params.get("data.path", ""), data_sha256=tags.get("driftloop.data_sha256", ""),
                              spec_sha256=params.get("spec_sha256", ""), task=tags.get(TAG_TASK, ""),
                              tags=run_tags(owner))
        version = deployed.version
    else:  # registered before a restart; finish what that attempt started
        version = existing.version
        if version not in registry.history(model_name):
            registry.promote(model_name, version)
    registry.client.set_tag(run_id, RUN_TAG_DEPLOYED, "true")
    registry.client.set_tag(run_id, RUN_TAG_MODEL_VERSION, str(version))
    return Outcome(run_id, True, True, blessing.reasons, str(version), True, already_registered=existing is not None)
