"""The in-process runner: the six steps in order, in one process, logged to one MLflow run.

This is what `driftloop run` does, and what an MLTrainingJob's container runs.
"""

from __future__ import annotations

import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driftloop.console import Console
from driftloop.constants import (
    DEFAULT_HOME,
    EVALUATION_DIR,
    FEATURES_DIR,
    METRICS,
    RUN_TAG_DEPLOYED,
    TAG_TASK,
    TRAIN_DIR,
    VALIDATION_DIR,
)
from driftloop.errors import DriftloopError
from driftloop.run_steps import (
    RunContext,
    deploy_step,
    evaluate_step,
    feature_step,
    gate_step,
    log_features,
    log_validation,
    train_step,
    validate_step,
)
from driftloop.spec import Spec

STEP_NAMES = ("validate", "feature", "train", "evaluate", "gate", "deploy")


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

    def to_json(self) -> dict[str, Any]:
        """The documented `--json` shape, exactly."""
        return {"status": self.status, "deployed": self.deployed, "gate": self.gate, "metrics": self.metrics,
                "model_name": self.model_name, "model_version": self.model_version, "run_id": self.run_id,
                "steps": [{"name": s.name, "status": s.status, "seconds": round(s.seconds, 3)} for s in self.steps]}


class _Pipeline:
    """State carried between the steps of one run; each step method is a thin adapter."""

    def __init__(self, spec: Spec, console: Console, result: RunResult) -> None:
        self.spec, self.console, self.result = spec, console, result
        self.values: dict[str, Any] = {}

    def step(self, name: str, action: Any) -> Any:
        record = next(s for s in self.result.steps if s.name == name)
        started = time.perf_counter()
        try:
            with self.console.step(name):
                value = action()
        except BaseException:
            record.status, record.seconds = "failed", time.perf_counter() - started
            raise
        record.status, record.seconds = "completed", time.perf_counter() - started
        return value


def run_pipeline(spec: Spec, *, console: Console, deploy: bool = True, tags: dict[str, str] | None = None) -> RunResult:
    """Run validate → feature → train → evaluate → gate → deploy.

    Never raises for a failure a user can cause: the result says `failed`, carries the
    one-line error and exit code 1, the MLflow run is marked FAILED and nothing is promoted.

    Args:
        deploy: False stops after the gate and leaves registration to the caller (the
            MLTrainingJob operator registers exactly once, across its own restarts).
        tags: extra tags on the MLflow run, e.g. the resource that asked for it.
    """
    from driftloop.run_steps import finish_run, start_run

    result = RunResult(model_name=spec.model_name)
    ctx = start_run(spec, tags=tags)
    result.run_id = ctx.run_id
    local_out, upload_to = _output_dir(spec, result.run_id)
    console.info(f"run {result.run_id} · model {result.model_name} · tracking {ctx.tracking_uri}")
    pipeline = _Pipeline(spec, console, result)
    try:
        _steps(pipeline, ctx, local_out, stop_at_gate=not deploy)
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


def _steps(p: _Pipeline, ctx: RunContext, out: Path, *, stop_at_gate: bool = False) -> None:
    from driftloop.table import load_table

    spec, result = p.spec, p.result
    champion = ctx.registry.champion(result.model_name)
    champion_dir = out / "champion"

    def run_validate() -> Any:
        table = load_table(spec.data.path, fmt=spec.data.format)
        outcome = validate_step(spec, ctx.registry, table, champion=champion, out_dir=out / VALIDATION_DIR,
                                scratch=champion_dir)
        log_validation(ctx.tracker, out / VALIDATION_DIR, data_sha256=table.sha256, suite_source=outcome.suite_source)
        return table, outcome

    def run_feature() -> Any:
        outcome = feature_step(spec, table, roles_path=validation.roles_path, out_dir=out / FEATURES_DIR)
        log_features(ctx.tracker, out / FEATURES_DIR)
        return outcome

    table, validation = p.step("validate", run_validate)
    features = p.step("feature", run_feature)
    trained = p.step("train", lambda: train_step(ctx, out / FEATURES_DIR, out_dir=out / TRAIN_DIR))
    evaluation = p.step("evaluate", lambda: evaluate_step(
        ctx, trained.model_path, out / FEATURES_DIR, onnx_max_abs_diff=trained.onnx_max_abs_diff,
        onnx_output_scale=trained.onnx_output_scale, champion=champion, out_dir=out / EVALUATION_DIR,
        scratch=champion_dir))
    result.metrics = {k: round(v, 6) for k, v in evaluation.metrics.items() if k in METRICS}
    if evaluation.champion and "metrics" in evaluation.champion:
        result.champion_version = evaluation.champion["version"]
        result.champion_metrics = evaluation.champion["metrics"]
    blessing = p.step("gate", lambda: gate_step(ctx, evaluation, out_dir=out / EVALUATION_DIR))
    result.gate = {"passed": blessing.passed, "reasons": blessing.reasons}
    if not blessing.passed or stop_at_gate:
        # the caller that registers later (the operator) needs the task from the run alone
        ctx.tracker.set_tags({RUN_TAG_DEPLOYED: "false", TAG_TASK: features.task})
        return
    deployed = p.step("deploy", lambda: deploy_step(ctx, blessing, data_sha256=table.sha256, task=features.task))
    for line in deployed.rollout:
        p.console.info(line)
    result.deployed, result.model_version = deployed.deployed, deployed.version
