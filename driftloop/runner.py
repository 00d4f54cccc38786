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
    BLESSING_FILE,
    DEFAULT_HOME,
    EVALUATION_DIR,
    FEATURE_META_FILE,
    FEATURES_DIR,
    METRICS,
    MODEL_ARTIFACT_DIR,
    RUN_TAG_DEPLOYED,
    RUN_TAG_ERROR,
    RUN_TAG_GATE,
    RUN_TAG_MODEL,
    RUN_TAG_MODEL_VERSION,
    RUN_TAG_STATUS,
    SPEC_ARTIFACT,
    SUITE_ARTIFACT,
    TRAIN_DIR,
    VALIDATION_DIR,
)
from driftloop.errors import DriftloopError
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


def run_pipeline(spec: Spec, *, console: Console) -> RunResult:
    """Run validate → feature → train → evaluate → gate → deploy.

    Never raises for a failure a user can cause: the result says `failed`, carries the
    one-line error and exit code 1, the MLflow run is marked FAILED and nothing is promoted.
    """
    from driftloop.registry import Registry, validate_model_name
    from driftloop.tracking import Tracker, connect, ensure_experiment, resolve_tracking_uri

    result = RunResult(model_name=spec.model_name)
    validate_model_name(result.model_name)
    tracking_uri = resolve_tracking_uri(spec.tracking.uri)
    client = connect(tracking_uri)
    registry = Registry(client, tracking_uri)
    experiment = ensure_experiment(client, spec.tracking.experiment or result.model_name, tracking_uri)
    run = client.create_run(experiment, run_name=f"{result.model_name}-train", tags={RUN_TAG_MODEL: result.model_name})
    result.run_id = run.info.run_id
    tracker = Tracker(client, result.run_id)
    local_out, upload_to = _output_dir(spec, result.run_id)
    console.info(f"run {result.run_id} · model {result.model_name} · tracking {tracking_uri}")
    pipeline = _Pipeline(spec, console, result)
    try:
        _steps(pipeline, registry, tracker, local_out)
        result.status, result.exit_code = "completed", 0
        tracker.set_tags({RUN_TAG_STATUS: "completed"})
        client.set_terminated(result.run_id, "FINISHED")
    except Exception as e:
        message = str(e) if isinstance(e, DriftloopError) else f"internal error: {type(e).__name__}: {e}"
        result.error = (message.splitlines() or [type(e).__name__])[0]
        result.status, result.exit_code = "failed", 1
        result.deployed, result.model_version = False, None
        if not isinstance(e, DriftloopError):
            result.traceback = traceback.format_exc()
        try:
            tracker.set_tags({RUN_TAG_STATUS: "failed", RUN_TAG_ERROR: result.error[:4000]})
            client.set_terminated(result.run_id, "FAILED")
        except Exception:  # the tracking server itself may be what failed; the error line says so
            pass
    finally:
        if upload_to is not None:
            from driftloop.storage import upload_dir

            upload_dir(local_out, f"{upload_to.rstrip('/')}/{result.run_id}")
    return result


def _output_dir(spec: Spec, run_id: str) -> tuple[Path, str | None]:
    from driftloop.storage import is_s3

    if spec.output and is_s3(spec.output):
        return Path(tempfile.mkdtemp(prefix="driftloop-")), spec.output
    base = Path(spec.output) if spec.output else Path(DEFAULT_HOME) / "runs"
    out = base / run_id
    out.mkdir(parents=True, exist_ok=True)
    return out, None


def _steps(p: _Pipeline, registry: Any, tracker: Any, out: Path) -> None:
    from driftloop.components import deploy, evaluate, feature, gate, train, validate
    from driftloop.components.columns import ColumnRoles
    from driftloop.table import load_table

    spec, result = p.spec, p.result
    spec_sha256 = spec.digest()
    tracker.log_params({"data.path": spec.data.path, "data.target": spec.data.target, "spec_sha256": spec_sha256})
    tracker.client.log_text(tracker.run_id, spec.to_yaml(), SPEC_ARTIFACT)
    champion = registry.champion(result.model_name)
    champion_dir = out / "champion"

    def run_validate() -> Any:
        table = load_table(spec.data.path, fmt=spec.data.format)
        stored = _champion_suite(registry, champion, champion_dir) if champion is not None else None
        outcome = validate.run(table.frame, source=spec.data.path, target=spec.data.target,
                               validation=spec.validation, feature=spec.feature, out_dir=out / VALIDATION_DIR,
                               task=spec.data.task, stored_suite=stored)
        tracker.log_artifacts(out / VALIDATION_DIR, VALIDATION_DIR)
        tracker.set_tags({"driftloop.data_sha256": table.sha256, "driftloop.suite_source": outcome.suite_source})
        return table, outcome

    table, validation = p.step("validate", run_validate)

    def run_feature() -> Any:
        outcome = feature.run(table.frame, source=spec.data.path, roles=ColumnRoles.load(validation.roles_path),
                              spec=spec.feature, task=spec.data.task, out_dir=out / FEATURES_DIR)
        tracker.log_artifact(out / FEATURES_DIR / FEATURE_META_FILE, FEATURES_DIR)
        reference = out / FEATURES_DIR / feature.REFERENCE_FILE
        if reference.exists():
            tracker.log_artifact(reference, "reference")
        return outcome

    features = p.step("feature", run_feature)

    def run_train() -> Any:
        outcome = train.run(out / FEATURES_DIR, spec=spec.train, out_dir=out / TRAIN_DIR, tracker=tracker)
        _log_model(tracker, outcome.model_path, out / TRAIN_DIR / MODEL_ARTIFACT_DIR)
        tracker.log_artifacts(out / TRAIN_DIR / "checkpoints", "checkpoints")
        tracker.log_artifact(out / TRAIN_DIR / "train.json", TRAIN_DIR)
        return outcome

    trained = p.step("train", run_train)

    def run_evaluate() -> Any:
        champion_model = registry.download_model(champion, champion_dir) if champion is not None else None
        outcome = evaluate.run(trained.model_path, out / FEATURES_DIR, out_dir=out / EVALUATION_DIR,
                               onnx_max_abs_diff=trained.onnx_max_abs_diff, onnx_output_scale=trained.onnx_output_scale,
                               latency_samples=spec.evaluate.latency_samples, champion_model_path=champion_model,
                               champion_version=champion.version if champion is not None else None,
                               window_uri=spec.evaluate.window)
        tracker.log_metrics(outcome.metrics)
        tracker.log_metrics({f"baseline_{k}": v for k, v in outcome.baseline.items()})
        if outcome.champion and "metrics" in outcome.champion:
            tracker.log_metrics({f"champion_{k}": v for k, v in outcome.champion["metrics"].items()})
        if outcome.window:
            tracker.log_metrics({f"window_{k}": v for k, v in outcome.window["metrics"].items()})
            tracker.log_metrics({f"window_champion_{k}": v for k, v in outcome.window.get("champion_metrics", {}).items()})
        tracker.log_artifacts(out / EVALUATION_DIR, EVALUATION_DIR)
        return outcome

    evaluation = p.step("evaluate", run_evaluate)
    result.metrics = {k: round(v, 6) for k, v in evaluation.metrics.items() if k in METRICS}
    if evaluation.champion and "metrics" in evaluation.champion:
        result.champion_version = evaluation.champion["version"]
        result.champion_metrics = evaluation.champion["metrics"]

    def run_gate() -> Any:
        blessing = gate.decide(evaluation, spec.gate, onnx_tolerance=spec.train.onnx_tolerance)
        blessing.save(out / EVALUATION_DIR / BLESSING_FILE)
        tracker.log_artifact(out / EVALUATION_DIR / BLESSING_FILE, EVALUATION_DIR)
        tracker.set_tags({RUN_TAG_GATE: str(blessing.passed).lower()})
        return blessing

    blessing = p.step("gate", run_gate)
    result.gate = {"passed": blessing.passed, "reasons": blessing.reasons}
    if not blessing.passed:
        tracker.set_tags({RUN_TAG_DEPLOYED: "false"})
        return

    def run_deploy() -> Any:
        outcome = deploy.run(blessing, registry=registry, model_name=result.model_name, run_id=tracker.run_id,
                             data_uri=spec.data.path, data_sha256=table.sha256, spec_sha256=spec_sha256,
                             task=features.task)
        tracker.set_tags({RUN_TAG_DEPLOYED: str(outcome.deployed).lower(), RUN_TAG_MODEL_VERSION: outcome.version})
        return outcome

    deployed = p.step("deploy", run_deploy)
    result.deployed, result.model_version = deployed.deployed, deployed.version


def _champion_suite(registry: Any, champion: Any, destination: Path) -> Path | None:
    """The expectation suite stored with the champion's run, if it has one."""
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    try:
        return Path(download_artifacts(artifact_uri=f"runs:/{champion.run_id}/{SUITE_ARTIFACT}",
                                       dst_path=str(destination), tracking_uri=registry.tracking_uri))
    except (MlflowException, OSError):
        return None


def _log_model(tracker: Any, model_path: Path, model_dir: Path) -> None:
    """Log the ONNX file as an MLflow `onnx` model under `model/`, so MLflow tools can load it."""
    import shutil

    import mlflow.onnx
    import onnx

    if model_dir.exists():
        shutil.rmtree(model_dir)
    # One self-contained file: external weight files would not travel with model.onnx.
    mlflow.onnx.save_model(onnx.load(str(model_path)), str(model_dir), save_as_external_data=False,
                           pip_requirements=["onnxruntime", "onnx", "numpy", "pandas"])
    tracker.log_artifacts(model_dir, MODEL_ARTIFACT_DIR)
