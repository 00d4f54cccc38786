"""The in-process runner: the steps of `components.steps.STEPS` in order, in one process, one MLflow run.

This is what `driftloop run` does, and what an MLTrainingJob's container runs. Each
step is its executor, called with the outputs of the steps before it; after a deploy,
the serving targets are rolled onto the new version (`roll_out_serving`).
"""

from __future__ import annotations

import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.components.steps import STEP_NAMES, step
from driftloop.console import Console
from driftloop.constants import (
    DEFAULT_HOME,
    EVALUATION_DIR,
    FEATURES_DIR,
    METRICS,
    RUN_TAG_DEPLOYED,
    TRAIN_DIR,
    VALIDATION_DIR,
)
from driftloop.errors import DriftloopError
from driftloop.spec import Spec

if TYPE_CHECKING:
    from driftloop.components.context import RunContext
    from driftloop.components.deploy import DeployResult


@dataclass
class StepRecord:
    name: str
    status: str = "skipped"  # completed | failed | skipped
    seconds: float = 0.0


@dataclass
class RunResult:
    status: str = "failed"
    deployed: bool = False
    gate: dict[str, Any] = field(default_factory=lambda: {"passed": False, "reasons": []})
    metrics: dict[str, float] = field(default_factory=dict)
    model_name: str = ""
    model_version: str | None = None
    run_id: str | None = None
    steps: list[StepRecord] = field(default_factory=lambda: [StepRecord(n) for n in STEP_NAMES])
    error: str | None = None  # the one line a user sees
    traceback: str | None = None  # only for internal errors, shown with --debug
    exit_code: int = 1
    champion_metrics: dict[str, float] | None = None
    champion_version: str | None = None
    trained_model: str | None = None  # the family served (mlp, gbm, linear, module); for the summary
    candidates: dict[str, float] = field(default_factory=dict)  # train.model auto: family -> validation score
    candidate_metric: str = ""

    def to_json(self) -> dict[str, Any]:
        """The documented `--json` shape, exactly."""
        return {"status": self.status, "deployed": self.deployed, "gate": self.gate, "metrics": self.metrics,
                "model_name": self.model_name, "model_version": self.model_version, "run_id": self.run_id,
                "steps": [{"name": s.name, "status": s.status, "seconds": round(s.seconds, 3)} for s in self.steps]}

    def record(self, name: str) -> StepRecord:
        return next(s for s in self.steps if s.name == name)


class _Pipeline:
    """Runs each step's executor under the console's progress line and records its status and time."""

    def __init__(self, ctx: RunContext, console: Console, result: RunResult) -> None:
        self.ctx, self.console, self.result = ctx, console, result

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        record = self.result.record(name)
        started = time.perf_counter()
        try:
            with self.console.step(name):
                yield
        except BaseException:
            record.status, record.seconds = "failed", time.perf_counter() - started
            raise
        record.status, record.seconds = "completed", time.perf_counter() - started

    def run(self, name: str, *args: Any, **kwargs: Any) -> Any:
        with self.timed(name):
            return step(name).execute(self.ctx, *args, **kwargs)


def run_pipeline(spec: Spec, *, console: Console, deploy: bool = True, tags: dict[str, str] | None = None,
                 force: bool = False) -> RunResult:
    """Run validate → feature → train → evaluate → gate → deploy.

    Never raises for a failure a user can cause: the result says `failed`, carries the
    one-line error and exit code 1, the MLflow run is marked FAILED and nothing is promoted.

    Args:
        deploy: False stops after the gate and leaves registration to the caller (the
            MLTrainingJob operator registers exactly once, across its own restarts).
        tags: extra tags on the MLflow run, e.g. the resource that asked for it.
        force: train even when a registered version came from the same data and spec
            (otherwise that version is reported, see `identical_version`, and nothing runs).
    """
    from driftloop.components.context import finish_run, start_run

    if deploy and not force:
        unchanged = identical_version(spec)
        if unchanged is not None:
            return unchanged
    result = RunResult(model_name=spec.model_name)
    ctx = start_run(spec, tags=tags)
    result.run_id = ctx.run_id
    local_out, upload_to = _output_dir(spec, result.run_id)
    console.info(f"run {result.run_id} · model {result.model_name} · tracking {ctx.tracking_uri}")
    try:
        _steps(_Pipeline(ctx, console, result), local_out, stop_at_gate=not deploy)
        result.status, result.exit_code = "completed", 0
        finish_run(ctx, None)
    except Exception as e:
        result.error = error_line(e)
        result.status, result.exit_code = "failed", 1
        result.deployed, result.model_version = False, None
        if not isinstance(e, DriftloopError):
            result.traceback = traceback.format_exc()
        try:
            finish_run(ctx, result.error)
        except Exception:  # the tracking server itself may be what failed; the error line says so
            pass
    finally:
        if upload_to is not None:
            from driftloop.storage import upload_dir

            upload_dir(local_out, f"{upload_to.rstrip('/')}/{result.run_id}")
    return result


def identical_version(spec: Spec) -> RunResult | None:
    """The registered version trained on the same data (content hash) with the same spec, as an `unchanged` result.

    Checked before any step runs, by the lineage tags deploy writes on every version, so an identical
    rerun trains nothing, opens no MLflow run and registers nothing. None when there is no such version,
    or when the data cannot be read (the run then reports that, as its first step).
    """
    from driftloop.constants import TAG_DATA_SHA256, TAG_SPEC_SHA256
    from driftloop.mlflow_gateway import connect
    from driftloop.storage import read_bytes, sha256

    try:
        data_sha256 = sha256(read_bytes(spec.data.path))
    except DriftloopError:
        return None
    found = connect(spec.tracking.uri).find_version(spec.model_name, {TAG_DATA_SHA256: data_sha256,
                                                                     TAG_SPEC_SHA256: spec.digest()})
    if found is None:
        return None
    reason = (f"SKIP v{found.version} was trained on the same data (sha256 {data_sha256[:12]}) with the same spec; "
              f"nothing trained or registered (--force re-trains)")
    return RunResult(status="unchanged", gate={"passed": False, "reasons": [reason]}, model_name=spec.model_name,
                     model_version=str(found.version), run_id=found.run_id, exit_code=0)


def roll_out_serving(spec: Spec, deployed: DeployResult) -> list[str]:
    """Roll the spec's serving targets onto a newly deployed version; one line per target.

    Every runner calls this after a successful deploy: serving follows deploy, and the
    deploy step itself knows nothing about serving.
    """
    if not deployed.deployed or deployed.version is None:
        return []
    if not (spec.serving.reload_urls or spec.serving.deployment):
        return []
    from driftloop.serve.rollout import roll_out

    return list(roll_out(spec.serving, deployed.model_name, deployed.version))


def run_worker(console: Console) -> int:
    """A torchrun rank other than 0: wait for rank 0's training inputs, train its replica, exit."""
    from driftloop.components.train import fit
    from driftloop.distributed import NO_DISTRIBUTED_FIT, TrainingInputs, active_world, share_training_inputs

    inputs = share_training_inputs(None)
    if inputs == NO_DISTRIBUTED_FIT:
        console.info(f"rank {active_world().rank}: the model trained in rank 0 alone (not a torch model); done")
        return 0
    if not isinstance(inputs, TrainingInputs):
        console.error("rank 0 stopped before training; see its log for the reason")
        return 1
    fit(inputs.x_train, inputs.y_train, inputs.x_val, inputs.y_val, spec=inputs.spec, task=inputs.task,
        n_outputs=inputs.n_outputs)
    console.info(f"rank {active_world().rank}: training done")
    return 0


def error_line(error: BaseException) -> str:
    """The one line a user sees for a failed run."""
    message = str(error) if isinstance(error, DriftloopError) else f"internal error: {type(error).__name__}: {error}"
    return (message.splitlines() or [type(error).__name__])[0]


def _output_dir(spec: Spec, run_id: str) -> tuple[Path, str | None]:
    from driftloop.storage import is_s3

    if spec.output and is_s3(spec.output):
        return Path(tempfile.mkdtemp(prefix="driftloop-")), spec.output
    base = Path(spec.output) if spec.output else Path(DEFAULT_HOME) / "runs"
    out = base / run_id
    out.mkdir(parents=True, exist_ok=True)
    return out, None


def _steps(p: _Pipeline, out: Path, *, stop_at_gate: bool = False) -> None:
    """Each step's executor, in the table's order, fed the outputs of the steps before it."""
    from driftloop.table import load_table

    ctx, result = p.ctx, p.result
    spec = ctx.spec
    champion = ctx.gateway.champion(result.model_name)
    scratch = out / "champion"
    with p.timed("validate"):  # reading the table is part of validating it
        table = load_table(spec.data.path, fmt=spec.data.format)
        validation = step("validate").execute(ctx, table, champion=champion, out_dir=out / VALIDATION_DIR,
                                              scratch=scratch)
    features = p.run("feature", table, roles_path=validation.roles_path, out_dir=out / FEATURES_DIR)
    trained = p.run("train", out / FEATURES_DIR, out_dir=out / TRAIN_DIR)
    result.trained_model, result.candidates = trained.model, trained.candidates
    result.candidate_metric = trained.candidate_metric
    evaluation = p.run("evaluate", trained.model_path, out / FEATURES_DIR, onnx_max_abs_diff=trained.onnx_max_abs_diff,
                       onnx_output_scale=trained.onnx_output_scale, champion=champion, out_dir=out / EVALUATION_DIR,
                       scratch=scratch)
    result.metrics = {k: round(v, 6) for k, v in evaluation.metrics.items() if k in METRICS}
    if evaluation.champion and "metrics" in evaluation.champion:
        result.champion_version = evaluation.champion["version"]
        result.champion_metrics = evaluation.champion["metrics"]
    blessing = p.run("gate", evaluation, out_dir=out / EVALUATION_DIR)
    result.gate = {"passed": blessing.passed, "reasons": blessing.reasons}
    if not blessing.passed or stop_at_gate:
        ctx.tracker.set_tags({RUN_TAG_DEPLOYED: "false"})  # registration, if any, is the caller's (the operator)
        return
    with p.timed("deploy"):  # the rollout follows deploy and is timed with it
        deployed = step("deploy").execute(ctx, blessing, data_sha256=table.sha256, task=features.task)
        for line in roll_out_serving(spec, deployed):
            p.console.info(line)
    result.deployed, result.model_version = deployed.deployed, deployed.version
