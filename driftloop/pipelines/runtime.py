"""What the KFP component bodies share inside their pods: spec in, table across, errors out.

The pipeline passes the spec between tasks as a JSON struct; every task re-validates
it with the one spec model. A task that fails prints the user's one-line error after
`ERROR_MARKER`, so the KFP log and `driftloop run --runner kfp-local` show that line
and not only a traceback. Each step a task runs prints its record (status, seconds)
after `STEP_MARKER`: kfp-local's outcome reader takes the steps' records from there,
also for a task that runs two steps.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from driftloop.components.context import RunContext
    from driftloop.spec import Spec
    from driftloop.table import LoadedTable

ERROR_MARKER = "driftloop-error: "
STEP_MARKER = "driftloop-step: "  # followed by `<step> <completed|failed> <seconds>`
# MLflow run tag holding the KFP run id: the exit handler finds the run by it.
KFP_RUN_TAG = "driftloop.kfp_run_id"


# Set on every task by `configure_task`: the Secret that should hold the task's MLflow and S3 credentials.
SECRET_ENV = "DRIFTLOOP_CREDENTIALS_SECRET"


def spec_from_parameters(**sections: Any) -> Spec:
    """The spec from the pipeline's parameters (an empty `output` means none)."""
    from driftloop.spec import validate_spec

    sections["output"] = sections.get("output") or None
    spec = validate_spec(sections, source="pipeline parameters")
    require_tracking_uri(spec.tracking.uri)
    return spec


def require_tracking_uri(uri: str | None) -> None:
    """In a cluster, a task with no tracking URI stops, naming the Secret that should give it.

    Outside a cluster the local SQLite store is the right default; inside one, each pod would
    get a store of its own, and the next task could not find the run this one opened.
    """
    import os

    from driftloop.errors import UsageError

    if uri or os.environ.get("MLFLOW_TRACKING_URI") or not os.environ.get("KUBERNETES_SERVICE_HOST"):
        return
    secret = os.environ.get(SECRET_ENV) or "driftloop-credentials"
    raise UsageError(f"no MLflow tracking URI in this pod: add MLFLOW_TRACKING_URI to the Secret {secret!r} in "
                     "this namespace (or set tracking.uri); a pod-local SQLite store would lose the run")


def model_of(registry: dict[str, Any]) -> str:
    """The registered model a drift task checks: the spec's `registry.model_name`, which the retrain registers to."""
    from driftloop.errors import UsageError

    name = registry.get("model_name")
    if not name:
        raise UsageError("registry.model_name is not set: the drift check reads the reference stored with that "
                         "model's @champion, and the retrain registers to it; pass registry={\"model_name\": NAME}")
    return str(name)


def spec_of(parameters: dict[str, Any]) -> Spec:
    from driftloop.spec import validate_spec

    spec = validate_spec(parameters, source="pipeline spec")
    require_tracking_uri(spec.tracking.uri)
    return spec


@contextmanager
def step_record(name: str) -> Iterator[None]:
    """Time one step's executor in this task and print its record after `STEP_MARKER`, failed or not."""
    import time

    started, status = time.perf_counter(), "failed"
    try:
        yield
        status = "completed"
    finally:
        print(f"{STEP_MARKER}{name} {status} {time.perf_counter() - started:.3f}", flush=True)


@contextmanager
def reported(ctx: RunContext | None) -> Iterator[None]:
    """On failure: print the one-line error and, when there is a run, mark it FAILED with that line."""
    try:
        yield
    except Exception as e:
        from driftloop.components.context import finish_run
        from driftloop.runner import error_line

        line = error_line(e)
        print(f"{ERROR_MARKER}{line}", file=sys.stderr, flush=True)
        if ctx is not None:
            try:
                finish_run(ctx, line)
            except Exception:  # MLflow itself may be what failed; the line above still says why
                pass
        raise


@contextmanager
def attached(parameters: dict[str, Any], run_id: str, *, retried: bool = False) -> Iterator[RunContext]:
    """A step task's run: the spec from its parameters, reattached to the run `open_run` opened.

    A failure inside marks that run FAILED with the user's one-line error, as `reported` does.
    `retried`: the task has a retry policy (`pipeline.RETRIES`): an attempt of it that starts on an
    ended run reopens it (`reopen_retried_run`), and may log params an earlier attempt logged otherwise.
    """
    from driftloop.components.context import attach_run, reopen_retried_run

    with reported(None):
        ctx = attach_run(spec_of(parameters), run_id)
        if retried:
            ctx.tracker.params_may_change = True
            if (previous := reopen_retried_run(ctx)) is not None:
                print(f"retrying after: {previous}", flush=True)
    with reported(ctx):
        try:
            yield ctx
        finally:
            # What the step made (ONNX Runtime sessions, with their native thread pools) goes now, while the
            # interpreter is whole, not in its teardown: a kfp-local evaluate task once ended after its work with
            # "terminate called without an active exception" (a C++ thread destroyed unjoined), failing the run.
            import gc

            gc.collect()


def same_data_version(uri: str, expected: str) -> None:
    """Fail, naming the table, when it was overwritten after `open-run` took its version ("" checks nothing)."""
    from driftloop.errors import StorageError
    from driftloop.storage import fingerprint

    if expected and (now := fingerprint(uri)) != expected:
        raise StorageError(f"{uri}: the table changed during this run (was {expected}, now {now}); "
                           "start a new run to train on the new data")


def save_table(ctx: RunContext, dataset: Any) -> LoadedTable:
    """Copy the input table byte for byte into the Dataset artifact, then load it from there as the
    in-process runner does: with `data.read`, and without the rows whose target is missing (counted)."""
    from driftloop.constants import PARAM_DROPPED_MISSING_TARGET
    from driftloop.storage import read_bytes
    from driftloop.table import dropped_line, load_training_table, table_format

    data = ctx.spec.data
    kind = table_format(data.path, data.format)
    Path(dataset.path).parent.mkdir(parents=True, exist_ok=True)
    Path(dataset.path).write_bytes(read_bytes(data.path))
    loaded, dropped = load_training_table(data.model_copy(update={"format": kind}), uri=dataset.path,
                                          left_out=ctx.spec.feature.leaves_out)
    ctx.tracker.log_params({PARAM_DROPPED_MISSING_TARGET: dropped})
    if dropped:
        print(dropped_line(dropped, data), flush=True)
    dataset.metadata.update({"source": data.path, "format": kind, "sha256": loaded.sha256, "rows": len(loaded.frame),
                             "dropped_missing_target": dropped})
    return loaded


def copy_file(source: Path, destination: str) -> None:
    Path(destination).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, destination)


# What `PipelineTaskFinalStatus.state` says of a group that succeeded: kfp.local (and the SDK's docstring) say
# SUCCEEDED; the open-source backend passes the ML Metadata execution state, COMPLETE (backend/src/v2/driver,
# and its own test pipeline `pipeline_with_input_status_state` asserts it)
SUCCEEDED_STATES = ("SUCCEEDED", "COMPLETE")


def close_run(parameters: dict[str, Any], *, kfp_run_id: str, state: str, task: str | None) -> None:
    """The exit handler's work: close this KFP run's MLflow run if no task has closed it.

    A task that failed has closed it with its error line already; a spec that never
    validated opened no run, so there is nothing to close.
    """
    from driftloop.components.context import RunContext, experiment_of, finish_run
    from driftloop.errors import InvalidSpec
    from driftloop.mlflow_gateway import connect

    try:
        spec = spec_from_parameters(**parameters)
    except InvalidSpec:
        return
    gateway = connect(spec.tracking.uri)
    found = gateway.find_run({KFP_RUN_TAG: kfp_run_id}, experiment=experiment_of(spec))
    if found is None or found.status != "RUNNING":
        return
    ctx = RunContext(spec, gateway, gateway.tracker(found.run_id))
    if state in SUCCEEDED_STATES:
        finish_run(ctx, None)
    else:
        # the handler sees only the exit handler group's state (its task is that group, not the task that failed);
        # the failed task's own log holds the why
        finish_run(ctx, f"the pipeline ended {state} (in {task or 'an unknown task'}); the failed task's log says "
                        f"why (after {ERROR_MARKER.strip()!r} when driftloop caught the error)")
