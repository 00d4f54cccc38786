"""The one model file: preprocessing and model merged into a single ONNX graph.

It has one input per raw column: float32 [N,1] for numbers, string [N,1] for categories and
for dates, whose calendar features (year, month, ...) the graph computes from the date text
(`driftloop.onnx_calendar`), so any ONNX runtime given the file alone takes raw rows. One output:
class probabilities, or the regression prediction. Metadata props carry the task, the class labels,
the column roles and each date column's format, so the file alone is enough to serve, evaluate or
re-score a champion. (Files from before the graph read dates take the calendar features as float
inputs instead; `feed_rows` still computes those for them.)

Column names are the user's (spaces, brackets, dots, unicode, leading digits); the
graph's input names are safe identifiers, and `driftloop.inputs` maps one to the
other. Whatever feeds the session goes through that mapping (`OnnxModel.input_names`).
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from driftloop import __version__
from driftloop.canonical import (
    DEFAULT_MISSING_TEXTS,
    boolean_text,
    calendar_name,
    calendar_parts,
    category_text,
    missing_as_none,
    number_text,
)
from driftloop.constants import (
    META_BOOLEAN,
    META_CATEGORICAL,
    META_CLASSES,
    META_DATE_FORMATS,
    META_DATETIME,
    META_IGNORED,
    META_INPUTS,
    META_MISSING_TEXTS,
    META_NUMERIC,
    META_POSITIVE_CLASS,
    META_TARGET,
    META_TASK,
    META_VERSION,
    ONNX_OUTPUT_PREDICTION,
    ONNX_OUTPUT_PROBABILITIES,
)
from driftloop.dates import ISO, written
from driftloop.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


class ColumnRoles(Protocol):
    """The column roles the export needs (the train step's `ColumnRoles`); a protocol, so this core module
    does not import the steps package above it."""

    target: str
    numeric: list[str]
    categorical: list[str]
    boolean: list[str]
    datetime: dict[str, list[str]]
    ignored: list[str]
    date_formats: dict[str, str]

    @property
    def calendar(self) -> list[str]: ...


# Opset 17 unless the model reads dates: their string ops need 20 (`onnx_calendar.DATES_OPSET`), and only
# such a model pays the version conversion of its other parts
OPSET = 17
ML_OPSET = 3
IR_VERSIONS = {17: 8, 20: 9}  # the IR each opset needs; both halves must agree before merging
IR_VERSION = IR_VERSIONS[OPSET]


def safe_input_names(columns: list[str]) -> dict[str, str]:
    """Column name → a unique ONNX input name of ASCII letters, digits and `_`, not starting with a digit.

    Example:
        >>> safe_input_names(["mean radius", "1st", "mean_radius"])
        {'mean radius': 'mean_radius', '1st': 'c_1st', 'mean_radius': 'mean_radius_2'}
    """
    names: dict[str, str] = {}
    taken: set[str] = set()
    for column in columns:
        base = re.sub(r"[^0-9A-Za-z_]", "_", column) or "c"
        if base[0].isdigit():
            base = f"c_{base}"
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        names[column] = name
    return names


def graph_names(roles: ColumnRoles) -> dict[str, str]:
    """Safe names of the raw columns and of the calendar features the graph computes from the dates."""
    return safe_input_names(roles.numeric + list(roles.datetime) + roles.calendar + roles.categorical)


def transform_to_onnx(transform: Any, roles: ColumnRoles) -> Any:
    """Convert the fitted ColumnTransformer with one input per raw column, named by `safe_input_names`;
    a date column's input is its text, which the graph turns into the calendar features the transform takes."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    inputs = [(c, FloatTensorType([None, 1])) for c in roles.numeric + roles.calendar]
    inputs += [(c, StringTensorType([None, 1])) for c in roles.categorical]
    model = convert_sklearn(transform, initial_types=inputs, target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET})
    # skl2onnx keeps the inputs in order but rewrites names its own way (and may clash: "a b" and "a_b");
    # rename them to ours, which the metadata maps back to the columns
    safe = graph_names(roles)
    renames = {graph_input.name: safe[column] for graph_input, (column, _) in zip(model.graph.input, inputs, strict=True)}
    for graph_input in model.graph.input:
        graph_input.name = renames[graph_input.name]
    for node in model.graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
    if not roles.datetime:
        return at_opset(model, OPSET)
    from driftloop.onnx_calendar import DATES_OPSET

    return _with_dates(at_opset(model, DATES_OPSET), roles, safe)


def _with_dates(model: Any, roles: ColumnRoles, safe: dict[str, str]) -> Any:
    """The calendar features, inputs until now, computed in the graph from one string input per date column."""
    from onnx import TensorProto, helper

    from driftloop.onnx_calendar import calendar_graph

    computed = {safe[c] for c in roles.calendar}
    kept = [i for i in model.graph.input if i.name not in computed]
    nodes, initializers = [], []
    for n, (column, parts) in enumerate(roles.datetime.items()):
        outputs = {part: safe[calendar_name(column, part)] for part in parts}
        made, constants = calendar_graph(safe[column], roles.date_formats.get(column, ISO), parts, outputs,
                                         prefix=f"date{n}_")
        nodes += made
        initializers += constants
    dates = [helper.make_tensor_value_info(safe[c], TensorProto.STRING, [None, 1]) for c in roles.datetime]
    numeric = len(roles.numeric)  # inputs in column order: numbers, dates, categories
    del model.graph.input[:]
    model.graph.input.extend(kept[:numeric] + dates + kept[numeric:])
    model.graph.initializer.extend(initializers)
    existing = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes + existing)  # before the transform, which reads their outputs
    return model


def at_opset(model: Any, opset: int) -> Any:
    """The graph converted to `opset` (skl2onnx stamps the lowest its ops need, the exporters 17), with the IR
    that opset needs: merging needs one opset and IR on both sides."""
    from onnx import helper, version_converter

    current = {entry.domain: entry.version for entry in model.opset_import}
    if current.get("", opset) != opset:
        ml = [e for e in model.opset_import if e.domain == "ai.onnx.ml"]
        model = version_converter.convert_version(model, opset)
        if not any(e.domain == "ai.onnx.ml" for e in model.opset_import) and ml:
            model.opset_import.append(helper.make_opsetid("ai.onnx.ml", ml[0].version))
    model.ir_version = IR_VERSIONS[opset]
    return model


def mlp_to_onnx(module: Any, n_features: int, output_name: str) -> Any:
    """Export the torch module; a batch of 2 and a dynamic batch axis, as the exporter needs."""
    import io
    import warnings

    import onnx
    import torch

    buffer = io.BytesIO()
    module = module.eval().cpu()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(2, n_features),), buffer, input_names=["features"],
                          output_names=[output_name], opset_version=OPSET, dynamo=False,
                          dynamic_axes={"features": {0: "batch"}, output_name: {0: "batch"}})
    model = onnx.load_from_string(buffer.getvalue())
    model.ir_version = IR_VERSION
    return model


def estimator_to_onnx(estimator: Any, n_features: int, output_name: str) -> Any:
    """Convert a fitted scikit-learn estimator to a graph shaped like `mlp_to_onnx`'s, so `merge` takes either.

    Input `features` float [N, n_features]; one output `output_name`: the class probabilities
    [N, C] (skl2onnx's `probabilities`, without the ZipMap) or the prediction [N, 1].

    Raises:
        Exception: whatever skl2onnx raises for an estimator it cannot convert (the caller names it).
    """
    from onnx import helper
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    options = {id(estimator): {"zipmap": False}} if hasattr(estimator, "predict_proba") else None
    model = convert_sklearn(estimator, initial_types=[("features", FloatTensorType([None, n_features]))],
                            target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET}, options=options)
    produced = "probabilities" if hasattr(estimator, "predict_proba") else model.graph.output[-1].name
    kept = [o for o in model.graph.output if o.name == produced]
    if not kept:
        raise ValueError(f"the converted graph has no {produced!r} output")
    del model.graph.output[:]
    model.graph.output.extend(kept)
    for node in model.graph.node:
        node.output[:] = [output_name if o == produced else o for o in node.output]
    model.graph.output[0].name = output_name
    # skl2onnx may list a domain twice; `merge` aligns the ML opset with the preprocessing graph's
    versions = {e.domain: e.version for e in model.opset_import}
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(domain, version) for domain, version in versions.items())
    model.ir_version = IR_VERSION
    return model


def merge(transform_model: Any, mlp_model: Any, *, task: str, classes: list[Any] | None,
          roles: ColumnRoles, missing: frozenset[str] | None = None) -> Any:
    """Preprocessing → model (`mlp_to_onnx` or `estimator_to_onnx`) as one graph, with driftloop metadata."""
    import onnx
    from onnx import compose

    opset = _opset(transform_model)
    if _opset(mlp_model) != opset:  # the preprocessing reads dates: the model half follows it to opset 20
        mlp_model = at_opset(mlp_model, opset)
    _align_opsets(transform_model, mlp_model)
    mlp = compose.add_prefix(mlp_model, prefix="mlp_")
    transformed = transform_model.graph.output[0].name
    merged = compose.merge_models(transform_model, mlp, io_map=[(transformed, "mlp_features")])
    output = ONNX_OUTPUT_PROBABILITIES if task == "classification" else ONNX_OUTPUT_PREDICTION
    for node in merged.graph.node:
        node.output[:] = [output if o == f"mlp_{output}" else o for o in node.output]
    for graph_output in merged.graph.output:
        if graph_output.name == f"mlp_{output}":
            graph_output.name = output
    meta = {META_TASK: task, META_CLASSES: json.dumps(classes), META_TARGET: roles.target,
            META_NUMERIC: json.dumps(roles.numeric), META_CATEGORICAL: json.dumps(roles.categorical),
            META_DATETIME: json.dumps(roles.datetime, ensure_ascii=False), META_BOOLEAN: json.dumps(roles.boolean),
            META_IGNORED: json.dumps(roles.ignored, ensure_ascii=False),
            META_INPUTS: json.dumps({c: name for c, name in graph_names(roles).items() if c not in roles.calendar},
                                    ensure_ascii=False),
            META_VERSION: __version__}
    if missing is not None and missing != DEFAULT_MISSING_TEXTS:  # absent means pandas' own, as in older files
        meta[META_MISSING_TEXTS] = json.dumps(sorted(missing), ensure_ascii=False)
    if roles.datetime:  # also marks a file whose graph reads the date text
        meta[META_DATE_FORMATS] = json.dumps({c: roles.date_formats.get(c, ISO) for c in roles.datetime},
                                             ensure_ascii=False)
    if task == "classification" and classes is not None and len(classes) == 2:
        meta[META_POSITIVE_CLASS] = json.dumps(classes[1])  # the feature step orders the positive class second
    for key, value in meta.items():
        entry = merged.metadata_props.add()
        entry.key, entry.value = key, value
    merged.producer_name = "driftloop"
    onnx.checker.check_model(merged)
    return merged


def _opset(model: Any) -> int:
    return next(e.version for e in model.opset_import if e.domain in ("", "ai.onnx"))


def _align_opsets(first: Any, second: Any) -> None:
    """Both graphs at the higher version of each domain they share, as `merge_models` requires.

    skl2onnx stamps the lowest version its ops exist in (ai.onnx.ml 1 for the preprocessing and
    the tree and linear estimators alike), so in practice nothing is raised.
    """
    mine = {e.domain: e for e in first.opset_import}
    for entry in second.opset_import:
        if entry.domain in mine and mine[entry.domain].version != entry.version:
            entry.version = mine[entry.domain].version = max(entry.version, mine[entry.domain].version)


def feed_rows(frame: pd.DataFrame, numeric: list[str], categorical: list[str],
              input_names: dict[str, str], *, dates: dict[str, str] | None = None,
              datetime: dict[str, list[str]] | None = None,
              boolean: list[str] | tuple[str, ...] = (),
              missing_texts: frozenset[str] = frozenset()) -> dict[str, np.ndarray]:
    """Raw rows → one [N,1] array per graph input: float32 numbers (text like "3,750" read as serving reads it),
    str categories ('' when missing; booleans as 'True'/'False'), and each date as its text ('' when missing; a
    date object written in the column's format), which the graph reads.

    Args:
        dates: date column → its format: the columns the graph reads from text.
        datetime: date column → calendar features, for files from before the graph read dates: computed here.
        missing_texts: category and date texts that mean missing (`OnnxModel.missing_texts`): a Parquet or JSON Lines
            table to score is read without pandas' missing-value texts, a CSV one with them.
    """
    import numpy as np
    import pandas as pd

    missing = [c for c in numeric + list(dates or {}) + list(datetime or {}) + categorical if c not in frame.columns]
    if missing:
        raise DataError(f"model input column {missing[0]!r} is missing from the rows")
    feed: dict[str, np.ndarray] = {}
    for column in numeric:
        series = frame[column]
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            series = pd.Series([_number(v) for v in series.tolist()], index=frame.index, dtype="float64")
        feed[input_names[column]] = series.to_numpy(dtype=np.float32).reshape(-1, 1)
    for column, fmt in (dates or {}).items():
        texts = [written(v, fmt) if isinstance(v, date) and v == v else _text(v)
                 for v in missing_as_none(frame[column].tolist(), missing_texts)]
        feed[input_names[column]] = np.array(texts, dtype=object).reshape(-1, 1)
    for column, parts in (datetime or {}).items():
        values = np.array([calendar_parts(v, tuple(parts)) for v in frame[column].tolist()],
                          dtype=np.float32).reshape(-1, len(parts))
        for i, part in enumerate(parts):
            feed[input_names[calendar_name(column, part)]] = values[:, i:i + 1]
    flags = set(boolean)
    for column in categorical:
        values = [boolean_text(v) if column in flags else v
                  for v in missing_as_none(frame[column].tolist(), missing_texts)]
        feed[input_names[column]] = np.array([_text(v, category=True) for v in values], dtype=object).reshape(-1, 1)
    return feed


def _text(value: Any, *, category: bool = False) -> str:
    """A category or date cell as the graph's string input: missing (None, NaN, NaT, pandas.NA) is ''; a category
    as `category_text` writes it (2.0 as "2"), as training did."""
    if value is None or type(value).__name__ in ("NAType", "NaTType") or (isinstance(value, float) and value != value):
        return ""
    return category_text(value) if category else str(value)


def _number(value: Any) -> float:
    """One cell of a numeric column that pandas did not read as numbers: missing and unreadable are NaN."""
    if isinstance(value, str):
        parsed = number_text(value)
        return parsed[0] if parsed is not None else float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def transform_rows(transform_model: Any, frame: pd.DataFrame, roles: ColumnRoles) -> np.ndarray:
    """Raw rows through the preprocessing graph (`transform_to_onnx`): the float32 features the served file computes.

    Models train on these, not on scikit-learn's float64 transform cast down: a tree splits at
    thresholds that can sit exactly on a training value, so the one-ulp difference between the two
    sends rows down other branches (5 units of the diabetes target, measured).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # a one-off pass over a table: no thread pool to start (and to tear down)
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(transform_model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    dates = {c: roles.date_formats.get(c, ISO) for c in roles.datetime}
    feed = feed_rows(frame, roles.numeric, roles.categorical, graph_names(roles), dates=dates, boolean=roles.boolean)
    return session.run(None, feed)[0]  # type: ignore[no-any-return]


class OnnxModel:
    """An ONNX Runtime session over a driftloop model file that takes raw rows."""

    def __init__(self, path: Path | str, *, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.task: str = meta[META_TASK]
        self.classes: list[Any] | None = json.loads(meta[META_CLASSES])
        self.target: str = meta[META_TARGET]
        self.numeric: list[str] = json.loads(meta[META_NUMERIC])
        # date column → its calendar features, and the format of its text
        self.dates: dict[str, list[str]] = json.loads(meta.get(META_DATETIME, "{}"))
        self.date_formats: dict[str, str] = json.loads(meta.get(META_DATE_FORMATS, "{}"))
        # Serving builds its input schema from `numeric`, `categorical` and `datetime`: a date the graph reads
        # is a string input like a category there, and `datetime` lists only the dates whose calendar features
        # the feeder computes (files from before the graph read dates)
        self.datetime: dict[str, list[str]] = {c: p for c, p in self.dates.items() if c not in self.date_formats}
        self.categories: list[str] = json.loads(meta[META_CATEGORICAL])
        self.categorical: list[str] = [c for c in self.dates if c in self.date_formats] + self.categories
        self.boolean: list[str] = json.loads(meta.get(META_BOOLEAN, "[]"))
        self.ignored: list[str] = json.loads(meta.get(META_IGNORED, "[]"))  # training columns it leaves out
        # column → graph input; files from before the mapping named their inputs by column
        self.input_names: dict[str, str] = json.loads(meta.get(META_INPUTS, "null")) or {c: c for c in self.columns}
        # the texts training read as missing: every route into the model reads them so (`train.kept_missing_texts`)
        self.missing_texts: frozenset[str] = (frozenset(json.loads(meta[META_MISSING_TEXTS]))
                                              if META_MISSING_TEXTS in meta else DEFAULT_MISSING_TEXTS)
        self.output = self.session.get_outputs()[0].name

    @property
    def columns(self) -> list[str]:
        """The raw columns a row must have."""
        return self.numeric + list(self.dates) + self.categories

    @property
    def positive_class(self) -> Any:
        """Binary classifiers: the class the precision/recall/F1/PR-AUC are about, always `classes[1]`; else None."""
        if self.task != "classification" or not self.classes or len(self.classes) != 2:
            return None
        return self.classes[1]

    def feed(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Raw rows → one [N,1] array per graph input (`feed_rows`)."""
        return feed_rows(frame, self.numeric, self.categories, self.input_names, dates=self.date_formats,
                         datetime=self.datetime, boolean=self.boolean, missing_texts=self.missing_texts)

    def run(self, frame: pd.DataFrame) -> np.ndarray:
        """Probabilities [N, C] for classifiers, predictions [N] for regressors."""
        result = self.session.run([self.output], self.feed(frame))[0]
        return result if self.task == "classification" else result.reshape(-1)

    def predict(self, frame: pd.DataFrame) -> list[Any]:
        output = self.run(frame)
        if self.task == "classification":
            assert self.classes is not None
            return [self.classes[i] for i in output.argmax(axis=1)]
        return output.tolist()
