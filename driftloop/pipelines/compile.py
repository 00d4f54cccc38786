"""The compile entry: the pipeline as deterministic KFP v2 IR YAML."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from driftloop.pipelines.backends import Backend, for_backend

if TYPE_CHECKING:
    from driftloop.spec import Spec

PIPELINES = ("training", "drift-then-retrain")


def compile_pipeline(path: str | Path, *, spec: Spec | None = None, image: str | None = None,
                     secret: str | None = None, pipeline: str = "training", backend: Backend | None = None) -> Path:
    """Write the IR YAML of `pipeline` for `spec` (or the spec model's defaults) to `path`.

    `backend` (default: the newest) decides what the IR may use; see `driftloop.pipelines.backends`.

    The same inputs always give the same bytes (no timestamps, keys in a fixed order), so the
    committed `pipelines/driftloop_pipeline.yaml` and `pipelines/drift_then_retrain.yaml`
    show graph changes in review.

    Raises:
        InvalidSpec: a spec value KFP parameters cannot carry, with the field named.
    """
    from kfp import compiler

    from driftloop.pipelines.drift_pipeline import build_drift_pipeline
    from driftloop.pipelines.pipeline import CREDENTIALS_SECRET, build_training_pipeline

    backend = backend or Backend()
    build = {"training": build_training_pipeline, "drift-then-retrain": build_drift_pipeline}[pipeline]
    graph = build(spec, image=image, secret=secret or CREDENTIALS_SECRET, final_status=backend.final_status)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(graph, str(target))
    target.write_text(for_backend(_stable_header(target.read_text(encoding="utf-8")), backend), encoding="utf-8")
    return target


# The KFP components a user can take into a pipeline of their own, in graph order.
COMPONENTS = ("open_run", "validate", "train", "evaluate", "deploy", "finish_run", "end_run", "drift")


def compile_components(directory: str | Path, *, image: str | None = None) -> list[Path]:
    """Write each KFP component's spec as `<directory>/<name>.yaml` (loadable with `kfp.components.load_component_from_file`).

    Deterministic like `compile_pipeline`, so the committed `components/` shows changes in review.
    """
    from kfp import compiler

    from driftloop.pipelines import kfp_components
    from driftloop.pipelines.pipeline import ComponentsInImage

    ops = ComponentsInImage(kfp_components, image) if image is not None else kfp_components
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in COMPONENTS:
        path = target / f"{name}.yaml"
        compiler.Compiler().compile(getattr(ops, name), str(path))
        path.write_text(_stable_header(path.read_text(encoding="utf-8")), encoding="utf-8")
        written.append(path)
    return written


_DEFAULT_LINE = re.compile(r"^(#\s+\w+: \w+ \[Default: )(.*)(\])$")


def _stable_header(text: str) -> str:
    """KFP's header comment prints struct defaults in protobuf map order, which varies per process: sort them."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not line.startswith("#"):
            break
        match = _DEFAULT_LINE.match(line)
        if match:
            value = ast.literal_eval(match.group(2))
            lines[i] = f"{match.group(1)}{json.dumps(value, sort_keys=True)}{match.group(3)}"
    return "\n".join(lines)
