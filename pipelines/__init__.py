"""driftloop.pipelines: the Kubeflow Pipelines graph, its compile entry, the kfp-local runner and submit.

`training_pipeline` is built on first access, so importing this package stays cheap.

Example:
    >>> from kfp import compiler
    >>> from driftloop.pipelines import training_pipeline
    >>> compiler.Compiler().compile(training_pipeline, "driftloop_pipeline.yaml")
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_training_pipeline", "training_pipeline"]


def __getattr__(name: str) -> Any:
    if name == "training_pipeline":
        from driftloop.pipelines.pipeline import build_training_pipeline

        globals()["training_pipeline"] = build_training_pipeline()
        return globals()["training_pipeline"]
    if name == "build_training_pipeline":
        from driftloop.pipelines.pipeline import build_training_pipeline

        return build_training_pipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
