"""The MLflow run every step of one pipeline run logs to, however the steps are spread over processes.

The in-process runner opens it once; each KFP task reattaches to it by id. So every runner logs the same artifacts, metrics and tags.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from driftloop.constants import RUN_TAG_ERROR, RUN_TAG_MODEL, RUN_TAG_RETRIED_ERROR, RUN_TAG_STATUS, SPEC_ARTIFACT

if TYPE_CHECKING:
    from driftloop.mlflow_gateway import MLflowGateway, ModelVersion, Tracker
    from driftloop.spec import Spec


@dataclass(frozen=True)
class RunContext:
    """What every step of one run shares: the spec, the MLflow gateway and the run it logs to."""

    spec: Spec
    gateway: MLflowGateway
    tracker: Tracker

    @property
    def run_id(self) -> str:
        return self.tracker.run_id

    @property
    def tracking_uri(self) -> str:
        return self.gateway.tracking_uri


def experiment_of(spec: Spec) -> str:
    """The MLflow experiment a spec's runs go to."""
    return spec.tracking.experiment or spec.model_name


def start_run(spec: Spec, *, tags: dict[str, str] | None = None,
              opened: Callable[[RunContext], None] | None = None) -> RunContext:
    """Open the MLflow run for `spec` (with extra `tags`) and log its parameters and the spec itself.

    Args:
        opened: told of the run as soon as it exists, before anything is logged to it (whoever must
            end it on a signal knows it from its first moment).
    """
    from driftloop.mlflow_gateway import connect, validate_model_name

    name = validate_model_name(spec.model_name)
    gateway = connect(spec.tracking.uri)
    tracker = gateway.start_run(experiment_of(spec), run_name=f"{name}-train", tags={RUN_TAG_MODEL: name, **(tags or {})})
    ctx = RunContext(spec, gateway, tracker)
    if opened is not None:
        opened(ctx)
    tracker.log_params({"data.path": spec.data.path, "data.target": spec.data.target, "spec_sha256": spec.digest()})
    tracker.log_text(spec.to_yaml(), SPEC_ARTIFACT)
    return ctx


def attach_run(spec: Spec, run_id: str) -> RunContext:
    """Reattach to a run opened by `start_run` (in another process)."""
    from driftloop.mlflow_gateway import connect

    gateway = connect(spec.tracking.uri)
    return RunContext(spec, gateway, gateway.tracker(run_id))


def reopen_retried_run(ctx: RunContext) -> str | None:
    """Reopen the run when an earlier attempt of this task ended it; returns that attempt's error line.

    KFP retries the train and deploy tasks; a failed attempt has ended the run FAILED with its line
    (`runtime.reported`). Left so, a retry that succeeds would finish the pipeline with its run still
    FAILED, which the exit handler leaves alone. Only those tasks call this: the tasks run one after
    another, so when one of them starts on an ended run, its own earlier attempt ended it. The earlier
    attempt's line stays on the run, as `RUN_TAG_RETRIED_ERROR`.
    """
    run = ctx.gateway.get_run(ctx.run_id)
    if run.status == "RUNNING":
        return None
    previous = run.tags.get(RUN_TAG_ERROR, f"the run was {run.status}")
    ctx.gateway.reopen_run(ctx.run_id, drop_tags=tuple(k for k in (RUN_TAG_STATUS, RUN_TAG_ERROR) if k in run.tags),
                           tags={RUN_TAG_RETRIED_ERROR: previous[:4000]})
    return previous


def finish_run(ctx: RunContext, error: str | None) -> None:
    """Mark the run FINISHED, or FAILED with the one-line error a user sees."""
    if error is None:
        ctx.tracker.set_tags({RUN_TAG_STATUS: "completed"})
        ctx.tracker.end("FINISHED")
        return
    ctx.tracker.set_tags({RUN_TAG_STATUS: "failed", RUN_TAG_ERROR: error[:4000]})
    ctx.tracker.end("FAILED")


def pinned_champion(ctx: RunContext, version: str | None) -> ModelVersion | None:
    """The champion as it was when the run started, so every step compares against the same one."""
    return ctx.gateway.model_version(ctx.spec.model_name, version) if version else None
