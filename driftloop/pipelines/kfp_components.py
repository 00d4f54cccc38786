"""KFP v2 components: the KFP runner's adapter, each task running its step's executor.

KFP ships only each function's source to the pod, so the bodies import driftloop
themselves, and only what their step needs (the gate task loads no torch, the train
task no Great Expectations); the project image (`base_image`) has it installed, so
nothing is pip-installed at run time. Artifacts are directories (a Dataset of splits, a
Model with its ONNX file) or single files (Markdown reports), typed so the KFP UI shows them.

A task is one step, except `validate` and `evaluate`, which also run the feature and the
gate step (see the pipeline's docstring); each step prints its own record
(`runtime.step_record`). Every step task
reattaches to the run `open_run` opened and logs its own outputs there, as the
in-process runner's step does; so none is cached (a cache hit would leave the run
without that step's records). `open_run` and `finish_run` take the spec's sections as
parameters: their names are spelled out here, once (a test checks them against
`driftloop.spec.SECTIONS`). `drift` is the check of `driftloop drift --model`, its
decision the task's single output so `dsl.If` can branch on it.
"""

# No `from __future__ import annotations`: KFP reads the annotations as types.
from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output

from driftloop.constants import project_image

_IN_IMAGE = {"base_image": project_image(), "install_kfp_package": False}


@dsl.component(**_IN_IMAGE)
def open_run(data: dict, validation: dict, feature: dict, train: dict, evaluate: dict, gate: dict, registry: dict,
             tracking: dict, serving: dict, drift: dict, output: str,
             kfp_run_id: str) -> NamedTuple("Run", [("spec", dict), ("run_id", str), ("champion_version", str),
                                                    ("data_version", str)]):
    """Check the spec, open the MLflow run (tagged with the KFP run), pin the current champion and the data's version.

    `data_version` (the table's ETag or sha256) is an input of `validate`: a cache key made of
    parameters alone would give an overwritten table at the same URI the old table's results.
    """
    from collections import namedtuple

    from driftloop.components.context import start_run
    from driftloop.pipelines.parameters import pipeline_arguments
    from driftloop.pipelines.runtime import KFP_RUN_TAG, reported, spec_from_parameters
    from driftloop.storage import fingerprint

    with reported(None):
        spec = spec_from_parameters(data=data, validation=validation, feature=feature, train=train, evaluate=evaluate,
                                    gate=gate, registry=registry, tracking=tracking, serving=serving, drift=drift,
                                    output=output)
        data_version = fingerprint(spec.data.path)
        ctx = start_run(spec, tags={KFP_RUN_TAG: kfp_run_id})
        champion = ctx.gateway.champion(spec.model_name)
    run = namedtuple("Run", ["spec", "run_id", "champion_version", "data_version"])
    return run(pipeline_arguments(spec), ctx.run_id, str(champion.version) if champion is not None else "",
               data_version)


@dsl.component(**_IN_IMAGE)
def validate(spec: dict, run_id: str, champion_version: str, table: Output[Dataset], checks: Output[Artifact],
             report: Output[Markdown], features: Output[Dataset], data_version: str = ""):
    """Validate the input table against its expectation suite, then run the feature step on it.

    `data_version` keys a cached result to the table's content; the table read must still be that one.
    """
    import tempfile
    from pathlib import Path

    from driftloop.components import feature, validate
    from driftloop.components.context import pinned_champion
    from driftloop.pipelines.runtime import attached, copy_file, same_data_version, save_table, step_record

    with attached(spec, run_id) as ctx:
        with step_record("validate"):
            same_data_version(ctx.spec.data.path, data_version)
            loaded = save_table(ctx, table)
            champion = pinned_champion(ctx, champion_version)
            checked = validate.execute(ctx, loaded, champion=champion, out_dir=Path(checks.path),
                                       scratch=Path(tempfile.mkdtemp()))
        with step_record("feature"):
            outcome = feature.execute(ctx, loaded, roles_path=checked.roles_path, out_dir=Path(features.path),
                                      champion=champion)
            print(outcome.task_line(), flush=True)
    checks.metadata.update({"suite_source": checked.suite_source, "expectations": checked.checked, "rows": checked.rows})
    table.metadata["data_version"] = data_version
    copy_file(checked.report_path, report.path)
    features.metadata.update({"task": outcome.task, "n_features": outcome.n_features, **outcome.rows})


@dsl.component(**_IN_IMAGE)
def train(spec: dict, run_id: str, features: Input[Dataset], model: Output[Model], metrics: Output[Metrics]):
    """Train the spec's model family (or the user's module), export one ONNX file and log it to the MLflow run."""
    from pathlib import Path

    from driftloop.components import train
    from driftloop.pipelines.runtime import attached, step_record

    with attached(spec, run_id, retried=True) as ctx, step_record("train"):
        outcome = train.execute(ctx, Path(features.path), out_dir=Path(model.path))
    model.metadata.update({"onnx_max_abs_diff": outcome.onnx_max_abs_diff, "onnx_output_scale":
                           outcome.onnx_output_scale, "best_epoch": outcome.best_epoch, "device": outcome.device,
                           "model": outcome.model})
    for name in ("onnx_max_abs_diff", "best_epoch", "epochs_run", "best_val_loss", "fit_seconds"):
        metrics.log_metric(name, float(getattr(outcome, name)))


@dsl.component(**_IN_IMAGE)
def evaluate(spec: dict, run_id: str, champion_version: str, model: Input[Model], features: Input[Dataset],
             metrics: Output[Metrics], confusion: Output[ClassificationMetrics], report: Output[Markdown],
             blessing: Output[Artifact], slices: Output[Markdown], evaluation_report: Output[HTML]) -> bool:
    """Score the candidate and the pinned champion on the same holdout, then run the gate step (True: deploy)."""
    import tempfile
    from pathlib import Path

    from driftloop.components import evaluate, gate
    from driftloop.components.context import pinned_champion
    from driftloop.constants import MODEL_FILE
    from driftloop.pipelines import reports
    from driftloop.pipelines.runtime import attached, step_record

    model_path, out_dir = Path(model.path) / MODEL_FILE, Path(blessing.path)
    with attached(spec, run_id) as ctx:
        champion = pinned_champion(ctx, champion_version)
        with step_record("evaluate"):
            outcome = evaluate.execute(ctx, model_path, Path(features.path),
                                       onnx_max_abs_diff=model.metadata["onnx_max_abs_diff"],
                                       onnx_output_scale=model.metadata["onnx_output_scale"], champion=champion,
                                       out_dir=out_dir, scratch=Path(tempfile.mkdtemp()))
        with step_record("gate"):
            decision = gate.execute(ctx, outcome, out_dir=out_dir)
        # inside `attached`: a failure filling the UI outputs still prints its line and fails the run
        reports.publish_evaluation(outcome, model_path, Path(features.path), metrics=metrics, confusion=confusion)
        reports.write_evaluation_report(outcome, decision, Path(report.path))
        reports.publish_evaluation_pages(out_dir, slices=slices, html=evaluation_report)
    return decision.passed


@dsl.component(**_IN_IMAGE)
def deploy(spec: dict, run_id: str, table: Input[Dataset], features: Input[Dataset],
           blessing: Input[Artifact]) -> str:
    """Register the blessed model with its lineage, move @champion to it and roll serving onto it."""
    from pathlib import Path

    from driftloop.components import deploy
    from driftloop.components.gate import Blessing
    from driftloop.constants import BLESSING_FILE, TAG_RUN_ID
    from driftloop.pipelines.runtime import attached, step_record
    from driftloop.runner import roll_out_serving

    with attached(spec, run_id, retried=True) as ctx, step_record("deploy"):
        # KFP retries this task: an attempt that registered (or promoted) and then died is finished by the next,
        # found by its run id (one pipeline run, one MLflow run), not registered a second time
        outcome = deploy.execute(ctx, Blessing.load(Path(blessing.path) / BLESSING_FILE),
                                 data_sha256=table.metadata["sha256"], task=features.metadata["task"],
                                 tags={TAG_RUN_ID: run_id}, once_by=(TAG_RUN_ID,))
        for line in roll_out_serving(ctx.spec, outcome):
            print(line)
    return outcome.version or ""


@dsl.component(**_IN_IMAGE)
def finish_run(data: dict, validation: dict, feature: dict, train: dict, evaluate: dict, gate: dict, registry: dict,
               tracking: dict, serving: dict, drift: dict, output: str, kfp_run_id: str,
               status: dsl.PipelineTaskFinalStatus):
    """Close the MLflow run of this KFP run: FINISHED, or FAILED with the failed task named."""
    from driftloop.pipelines.runtime import close_run

    close_run(dict(data=data, validation=validation, feature=feature, train=train, evaluate=evaluate, gate=gate,
                   registry=registry, tracking=tracking, serving=serving, drift=drift, output=output),
              kfp_run_id=kfp_run_id, state=status.state, task=status.pipeline_task_name)


@dsl.component(**_IN_IMAGE)
def end_run(spec: dict, run_id: str):
    """Close the MLflow run as FINISHED: the last task on backends without a final-status exit handler."""
    from driftloop.components.context import finish_run
    from driftloop.pipelines.runtime import attached

    with attached(spec, run_id) as ctx:
        finish_run(ctx, None)


@dsl.component(**_IN_IMAGE)
def drift(current: str, read: dict, registry: dict, tracking: dict, p_val: float, correction: str, min_samples: int,
          report: Output[HTML], summary: Output[Markdown], metrics: Output[Metrics]) -> bool:
    """Compare the current table with the sample stored with @champion, as `driftloop drift --model` (True: drift).

    `read` are the current table's CSV options, as `data.read` (and `driftloop drift --read`)."""
    import tempfile
    from pathlib import Path

    from driftloop.console import Console
    from driftloop.drift.check import DriftRequest, check_drift
    from driftloop.pipelines import reports
    from driftloop.pipelines.runtime import model_of, reported, require_tracking_uri
    from driftloop.spec import validate_read

    with reported(None):
        require_tracking_uri(tracking.get("uri"))
        request = DriftRequest(current=current, model_name=model_of(registry), tracking_uri=tracking.get("uri"),
                               p_val=p_val, correction=correction, min_samples=min_samples,
                               read=validate_read(read, where="read"), out_dir=Path(tempfile.mkdtemp()))
        outcome = check_drift(request, console=Console(quiet=True))
    reports.publish_drift(outcome.data, outcome.report_dir, html=report, markdown=summary, metrics=metrics)
    return outcome.report.is_drift
