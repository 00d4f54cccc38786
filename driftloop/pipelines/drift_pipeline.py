"""The drift-then-retrain pipeline: drift → dsl.If(drift found) → the training pipeline as a sub-pipeline.

Its parameters are the training pipeline's (the spec's sections, whose `data` is what a
retrain trains on) plus the drift check's own: the `current` table and the test's
`p_val`, `correction` and `min_samples`. The check reads the reference stored with
`registry.model_name`'s @champion from the MLflow of `tracking`, the same model and
server the retrain registers to, so the two cannot disagree on which model they mean.
"""

# No `from __future__ import annotations`: KFP reads the pipeline function's annotations as types.
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kfp.dsl.graph_component import GraphComponent

    from driftloop.spec import Spec

DRIFT_PIPELINE_NAME = "driftloop-drift-then-retrain"
CHECK_PARAMETERS = ("current", "p_val", "correction", "min_samples")


def drift_pipeline_defaults(spec: "Spec | None" = None) -> dict[str, Any]:
    """The defaults: the training pipeline's, the check's from the spec's `drift` section.

    With a spec, `registry.model_name` is filled in with the spec's model name: the retrain
    data's file name must not rename the model. Without one it has no default, so the run
    form asks for it (and `current`).
    """
    from driftloop.pipelines.pipeline import pipeline_defaults
    from driftloop.spec import DriftSpec

    defaults = pipeline_defaults(spec)
    policy = spec.drift if spec is not None else DriftSpec()
    defaults.update({"p_val": policy.p_val, "correction": policy.correction, "min_samples": policy.min_samples})
    if spec is not None:
        defaults["registry"] = {**defaults.get("registry", {}), "model_name": spec.model_name}
    else:
        defaults.pop("registry", None)
    return defaults


def build_drift_pipeline(spec: "Spec | None" = None, *, image: str | None = None,
                         secret: str | None = None) -> "GraphComponent":
    """The drift-then-retrain pipeline, with defaults from `spec` and every task in `image`.

    Args:
        spec: defaults for the parameters (see `drift_pipeline_defaults`) and the retrain's
            compile-time settings; None: the spec model's defaults.
        image: the project image; default `$DRIFTLOOP_IMAGE` or the one for this version.
        secret: Kubernetes Secret whose keys become the tasks' environment [driftloop-credentials].

    Example:
        >>> from kfp import compiler
        >>> compiler.Compiler().compile(build_drift_pipeline(spec), "drift_then_retrain.yaml")
    """
    from kfp import dsl

    from driftloop.components import kfp_components as ops
    from driftloop.pipelines.pipeline import (
        CREDENTIALS_SECRET,
        _configure,
        _InImage,
        as_pipeline,
        build_training_pipeline,
    )

    secret = secret or CREDENTIALS_SECRET
    retrain = build_training_pipeline(spec, image=image, secret=secret)
    if image is not None:
        ops = _InImage(ops, image)  # type: ignore[assignment]

    # the parameters that may lack a default come first (Python's rule for the signature set below)
    def drift_then_retrain(current: str, registry: dict, data: dict, p_val: float, correction: str,
                           min_samples: int, validation: dict, feature: dict, train: dict, evaluate: dict,
                           gate: dict, tracking: dict, serving: dict, drift: dict, output: str):
        checked = _configure(ops.drift(current=current, registry=registry, tracking=tracking, p_val=p_val,
                                       correction=correction, min_samples=min_samples), secret)
        # The decision is the task's single output: kfp.local resolves a condition on `Output` only.
        with dsl.If(checked.outputs["Output"] == True, name="drift-found"):  # noqa: E712 (a KFP condition)
            retrain(data=data, validation=validation, feature=feature, train=train, evaluate=evaluate, gate=gate,
                    registry=registry, tracking=tracking, serving=serving, drift=drift, output=output)

    return as_pipeline(drift_then_retrain, name=DRIFT_PIPELINE_NAME, docs=_parameter_docs(),
                       defaults=drift_pipeline_defaults(spec),
                       description="driftloop: check the current data for drift against the @champion's reference; "
                                   "on drift, retrain with the gated training pipeline.")


def _parameter_docs() -> str:
    from driftloop.pipelines.pipeline import _parameter_docs as training_docs
    from driftloop.spec import DriftSpec

    fields = DriftSpec.model_fields
    check = ["    current: The current table (local path or s3:// URI) to compare with the @champion's reference.",
             f"    p_val: {fields['p_val'].description}",
             f"    correction: {fields['correction'].description or 'bonferroni or fdr.'}",
             f"    min_samples: {fields['min_samples'].description or 'Values a feature needs in each table.'}"]
    _, _, sections = training_docs().partition("Args:\n")
    sections = sections.replace("    data: ", "    data: What a retrain trains on. ").replace(
        "    registry: ", "    registry: The model checked (its @champion holds the reference) and retrained. ")
    return ("Check for drift against the @champion's reference; on drift, train, gate and promote a new version."
            "\n\nArgs:\n" + "\n".join(check) + "\n" + sections)
