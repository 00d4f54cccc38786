"""driftloop.pipelines: the Kubeflow Pipelines graphs, their compile entry, the kfp-local runner and submit.

`training_pipeline` and `drift_then_retrain` (drift → dsl.If(drift) → training_pipeline) are
built on first access, so importing this package stays cheap.

Example:
    >>> from kfp import compiler
    >>> from driftloop.pipelines import training_pipeline
    >>> compiler.Compiler().compile(training_pipeline, "driftloop_pipeline.yaml")
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_drift_pipeline", "build_training_pipeline", "drift_then_retrain", "training_pipeline"]


def __getattr__(name: str) -> Any:
    if name == "drift_then_retrain":
        from driftloop.pipelines.drift_pipeline import build_drift_pipeline

        globals()["drift_then_retrain"] = build_drift_pipeline()
        return globals()["drift_then_retrain"]
    if name == "build_drift_pipeline":
        from driftloop.pipelines.drift_pipeline import build_drift_pipeline

        return build_drift_pipeline
    if name == "training_pipeline":
        from driftloop.pipelines.pipeline import build_training_pipeline

        globals()["training_pipeline"] = build_training_pipeline()
        return globals()["training_pipeline"]
    if name == "build_training_pipeline":
        from driftloop.pipelines.pipeline import build_training_pipeline

        return build_training_pipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
