"""KFP v2 components: one thin wrapper per step, over the same functions the in-process runner calls.

KFP ships only each function's source to the pod, so the bodies import driftloop
themselves; the project image (`base_image`) has it installed, so nothing is
pip-installed at run time. Artifacts are directories (a Dataset of splits, a Model
with its ONNX file) or single files (Markdown reports), typed so the KFP UI shows them.

`validate` and `feature` take no run id and log nothing to MLflow, so KFP can cache
them; `train` logs their outputs into the run it reports to. `drift` is the check of
`driftloop drift --model`, its decision the task's single output so `dsl.If` can branch on it.
"""

# No `from __future__ import annotations`: KFP reads the annotations as types.
from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output

from driftloop.constants import project_image

_IN_IMAGE = {"base_image": project_image(), "install_kfp_package": False}


@dsl.component(**_IN_IMAGE)
def open_run(data: dict, validation: dict, feature: dict, train: dict, evaluate: dict, gate: dict, registry: dict,
             tracking: dict, serving: dict, drift: dict, output: str, kfp_run_id: str) -> NamedTuple("Run", [("spec", dict), ("run_id", str),
                                                                                ("champion_version", str)]):
    """Check the spec, open the MLflow run (tagged with the KFP run) and pin the current champion."""
    from collections import namedtuple

    from driftloop.pipelines.pipeline import pipeline_arguments
    from driftloop.pipelines.runtime import KFP_RUN_TAG, reported, spec_from_parameters
    from driftloop.run_steps import start_run

    with reported(None):
        spec = spec_from_parameters(data=data, validation=validation, feature=feature, train=train,
                                    evaluate=evaluate, gate=gate, registry=registry, tracking=tracking, serving=serving, drift=drift, output=output)
        ctx = start_run(spec)
        ctx.tracker.set_tags({KFP_RUN_TAG: kfp_run_id})
        champion = ctx.registry.champion(spec.model_name)
    run = namedtuple("Run", ["spec", "run_id", "champion_version"])
    return run(pipeline_arguments(spec), ctx.run_id, champion.version if champion is not None else "")


@dsl.component(**_IN_IMAGE)
def validate(spec: dict, champion_version: str, table: Output[Dataset], checks: Output[Artifact],
             report: Output[Markdown]):
    """Validate the input table against its expectation suite."""
    import tempfile
    from pathlib import Path

    from driftloop.pipelines.runtime import copy_file, reported, save_table, spec_of
    from driftloop.run_steps import connect_registry, pinned_champion, validate_step

    with reported(None):
        s = spec_of(spec)
        registry = connect_registry(s)
        loaded = save_table(s.data.path, s.data.format, table)
        outcome = validate_step(s, registry, loaded, champion=pinned_champion(registry, s.model_name, champion_version),
                                out_dir=Path(checks.path), scratch=Path(tempfile.mkdtemp()))
    checks.metadata.update({"suite_source": outcome.suite_source, "expectations": outcome.checked, "rows": outcome.rows})
    copy_file(outcome.report_path, report.path)


@dsl.component(**_IN_IMAGE)
def feature(spec: dict, table: Input[Dataset], checks: Input[Artifact], features: Output[Dataset]):
    """Fit the preprocessing and split the table deterministically."""
    from pathlib import Path

    from driftloop.components.validate import ROLES_FILE
    from driftloop.pipelines.runtime import load_saved_table, reported, spec_of
    from driftloop.run_steps import feature_step

    with reported(None):
        s = spec_of(spec)
        outcome = feature_step(s, load_saved_table(table), roles_path=Path(checks.path) / ROLES_FILE,
                               out_dir=Path(features.path))
    features.metadata.update({"task": outcome.task, "n_features": outcome.n_features, **outcome.rows})


@dsl.component(**_IN_IMAGE)
def train(spec: dict, run_id: str, table: Input[Dataset], checks: Input[Artifact], features: Input[Dataset],
          model: Output[Model], metrics: Output[Metrics]):
    """Train the MLP, export one ONNX file and log it to the MLflow run."""
    from pathlib import Path

    from driftloop.pipelines.runtime import reported, spec_of
    from driftloop.run_steps import attach_run, log_features, log_validation, train_step

    ctx = attach_run(spec_of(spec), run_id)
    with reported(ctx):
        log_validation(ctx.tracker, Path(checks.path), data_sha256=table.metadata["sha256"],
                       suite_source=checks.metadata["suite_source"])
        log_features(ctx.tracker, Path(features.path))
        outcome = train_step(ctx, Path(features.path), out_dir=Path(model.path))
    model.metadata.update({"onnx_max_abs_diff": outcome.onnx_max_abs_diff, "onnx_output_scale":
                           outcome.onnx_output_scale, "best_epoch": outcome.best_epoch, "device": outcome.device})
    for name in ("onnx_max_abs_diff", "best_epoch", "epochs_run", "best_val_loss", "fit_seconds"):
        metrics.log_metric(name, float(getattr(outcome, name)))


@dsl.component(**_IN_IMAGE)
def evaluate(spec: dict, run_id: str, champion_version: str, model: Input[Model], features: Input[Dataset],
             metrics: Output[Metrics], confusion: Output[ClassificationMetrics], report: Output[Markdown],
             blessing: Output[Artifact]) -> bool:
    """Score the candidate and the champion on the holdout, then decide the gate (True: deploy)."""
    import tempfile
    from pathlib import Path

    from driftloop.constants import MODEL_FILE
    from driftloop.pipelines import reports
    from driftloop.pipelines.runtime import reported, spec_of
    from driftloop.run_steps import attach_run, evaluate_step, gate_step, pinned_champion

    ctx = attach_run(spec_of(spec), run_id)
    with reported(ctx):
        outcome = evaluate_step(ctx, Path(model.path) / MODEL_FILE, Path(features.path),
                                onnx_max_abs_diff=model.metadata["onnx_max_abs_diff"],
                                onnx_output_scale=model.metadata["onnx_output_scale"],
                                champion=pinned_champion(ctx.registry, ctx.spec.model_name, champion_version),
                                out_dir=Path(blessing.path), scratch=Path(tempfile.mkdtemp()))
        decision = gate_step(ctx, outcome, out_dir=Path(blessing.path))
    reports.publish_evaluation(outcome, decision, Path(model.path) / MODEL_FILE, Path(features.path),
                               metrics=metrics, confusion=confusion, report_path=Path(report.path))
    return decision.passed


@dsl.component(**_IN_IMAGE)
def deploy(spec: dict, run_id: str, table: Input[Dataset], features: Input[Dataset],
           blessing: Input[Artifact]) -> str:
    """Register the blessed model with its lineage and move @champion to it."""
    from pathlib import Path

    from driftloop.components.gate import Blessing
    from driftloop.constants import BLESSING_FILE
    from driftloop.pipelines.runtime import reported, spec_of
    from driftloop.run_steps import attach_run, deploy_step

    ctx = attach_run(spec_of(spec), run_id)
    with reported(ctx):
        outcome = deploy_step(ctx, Blessing.load(Path(blessing.path) / BLESSING_FILE),
                              data_sha256=table.metadata["sha256"], task=features.metadata["task"])
    return outcome.version or ""


@dsl.component(**_IN_IMAGE)
def finish_run(data: dict, validation: dict, feature: dict, train: dict, evaluate: dict, gate: dict, registry: dict,
               tracking: dict, serving: dict, drift: dict, output: str, kfp_run_id: str, status: dsl.PipelineTaskFinalStatus):
    """Close the MLflow run of this KFP run: FINISHED, or FAILED with the failed task named."""
    from driftloop.pipelines.runtime import close_run

    close_run(dict(data=data, validation=validation, feature=feature, train=train, evaluate=evaluate, gate=gate,
                   registry=registry, tracking=tracking, serving=serving, drift=drift, output=output), kfp_run_id=kfp_run_id, state=status.state,
              task=status.pipeline_task_name)


@dsl.component(**_IN_IMAGE)
def drift(current: str, registry: dict, tracking: dict, p_val: float, correction: str, min_samples: int,
          report: Output[HTML], summary: Output[Markdown], metrics: Output[Metrics]) -> bool:
    """Compare the current table with the sample stored with @champion, as `driftloop drift --model` (True: drift)."""
    import tempfile
    from pathlib import Path

    from driftloop.console import Console
    from driftloop.drift.check import DriftRequest, check_drift
    from driftloop.pipelines import reports
    from driftloop.pipelines.runtime import model_of, reported

    with reported(None):
        request = DriftRequest(current=current, model_name=model_of(registry), tracking_uri=tracking.get("uri"),
                               p_val=p_val, correction=correction, min_samples=min_samples,
                               out_dir=Path(tempfile.mkdtemp()))
        outcome = check_drift(request, console=Console(quiet=True))
    reports.publish_drift(outcome.data, Path(outcome.data["_out_dir"]), html=report, markdown=summary, metrics=metrics)
    return outcome.report.is_drift
