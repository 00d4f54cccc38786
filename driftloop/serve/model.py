"""The served model, where its versions come from, and the swap that makes hot reload safe.

A request reads `ModelHolder.current` once and uses that `ServedModel` to the end, so a
swap (one attribute assignment on the worker's event loop) can never hand a request half
of one version and half of another. The new version is downloaded, loaded and warmed up
in a thread beside the old one, which keeps answering meanwhile; only then is it swapped in.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from driftloop.errors import ModelNotFound
from driftloop.serve.schema import InputSchema

if TYPE_CHECKING:
    from driftloop.mlflow_gateway import MLflowGateway
    from driftloop.onnx_model import OnnxModel


@dataclass(frozen=True)
class ServedModel:
    name: str
    alias: str
    version: str
    onnx: OnnxModel
    schema: InputSchema
    classes: np.ndarray | None  # for turning argmax indices into labels in one numpy call

    @cached_property
    def _outputs(self) -> list[str]:
        return [self.onnx.output]

    @property
    def task(self) -> str:
        return self.onnx.task

    @cached_property
    def _run_session(self) -> Callable[..., list[np.ndarray]]:
        """ONNX Runtime's own run, without the Python wrapper's per-call input-name check (~5 µs of a ~20 µs
        run): the schema builds every feed with exactly the model's input names, and a wrong feed still
        fails inside ONNX Runtime."""
        session = self.onnx.session
        inner = getattr(session, "_sess", None)
        if inner is None or not hasattr(inner, "run"):  # another onnxruntime layout: the public call
            return lambda outputs, feed, options: session.run(outputs, feed, options)
        return inner.run

    def run(self, feed: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """(predictions [N], probabilities [N, C] or None)."""
        output = self._run_session(self._outputs, feed, None)[0]
        if self.classes is None:
            return output.reshape(-1), None
        return self.classes[output.argmax(axis=1)], output

    def metadata(self) -> dict[str, Any]:
        """KServe V1 model metadata, plus what a client needs to build a request."""
        return {"name": self.name, "versions": [self.version], "version": self.version, "alias": self.alias,
                "platform": "onnxruntime", "ready": True, "task": self.task,
                "classes": self.classes.tolist() if self.classes is not None else None,
                "inputs": self.schema.describe(),
                "outputs": [{"name": "predictions"}] + ([{"name": "probabilities"}] if self.classes is not None else [])}


def load_served(path: Path, *, name: str, alias: str, version: str, max_rows: int) -> ServedModel:
    """Load an ONNX model file and run it once, so its first real request is not the slow one."""
    from driftloop.onnx_model import OnnxModel

    # one intra-op thread: the server runs one worker process per core
    onnx = OnnxModel(path, threads=1)
    schema = InputSchema(tuple(onnx.numeric), tuple(onnx.categorical), max_rows, onnx.input_names,
                         datetime=onnx.datetime, date_formats=dict(onnx.date_formats), boolean=frozenset(onnx.boolean),
                         # a training row has its label too: clients send rows of the table the model was trained on
                         ignored=frozenset(onnx.ignored) | {onnx.target}, missing=onnx.missing_texts)
    classes = np.asarray(onnx.classes) if onnx.task == "classification" and onnx.classes is not None else None
    model = ServedModel(name, alias, version, onnx, schema, classes)
    warm = {c: [0.0] for c in schema.numeric} | {c: [""] for c in schema.categorical} | {c: [None] for c in schema.dates}
    model.run(schema.feed(warm))
    return model


class RegistrySource:
    """Model versions behind an alias in the MLflow registry, cached on disk by version.

    The cache is shared by the worker processes: a version is downloaded into a private
    temporary directory and renamed into place, so a worker sees either no file or a whole one.
    """

    def __init__(self, tracking_uri: str, name: str, alias: str, cache_dir: Path, *,
                 registry: MLflowGateway | None = None) -> None:
        self.tracking_uri, self.name, self.alias, self.cache_dir = tracking_uri, name, alias, cache_dir
        self._registry = registry  # connected lazily in workers, so a worker starts without a registry call

    @property
    def registry(self) -> MLflowGateway:
        if self._registry is None:
            from driftloop.mlflow_gateway import connect

            self._registry = connect(self.tracking_uri)
        return self._registry

    def resolve(self) -> Any:
        """The MLflow ModelVersion the alias points at now."""
        version = self.registry.by_alias(self.name, self.alias)
        if version is None:
            self.registry.require_model(self.name)  # a misspelt model says so, with the nearest registered name
            raise ModelNotFound(f"model {self.name!r} has no @{self.alias} version at {self.tracking_uri}")
        return version

    def path(self, version: str) -> Path:
        return self.cache_dir / self.name / str(version) / "model.onnx"

    def fetch(self, model_version: Any) -> Path:
        final = self.path(model_version.version)
        if final.exists():
            return final
        final.parent.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{model_version.version}-", dir=final.parent.parent))
        try:
            downloaded = self.registry.download_model(model_version, staging)
            if downloaded.name != final.name:
                downloaded.rename(staging / final.name)
            try:
                os.rename(staging, final.parent)
            except OSError:  # another worker renamed its copy first: that one is just as good
                if not final.exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return final


@dataclass(frozen=True)
class SyncResult:
    version: str
    previous: str | None  # None when nothing changed

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "previous": self.previous, "changed": self.previous is not None}


class ModelHolder:
    """The current model of one worker, and the one way to change it."""

    def __init__(self, source: RegistrySource, current: ServedModel, *, max_rows: int) -> None:
        self.source = source
        self.current = current
        self.max_rows = max_rows
        self._lock = asyncio.Lock()

    async def sync(self) -> SyncResult:
        """Serve whatever version the alias points at now; a no-op when it is already served."""
        async with self._lock:  # one reload at a time per worker; a second caller waits and finds it done
            target = await asyncio.to_thread(self.source.resolve)
            current = self.current
            if str(target.version) == current.version:
                return SyncResult(current.version, None)
            fresh = await asyncio.to_thread(self._load, target)
            self.current = fresh
            return SyncResult(fresh.version, current.version)

    def _load(self, target: Any) -> ServedModel:
        path = self.source.fetch(target)
        return load_served(path, name=self.source.name, alias=self.source.alias, version=str(target.version),
                           max_rows=self.max_rows)


def reload_marker(state_dir: Path) -> Path:
    """Touched by the worker that handled `POST /admin/reload`, so its siblings sync too."""
    return state_dir / "reload-requested"


def touch(path: Path) -> None:
    path.write_text(json.dumps({"pid": os.getpid()}), encoding="utf-8")
