"""The drift-then-retrain pipeline: drift → dsl.If(drift found) → the training pipeline as a sub-pipeline.

Its parameters are the training pipeline's (the spec's sections, whose `data` is what a
retrain trains on) plus the drift check's own: the `current` table, its CSV `read` options
(by default the spec's `data.read`: the live table is usually in the training table's form),
and the test's `p_val`, `correction` and `min_samples`. The check reads the reference stored with
`registry.model_name`'s @champion from the MLflow of `tracking`, the same model and
server the retrain registers to, so the two cannot disagree on which model they mean.
"""

# No `from __future__ import annotations`: KFP reads the pipeline function's annotations as types.
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import inspect

    from kfp.dsl.graph_component import GraphComponent

    from driftloop.spec import Spec

DRIFT_PIPELINE_NAME = "driftloop-drift-then-retrain"
CHECK_PARAMETERS = ("current", "read", "p_val", "correction", "min_samples")


def drift_pipeline_defaults(spec: "Spec | None" = None) -> dict[str, Any]:
    """The defaults: the training pipeline's (with `validation.reprofile`), the check's from the spec's `drift` section.

    With a spec, `registry.model_name` is filled in with the spec's model name: the retrain
    data's file name must not rename the model. Without one it has no default, so the run
    form asks for it (and `current`).
    """
    from driftloop.pipelines.parameters import pipeline_defaults
    from driftloop.spec import DriftSpec

    defaults = pipeline_defaults(spec)
    policy = spec.drift if spec is not None else DriftSpec()
    defaults.update({"p_val": policy.p_val, "correction": policy.correction, "min_samples": policy.min_samples,
                     "read": spec.data.read.options() if spec is not None else {}})
    # every training run of this pipeline is a drift retrain: its suite is re-profiled from the data (see validate)
    defaults["validation"] = {**defaults.get("validation", {}), "reprofile": True}
    if spec is not None:
        defaults["registry"] = {**defaults.get("registry", {}), "model_name": spec.model_name}
    else:
        defaults.pop("registry", None)
    return defaults


def build_drift_pipeline(spec: "Spec | None" = None, *, image: str | None = None,
                         secret: str | None = None, final_status: bool = True) -> "GraphComponent":
    """The drift-then-retrain pipeline, with defaults from `spec` and every task in `image`.

    Args:
        spec: defaults for the parameters (see `drift_pipeline_defaults`) and the retrain's
            compile-time settings; None: the spec model's defaults.
        image: the project image; default `$DRIFTLOOP_IMAGE` or the one for this version.
        secret: Kubernetes Secret whose keys become the tasks' environment [driftloop-credentials].
        final_status: as in `build_training_pipeline`, for the retrain.

    Example:
        >>> from kfp import compiler
        >>> compiler.Compiler().compile(build_drift_pipeline(spec), "drift_then_retrain.yaml")
    """

    from kfp import dsl

    from driftloop.pipelines import kfp_components as ops
    from driftloop.pipelines.parameters import section_parameters
    from driftloop.pipelines.pipeline import (
        CREDENTIALS_SECRET,
        ComponentsInImage,
        as_pipeline,
        build_training_pipeline,
        configure_task,
    )

    secret = secret or CREDENTIALS_SECRET
    retrain = build_training_pipeline(spec, image=image, secret=secret, final_status=final_status)
    if image is not None:
        ops = ComponentsInImage(ops, image)  # type: ignore[assignment]
    signature = _signature(section_parameters())

    def drift_then_retrain(*values: Any):  # the check's parameters and the spec's sections, as `signature` orders them
        given = dict(zip(signature.parameters, values, strict=True))
        check = {name: given.pop(name) for name in CHECK_PARAMETERS}
        checked = configure_task(ops.drift(**check, registry=given["registry"], tracking=given["tracking"]), secret)
        # The decision is the task's single output: kfp.local resolves a condition on `Output` only.
        with dsl.If(checked.outputs["Output"] == True, name="drift-found"):  # noqa: E712 (a KFP condition)
            retrain(**given)

    drift_then_retrain.__signature__ = signature  # type: ignore[attr-defined]
    return as_pipeline(drift_then_retrain, name=DRIFT_PIPELINE_NAME, docs=_parameter_docs(),
                       defaults=drift_pipeline_defaults(spec),
                       description="driftloop: check the current data for drift against the @champion's reference; "
                                   "on drift, retrain with the gated training pipeline.")


def _signature(sections: "list[inspect.Parameter]") -> "inspect.Signature":
    """The check's parameters and the spec's sections; those that may lack a default first (Python's rule)."""
    import inspect

    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    check = {"current": str, "read": dict, "p_val": float, "correction": str, "min_samples": int}
    by_name = {p.name: p for p in sections}
    first = [inspect.Parameter("current", kind, annotation=str), by_name.pop("registry"), by_name.pop("data")]
    rest = [inspect.Parameter(name, kind, annotation=check[name]) for name in CHECK_PARAMETERS if name != "current"]
    return inspect.Signature(first + rest + list(by_name.values()))


def _parameter_docs() -> str:
    from driftloop.pipelines.pipeline import parameter_docs as training_docs
    from driftloop.spec import DriftSpec

    fields = DriftSpec.model_fields
    check = ["    current: The current table (local path or s3:// URI) to compare with the @champion's reference.",
             "    read: CSV options for the current table over the sniffed dialect, as data.read (sep, decimal, "
             "thousands, na_values, keep_default_na, encoding, skipinitialspace); by default the spec's data.read.",
             f"    p_val: {fields['p_val'].description}",
             f"    correction: {fields['correction'].description or 'bonferroni or fdr.'}",
             f"    min_samples: {fields['min_samples'].description or 'Values a feature needs in each table.'}"]
    _, _, sections = training_docs().partition("Args:\n")
    sections = sections.replace("    data: ", "    data: What a retrain trains on. ").replace(
        "    registry: ", "    registry: The model checked (its @champion holds the reference) and retrained. ")
    return ("Check for drift against the @champion's reference; on drift, train, gate and promote a new version."
            "\n\nArgs:\n" + "\n".join(check) + "\n" + sections)
