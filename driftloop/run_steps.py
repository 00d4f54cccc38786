"""Each step of a run with its MLflow logging, shared by every runner.

The in-process runner calls these in one process; each KFP component calls one of
them in its own pod, reattached to the same MLflow run by id. So the two runners log
the same artifacts, metrics and tags, and reach the same gate and registry outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.constants import (
    BLESSING_FILE,
    EVALUATION_DIR,
    FEATURE_META_FILE,
    FEATURES_DIR,
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

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

    from driftloop.components.deploy import DeployResult
    from driftloop.components.evaluate import Evaluation
    from driftloop.components.feature import FeatureResult
    from driftloop.components.gate import Blessing
    from driftloop.components.train import TrainResult
    from driftloop.components.validate import ValidationResult
    from driftloop.registry import Registry
    from driftloop.spec import Spec
    from driftloop.table import LoadedTable
    from driftloop.tracking import Tracker


@dataclass(frozen=True)
class RunContext:
    """What every step of one run shares: the spec, its MLflow run and the registry."""

    spec: Spec
    tracker: Tracker
    registry: Registry
    tracking_uri: str

    @property
    def run_id(self) -> str:
        return self.tracker.run_id


def start_run(spec: Spec, *, tags: dict[str, str] | None = None) -> RunContext:
    """Open the MLflow run for `spec` (with extra `tags`) and log its parameters and the spec itself."""
    from driftloop.registry import Registry, validate_model_name
    from driftloop.tracking import Tracker, connect, ensure_experiment, resolve_tracking_uri

    name = validate_model_name(spec.model_name)
    tracking_uri = resolve_tracking_uri(spec.tracking.uri)
    client = connect(tracking_uri)
    experiment = ensure_experiment(client, spec.tracking.experiment or name, tracking_uri)
    run = client.create_run(experiment, run_name=f"{name}-train", tags={RUN_TAG_MODEL: name, **(tags or {})})
    tracker = Tracker(client, run.info.run_id)
    tracker.log_params({"data.path": spec.data.path, "data.target": spec.data.target, "spec_sha256": spec.digest()})
    client.log_text(tracker.run_id, spec.to_yaml(), SPEC_ARTIFACT)
    return RunContext(spec, tracker, Registry(client, tracking_uri), tracking_uri)


def attach_run(spec: Spec, run_id: str) -> RunContext:
    """Reattach to a run opened by `start_run` (in another process)."""
    from driftloop.tracking import Tracker

    registry = connect_registry(spec)
    return RunContext(spec, Tracker(registry.client, run_id), registry, registry.tracking_uri)


def pinned_champion(registry: Registry, model_name: str, version: str | None) -> ModelVersion | None:
    """The champion as it was when the run started, so every step compares against the same one."""
    return registry.client.get_model_version(model_name, version) if version else None


def finish_run(ctx: RunContext, error: str | None) -> None:
    """Mark the run FINISHED, or FAILED with the one-line error a user sees."""
    if error is None:
        ctx.tracker.set_tags({RUN_TAG_STATUS: "completed"})
        ctx.tracker.client.set_terminated(ctx.run_id, "FINISHED")
        return
    ctx.tracker.set_tags({RUN_TAG_STATUS: "failed", RUN_TAG_ERROR: error[:4000]})
    ctx.tracker.client.set_terminated(ctx.run_id, "FAILED")


def connect_registry(spec: Spec) -> Registry:
    """The registry alone, for steps that read the champion but log nothing."""
    from driftloop.registry import Registry
    from driftloop.tracking import connect, resolve_tracking_uri

    tracking_uri = resolve_tracking_uri(spec.tracking.uri)
    return Registry(connect(tracking_uri), tracking_uri)


def validate_step(spec: Spec, registry: Registry, table: LoadedTable, *, champion: ModelVersion | None,
                  out_dir: Path, scratch: Path) -> ValidationResult:
    """Validate the table against the declared, stored, champion's or profiled suite; logs nothing."""
    from driftloop.components import validate

    stored = _champion_suite(registry, champion, scratch) if champion is not None else None
    return validate.run(table.frame, source=spec.data.path, target=spec.data.target, validation=spec.validation,
                        feature=spec.feature, out_dir=out_dir, task=spec.data.task, stored_suite=stored)


def log_validation(tracker: Tracker, out_dir: Path, *, data_sha256: str, suite_source: str) -> None:
    tracker.log_artifacts(out_dir, VALIDATION_DIR)
    tracker.set_tags({"driftloop.data_sha256": data_sha256, "driftloop.suite_source": suite_source})


def feature_step(spec: Spec, table: LoadedTable, *, roles_path: Path, out_dir: Path) -> FeatureResult:
    """Fit the transform and split; logs nothing, so a KFP cache hit can reuse it."""
    from driftloop.components import feature
    from driftloop.components.columns import ColumnRoles

    return feature.run(table.frame, source=spec.data.path, roles=ColumnRoles.load(roles_path), spec=spec.feature,
                       task=spec.data.task, out_dir=out_dir)


def log_features(tracker: Tracker, out_dir: Path) -> None:
    from driftloop.components.feature import REFERENCE_FILE

    tracker.log_artifact(out_dir / FEATURE_META_FILE, FEATURES_DIR)
    reference = out_dir / REFERENCE_FILE
    if reference.exists():
        tracker.log_artifact(reference, "reference")


def train_step(ctx: RunContext, features_dir: Path, *, out_dir: Path) -> TrainResult:
    from driftloop.components import train

    outcome = train.run(features_dir, spec=ctx.spec.train, out_dir=out_dir, tracker=ctx.tracker)
    _log_model(ctx.tracker, outcome.model_path, out_dir / MODEL_ARTIFACT_DIR)
    ctx.tracker.log_artifacts(out_dir / "checkpoints", "checkpoints")
    ctx.tracker.log_artifact(out_dir / "train.json", TRAIN_DIR)
    return outcome


def evaluate_step(ctx: RunContext, model_path: Path, features_dir: Path, *, onnx_max_abs_diff: float,
                  onnx_output_scale: float, champion: ModelVersion | None, out_dir: Path,
                  scratch: Path) -> Evaluation:
    from driftloop.components import evaluate

    champion_model = ctx.registry.download_model(champion, scratch) if champion is not None else None
    outcome = evaluate.run(model_path, features_dir, out_dir=out_dir, onnx_max_abs_diff=onnx_max_abs_diff,
                           onnx_output_scale=onnx_output_scale, latency_samples=ctx.spec.evaluate.latency_samples,
                           champion_model_path=champion_model,
                           champion_version=champion.version if champion is not None else None,
                           window_uri=ctx.spec.evaluate.window)
    ctx.tracker.log_metrics(outcome.metrics)
    ctx.tracker.log_metrics({f"baseline_{k}": v for k, v in outcome.baseline.items()})
    if outcome.champion and "metrics" in outcome.champion:
        ctx.tracker.log_metrics({f"champion_{k}": v for k, v in outcome.champion["metrics"].items()})
    if outcome.window:
        ctx.tracker.log_metrics({f"window_{k}": v for k, v in outcome.window["metrics"].items()})
        ctx.tracker.log_metrics({f"window_champion_{k}": v for k, v in outcome.window.get("champion_metrics", {}).items()})
    ctx.tracker.log_artifacts(out_dir, EVALUATION_DIR)
    return outcome


def gate_step(ctx: RunContext, evaluation: Evaluation, *, out_dir: Path) -> Blessing:
    from driftloop.components import gate

    blessing = gate.decide(evaluation, ctx.spec.gate, onnx_tolerance=ctx.spec.train.onnx_tolerance)
    blessing.save(out_dir / BLESSING_FILE)
    ctx.tracker.log_artifact(out_dir / BLESSING_FILE, EVALUATION_DIR)
    tags = {RUN_TAG_GATE: str(blessing.passed).lower()}
    if not blessing.passed:
        tags[RUN_TAG_DEPLOYED] = "false"
    ctx.tracker.set_tags(tags)
    return blessing


def deploy_step(ctx: RunContext, blessing: Blessing, *, data_sha256: str, task: str) -> DeployResult:
    from driftloop.components import deploy

    spec = ctx.spec
    outcome = deploy.run(blessing, registry=ctx.registry, model_name=spec.model_name, run_id=ctx.run_id,
                         data_uri=spec.data.path, data_sha256=data_sha256, spec_sha256=spec.digest(), task=task,
                         serving=spec.serving)
    ctx.tracker.set_tags({RUN_TAG_DEPLOYED: str(outcome.deployed).lower(), RUN_TAG_MODEL_VERSION: outcome.version})
    return outcome


def _champion_suite(registry: Registry, champion: Any, destination: Path) -> Path | None:
    """The expectation suite stored with the champion's run, if it has one."""
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    try:
        return Path(download_artifacts(artifact_uri=f"runs:/{champion.run_id}/{SUITE_ARTIFACT}",
                                       dst_path=str(destination), tracking_uri=registry.tracking_uri))
    except (MlflowException, OSError):
        return None


def _log_model(tracker: Tracker, model_path: Path, model_dir: Path) -> None:
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
