"""The one typed spec: the CLI, the runners and (later) KFP and the CRD derive from it.

Only `data.path` and `data.target` are required. Unknown keys and wrong types are
rejected with the key's dotted path and, for a misspelt key, the nearest valid name.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from driftloop.constants import LATENCY_METRICS, METRICS, WHITESPACE_SEP
from driftloop.errors import InvalidSpec
from driftloop.suggest import nearest


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ReadSpec(_Strict):
    """How to parse a CSV when sniffing guesses wrong; each key unset means sniffed (or pandas' default)."""

    sep: str | None = Field(None, description="Column delimiter, e.g. ';' or '\\t', or '\\s+' for runs of spaces "
                            "(a column-aligned or R `write.table` file); sniffed from , ; tab | when unset.")
    decimal: str | None = Field(None, description="Decimal mark, '.' or ','; ',' is sniffed for ;-separated files.")
    thousands: str | None = Field(None, description="Thousands separator inside numbers, e.g. '.' or ','.")
    na_values: list[str] | None = Field(None, description="Extra cell texts that mean missing, besides pandas' own.")
    keep_default_na: bool | None = Field(None, description="false: pandas' own missing-value texts (NA, None, null, "
                                         "N/A, nan, ...) are values, so a level spelled 'None' stays a category; "
                                         "only blanks and na_values are missing. The model keeps this reading.")
    encoding: str | None = Field(None, description="Text encoding; a BOM is honoured, else utf-8 then cp1252.")
    skipinitialspace: bool | None = Field(None, description="true: a space after a delimiter is padding, not part "
                                          "of the cell ('id, age, city'); sniffed from the header when unset.")

    @field_validator("sep", "decimal", "thousands")
    @classmethod
    def _one_character(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and len(value) != 1 and not (info.field_name == "sep" and value == WHITESPACE_SEP):
            raise ValueError("must be a single character" + (f" or {WHITESPACE_SEP!r} (runs of spaces)"
                                                             if info.field_name == "sep" else ""))
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        import codecs

        if value is not None:
            try:
                codecs.lookup(value)
            except LookupError:
                raise ValueError(f"unknown text encoding {value!r}") from None
        return value

    def options(self) -> dict[str, Any]:
        """The keys that are set, as `driftloop.table.load_table(read=...)` takes them."""
        return self.model_dump(exclude_none=True)


def validate_read(raw: dict[str, Any], where: str = "--read") -> dict[str, Any]:
    """`data.read` options from elsewhere (`driftloop predict --read`, the drift pipeline's `read`), checked as the
    spec checks them; `where` names their source in the error.

    Raises:
        InvalidSpec: an unknown key or a bad value, named.
    """
    try:
        return ReadSpec.model_validate(raw).options()
    except ValidationError as e:
        raise InvalidSpec(f"{where}: {_describe_read(e)}") from None


def read_flags(items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """`--read KEY=VALUE` flags (`predict`, `drift`) as checked `data.read` options; `na_values` takes a comma list.

    Raises:
        InvalidSpec: a flag that is not KEY=VALUE with a known key, or a bad value, named.
    """
    raw: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in ReadSpec.model_fields:
            raise InvalidSpec(f"--read {item!r}: expected KEY=VALUE with KEY one of {', '.join(ReadSpec.model_fields)}")
        raw[key] = value.split(",") if key == "na_values" else value
    return validate_read(raw)


def as_read_flags(options: dict[str, Any]) -> list[str]:
    """`data.read` options as the `--read KEY=VALUE` flags `read_flags` reads back (`na_values` joined by commas)."""
    return [f"{key}={','.join(value) if isinstance(value, list) else str(value).lower() if isinstance(value, bool) else value}"
            for key, value in options.items()]


def _describe_read(error: ValidationError) -> str:
    first = error.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg'].removeprefix('Value error, ')}"


class DataSpec(_Strict):
    """Where the training table is and what to predict."""

    path: str = Field(description="Local path or s3:// URI of a CSV or Parquet table.")
    target: str = Field(description="Name of the column to predict.")
    task: Literal["classification", "regression", "auto"] = "auto"
    format: Literal["auto", "csv", "parquet"] = "auto"
    read: ReadSpec = Field(default_factory=ReadSpec)
    drop_missing_target: bool = Field(True, description="Drop rows whose target is missing (counted in the run); "
                                      "false refuses such a table.")
    positive_class: str | int | float | bool | None = Field(
        None, description="Binary tasks: the class precision, recall, F1 and PR-AUC are about; "
        "default: the minority class of the training split.")


class ColumnRule(_Strict):
    """A declared expectation for one column."""

    type: Literal["numeric", "categorical"]
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    # as YAML writes them: a label coded 0/1 is the numbers [0, 1] or the text ["0", "1"], either matches
    categories: list[str | int | float | bool] | None = None


class ValidationSpec(_Strict):
    """Which expectations the table must meet.

    Resolution order: `suite` (a stored Great Expectations suite), then `columns`
    (declared here), then the suite stored with the current champion, then a suite
    profiled from this table.

    Missing columns, wrong types and an empty table are errors. Against a profiled suite (this
    table's or the champion's), new categories, values out of range and a changed null share are
    warnings (shown, stored, counted) unless `strict`; a declared suite's expectations are all errors.
    """

    suite: str | None = None
    columns: dict[str, ColumnRule] = Field(default_factory=dict)
    range_margin: float = Field(0.25, ge=0, description="Profiled ranges widen by this share of their span.")
    mostly: float = Field(0.99, gt=0, le=1, description="Share of rows that must meet a profiled range or category set.")
    strict: bool = Field(False, description="Every failed expectation is an error, new categories and ranges included.")
    reprofile: bool = Field(False, description="Profile the suite from this table even when the champion has one, and "
                            "record how it changed (a drift-triggered retrain sets it; strict keeps the champion's).")


ColumnRole = Literal["numeric", "categorical", "boolean", "datetime", "id", "drop"]


class FeatureSpec(_Strict):
    """Transforms and the split. Each column's role is inferred (and shown, with why) unless listed or set in `roles`."""

    numeric: list[str] | None = None
    categorical: list[str] | None = None
    drop: list[str] = Field(default_factory=list)
    roles: dict[str, ColumnRole] = Field(
        default_factory=dict,
        description="Column → role, over the inferred one: numeric, categorical, boolean, datetime, or id/drop "
                    "(left out of the model).")
    min_frequency: int = Field(
        5, ge=1, description="In a categorical column with over 20 distinct values, categories seen fewer times "
                             "in training share one 'other' bucket.")
    scaling: Literal["standard", "minmax", "none"] = "standard"
    encoding: Literal["onehot", "ordinal"] = "onehot"
    test_size: float = Field(0.2, gt=0, lt=0.5)
    val_size: float = Field(0.15, gt=0, lt=0.5)
    split_seed: int = 42
    reference_sample_rows: int = Field(10_000, ge=0, description="Rows of the training table stored with the model for drift checks.")

    def leaves_out(self, column: str) -> bool:
        """Whether the spec leaves `column` out of the model, whatever it holds (an empty or nested one included)."""
        if column in self.roles:
            return self.roles[column] in ("drop", "id")
        listed = [*(self.numeric or []), *(self.categorical or [])]
        return column in self.drop or (self.numeric is not None and self.categorical is not None
                                       and column not in listed)


class GbmSpec(_Strict):
    """`train.model: gbm`: scikit-learn's HistGradientBoostingClassifier/Regressor (its defaults)."""

    max_iter: int = Field(100, ge=1, description="Boosting iterations (trees per class).")
    learning_rate: float = Field(0.1, gt=0)
    max_leaf_nodes: int = Field(31, ge=2)
    min_samples_leaf: int = Field(20, ge=1)
    l2_regularization: float = Field(0.0, ge=0)


class LinearSpec(_Strict):
    """`train.model: linear`: LogisticRegression (classification, `C`) or Ridge (regression, `alpha`)."""

    C: float = Field(1.0, gt=0, description="Inverse regularisation strength of the logistic regression.")
    alpha: float = Field(1.0, ge=0, description="L2 penalty of the ridge regression.")
    max_iter: int = Field(1000, ge=1, description="Solver iterations of the logistic regression.")


class SearchParam(_Strict):
    """One searched hyperparameter: a range (`low`, `high`, `log`, `type`) or a list of `choices`.

    A range is sampled as integers when `type: int`, or when `type` is omitted and both bounds are integers.
    """

    low: int | float | None = None
    high: int | float | None = None
    log: bool = Field(False, description="Sample the range on a log scale (needs low > 0).")
    type: Literal["int", "float"] | None = Field(None, description="Inferred from the bounds when omitted.")
    choices: list[Any] | None = Field(None, description="Values to choose among, e.g. [[64, 32], [128]].")

    @model_validator(mode="after")
    def _range_or_choices(self) -> SearchParam:
        from driftloop.search_space import check_param

        check_param(self)
        return self


class SearchSpec(_Strict):
    """`train.search`: an Optuna search (TPE sampler, median pruner) over the family's hyperparameters.

    `space` keys are relative to `train`: the MLP's `lr`, `dropout`, `hidden_sizes` ...; `gbm.max_iter`,
    `linear.C`; `params.<key>` for a `module`. Each trial is a nested MLflow run; the best one is kept.
    """

    trials: int = Field(20, ge=1, description="Trials to run (fewer if `timeout` comes first).")
    timeout: str | None = Field(None, description="Wall time after which no new trial starts, e.g. 10m.")
    seed: int | None = Field(None, description="The sampler's seed; defaults to train.seed.")
    prune: bool = Field(True, description="Stop an MLP trial whose validation loss trails the median of earlier "
                        "trials at the same epoch.")
    space: dict[str, SearchParam] = Field(description="Hyperparameter -> range or choices.")

    @field_validator("timeout")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        from driftloop.durations import parse_duration

        if value is not None:
            parse_duration(value)
        return value


class TrainSpec(_Strict):
    """Which model is fitted and how. The PyTorch MLP's keys sit at this level (`hidden_sizes` ... `patience`)."""

    model: Literal["mlp", "gbm", "linear", "auto"] = Field(
        "mlp", description="The model family; `auto` fits linear, gbm, then mlp within `budget` and keeps the best "
        "on the validation split (log loss for classification, RMSE for regression).")
    budget: str = Field("2m", description="Wall time `model: auto` may spend on its candidates, e.g. 90s, 2m.")
    gbm: GbmSpec = Field(default_factory=GbmSpec)
    linear: LinearSpec = Field(default_factory=LinearSpec)
    module: str | None = Field(None, description="The user's model: `PATH.py:FUNCTION` or `package.module:FUNCTION`, "
                               "called with n_features, n_outputs, task and params; returns a torch.nn.Module or a "
                               "scikit-learn estimator. Overrides `model`.")
    module_source: str | None = Field(None, description="The text of `module`'s .py file, read when the spec is "
                                      "loaded so the file travels with the spec to KFP tasks and Job pods.")
    params: dict[str, Any] = Field(default_factory=dict, description="Passed to the `module` function as `params`.")
    class_weight: Literal["none", "balanced"] = Field(
        "none", description="Classification: weight classes inversely to their frequency in the train split.")
    hidden_sizes: list[int] = Field(default_factory=lambda: [64, 32])
    dropout: float = Field(0.0, ge=0, lt=1)
    epochs: int = Field(50, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    seed: int = 42
    patience: int = Field(5, ge=1, description="Epochs without validation-loss improvement before stopping.")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    onnx_tolerance: float = Field(1e-4, gt=0, le=1e-2, description="Bound on max |ONNX - the framework's own "
                                  "prediction| on the validation rows, times the outputs' size (max(1, max |output|)).")
    search: SearchSpec | None = Field(None, description="An Optuna search over the family's hyperparameters; "
                                      "the best trial's model is kept.")

    @field_validator("hidden_sizes")
    @classmethod
    def _positive_sizes(cls, sizes: list[int]) -> list[int]:
        if not sizes or any(s < 1 for s in sizes):
            raise ValueError("must be a non-empty list of positive layer widths")
        return sizes

    @field_validator("budget")
    @classmethod
    def _duration(cls, value: str) -> str:
        from driftloop.durations import parse_duration

        parse_duration(value)
        return value

    @field_validator("search")
    @classmethod
    def _searchable(cls, search: SearchSpec | None, info: ValidationInfo) -> SearchSpec | None:
        from driftloop.search_space import check_space

        if search is not None:
            check_space(search, info.data, cls)
        return search

    @field_validator("params")
    @classmethod
    def _integral_numbers_as_ints(cls, params: dict[str, Any]) -> dict[str, Any]:
        """3.0 → 3: KFP carries every number of a struct parameter as a float, and `range(3.0)`,
        `max_depth=3.0` reject it; a typed key is coerced by its field, a free-form one here."""
        return {key: _int_if_integral(value) for key, value in params.items()}

    @field_validator("module")
    @classmethod
    def _module_reference(cls, value: str | None) -> str | None:
        if value is None:
            return value
        where, sep, function = value.rpartition(":")
        if not sep or not where or not function.isidentifier():
            raise ValueError("expected PATH.py:FUNCTION or package.module:FUNCTION, e.g. model.py:build")
        return value


def _int_if_integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _int_if_integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_int_if_integral(v) for v in value]
    return value


class EvaluateSpec(_Strict):
    latency_samples: int = Field(200, ge=10, description="Single-row ONNX Runtime calls timed for p50/p99.")
    window: str | None = Field(None, description="A labelled table (e.g. the drifted window) on which candidate and "
                               "champion are also compared; the gate declines a candidate that loses there.")
    slices: list[str] = Field(default_factory=list, description="Columns whose values slice the holdout: metrics "
                              "per value for candidate and champion (numeric columns: quantile bins).")
    slice_bins: int = Field(4, ge=2, le=20, description="Quantile bins a numeric slice column is cut into.")


class SliceGateSpec(_Strict):
    """`gate.min`/`max`/`vs_champion`, applied to every slice of `evaluate.slices` with at least `min_rows` rows."""

    min_rows: int = Field(30, ge=1, description="Smaller slices are reported but not gated.")
    min: dict[str, float] = Field(default_factory=dict)
    max: dict[str, float] = Field(default_factory=dict)
    vs_champion: dict[str, float] = Field(default_factory=dict)

    @field_validator("min", "max", "vs_champion")
    @classmethod
    def _known_metrics(cls, bounds: dict[str, float]) -> dict[str, float]:
        return _not_latency(_known(bounds), "a slice")

    @property
    def rules(self) -> bool:
        return bool(self.min or self.max or self.vs_champion)


class GateSpec(_Strict):
    """The promotion policy.

    `min`/`max` are absolute bounds; `vs_champion` is the loss tolerated against the
    champion re-scored on the same holdout, per metric, in that metric's own direction.
    An empty `vs_champion` means the task's primary metric with tolerance 0.
    """

    min: dict[str, float] = Field(default_factory=dict)
    max: dict[str, float] = Field(default_factory=dict)
    vs_champion: dict[str, float] = Field(default_factory=dict)
    on_no_champion: Literal["promote", "reject"] = "promote"
    require_baseline: bool = Field(True, description="Candidate must beat the `baseline` model on the holdout.")
    baseline: Literal["majority", "linear", "gbm"] = Field(
        "majority", description="The model every candidate must beat on the holdout, besides the champion: the "
        "majority class (the mean), or a logistic/ridge or HistGradientBoosting model fitted on the train split.")
    slices: SliceGateSpec = Field(default_factory=SliceGateSpec)

    @field_validator("min", "max", "vs_champion")
    @classmethod
    def _known_metrics(cls, bounds: dict[str, float]) -> dict[str, float]:
        return _known(bounds)

    @field_validator("vs_champion")
    @classmethod
    def _compared_metrics(cls, bounds: dict[str, float]) -> dict[str, float]:
        return _not_latency(bounds, "the champion")


def _not_latency(bounds: dict[str, float], where: str) -> dict[str, float]:
    """Latency is timed once, for the candidate on the whole holdout: a rule that needs it for {where} could
    never pass, and would block every promotion."""
    for name in bounds:
        if name in LATENCY_METRICS:
            raise ValueError(f"{name} is measured for the candidate on the whole holdout only, not for {where}; "
                             "bound it with gate.max")
    return bounds


def _known(bounds: dict[str, float]) -> dict[str, float]:
    for name in bounds:
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r}{_suggest(name, METRICS)}")
    return bounds


class DriftSpec(_Strict):
    """How `driftloop drift` decides and retrains; stored with the model, so a check uses the model's own policy."""

    p_val: float = Field(0.05, gt=0, lt=1, description="Significance level before the multiple-testing correction.")
    correction: Literal["bonferroni", "fdr"] = "bonferroni"
    min_samples: int = Field(100, ge=1, description="Non-missing values a feature needs in each table to be tested.")
    time_columns: list[str] | None = Field(
        None, description="Columns reported as a time range instead of tested for drift (time moving forward is not "
        "drift). Unset: inferred, the year of date columns and integer columns named like a year with values in "
        "1900..2100 (date columns' month, weekday, day of year and hour are tested either way). A list names them all: "
        "list a column to add it, leave an inferred one out to test it; [] tests every column.")
    cooldown: str = Field("6h", description="Least time between two retrains of the model, e.g. 30m, 6h, 1d, 0.")
    retrain_data: Literal["current", "reference+current"] = "reference+current"
    window_holdout: float = Field(0.3, gt=0, lt=1, description="Share of the current rows kept out of the retrain "
                                  "to compare candidate and champion on the drifted window.")

    @field_validator("cooldown")
    @classmethod
    def _duration(cls, value: str) -> str:
        from driftloop.durations import parse_duration

        parse_duration(value)
        return value

    @field_validator("time_columns")
    @classmethod
    def _distinct_names(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            twice = sorted({c for c in value if value.count(c) > 1})
            if twice:
                raise ValueError(f"lists {twice[0]!r} twice")
            if any(not c for c in value):
                raise ValueError("lists an empty column name")
        return value


class RegistrySpec(_Strict):
    model_name: str | None = Field(None, description="Registered model name; defaults to the data file's stem.")


class ServingSpec(_Strict):
    """Serving targets the deploy step rolls onto a promoted version (servers also follow the alias themselves)."""

    reload_urls: list[str] = Field(default_factory=list, description="`driftloop serve` base URLs to POST /admin/reload.")
    deployment: str | None = Field(None, description="Kubernetes Deployment ([namespace/]name) to roll onto the version.")


class TrackingSpec(_Strict):
    uri: str | None = Field(None, description="MLflow tracking URI; MLFLOW_TRACKING_URI, then a local SQLite store.")
    experiment: str | None = Field(None, description="MLflow experiment; defaults to the model name.")


class Spec(_Strict):
    """A whole pipeline run."""

    data: DataSpec
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    feature: FeatureSpec = Field(default_factory=FeatureSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    evaluate: EvaluateSpec = Field(default_factory=EvaluateSpec)
    gate: GateSpec = Field(default_factory=GateSpec)
    drift: DriftSpec = Field(default_factory=DriftSpec)
    registry: RegistrySpec = Field(default_factory=RegistrySpec)
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    serving: ServingSpec = Field(default_factory=ServingSpec)
    output: str | None = Field(None, description="Local directory or s3:// prefix for step outputs; on KFP, "
                               "`driftloop submit` makes it the run's pipeline root (a value set in the KFP UI is "
                               "not used: a run's root is fixed when it is created).")

    @model_validator(mode="after")
    def _target_not_a_feature(self) -> Spec:
        for field in ("numeric", "categorical"):
            listed = getattr(self.feature, field) or []
            if self.data.target in listed:
                raise ValueError(f"feature.{field} lists the target column {self.data.target!r}")
        if self.gate.slices.rules and not self.evaluate.slices:
            raise ValueError("gate.slices sets rules but evaluate.slices names no column to slice by")
        return self

    @property
    def model_name(self) -> str:
        return self.registry.model_name or default_model_name(self.data.path)

    def digest(self) -> str:
        """Content hash of the resolved spec, for lineage tags.

        A local `data.path` counts as the file it names: `--data customers.csv` and the spec `init` wrote
        (`../customers.csv`, read next to the spec) are one spec, and a rerun of either trains nothing.
        """
        dumped = self.model_dump(mode="json")
        if "://" not in dumped["data"]["path"]:
            dumped["data"]["path"] = str(Path(dumped["data"]["path"]).expanduser().resolve())
        canonical = json.dumps(dumped, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def to_yaml(self) -> str:
        """The spec as `driftloop run --spec` reads it: block YAML, sections in declaration order.

        Section by section, each dumped once per distinct content (a block mapping's text is the
        concatenation of its entries'): the operator renders one spec per resource, and across a
        burst of them most sections are the same defaults, whose dump (PyYAML's representer, in
        Python even with libyaml's emitter) was most of a resource's CPU before its Job.
        """
        parts = []
        for key, value in self.model_dump(mode="json").items():
            signature = json.dumps([key, value])  # the dump's whole input: equal signature, equal text
            text = _SECTION_YAML.get(signature)
            if text is None:
                text = _dump_yaml({key: value})
                if len(_SECTION_YAML) >= _SECTION_YAML_MAX:
                    _SECTION_YAML.clear()  # bounded: a long-running operator sees unboundedly many specs
                _SECTION_YAML[signature] = text
            parts.append(text)
        return "".join(parts)


_SECTION_YAML: dict[str, str] = {}
_SECTION_YAML_MAX = 1024


def _dump_yaml(data: dict[str, Any]) -> str:
    import yaml

    # libyaml's emitter when present: the same text, 5x faster than PyYAML's own
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=False)


# The spec's top-level sections, in declaration order: the one list every runner and
# the KFP pipeline parameters derive from.
SECTIONS: tuple[str, ...] = tuple(Spec.model_fields)


def default_model_name(data_path: str) -> str:
    """`s3://b/x/customers.csv` (or `customers.csv.gz`) → `customers`."""
    from driftloop.storage import plain_name

    return Path(plain_name(data_path.rstrip("/").rsplit("/", 1)[-1])).stem or "model"


def load_spec(path: str | None = None, *, data: str | None = None, target: str | None = None,
              overrides: list[str] | None = None) -> Spec:
    """Build the spec from a YAML file and/or `--data/--target`, then `--set key=value` overrides.

    Raises:
        InvalidSpec: with the dotted key path and the nearest valid name.
    """
    import yaml

    raw: dict[str, Any] = {}
    source = path or "command line"
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise InvalidSpec(f"{path}: cannot read spec file ({e.strerror})") from e
        except UnicodeDecodeError as e:
            raise InvalidSpec(f"{path}: not UTF-8 text (byte {e.start}); save the spec file as UTF-8") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise InvalidSpec(f"{_yaml_where(path, e)}: not valid YAML: {_yaml_problem(e)}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise InvalidSpec(f"{path}: expected a mapping at the top level, got {type(loaded).__name__}")
        raw = loaded
        _resolve_data_path(raw, Path(path).parent)
        _resolve_module_path(raw, Path(path).parent)
    if data is not None:
        raw.setdefault("data", {})["path"] = data
    if target is not None:
        raw.setdefault("data", {})["target"] = target
    for item in overrides or []:
        apply_override(raw, item)
    _embed_module_source(raw, source)
    return validate_spec(raw, source=source)


def _resolve_data_path(raw: dict[str, Any], spec_dir: Path) -> None:
    """A relative local `data.path` in a spec file means next to the spec file, wherever the command runs."""
    data = raw.get("data")
    if isinstance(data, dict) and isinstance(data.get("path"), str):
        location = data["path"]
        if location and "://" not in location and not Path(location).expanduser().is_absolute():
            data["path"] = str((spec_dir / location).resolve())


def module_reference(value: str) -> tuple[str, str, bool]:
    """`train.module` → (file path or module name, function name, whether it names a .py file).

    Example:
        >>> module_reference("models/net.py:build")
        ('models/net.py', 'build', True)
    """
    where, _, function = value.rpartition(":")
    return where, function, where.endswith(".py")


def _resolve_module_path(raw: dict[str, Any], spec_dir: Path) -> None:
    """A relative `train.module` file in a spec file means next to the spec file, as `data.path` does."""
    train = raw.get("train")
    if isinstance(train, dict) and isinstance(train.get("module"), str) and ":" in train["module"]:
        where, function, is_file = module_reference(train["module"])
        if is_file and not Path(where).expanduser().is_absolute():
            train["module"] = f"{(spec_dir / where).resolve()}:{function}"


def _embed_module_source(raw: dict[str, Any], source: str) -> None:
    """Read `train.module`'s .py file into `train.module_source`, so the one file travels with the spec
    (KFP parameters, the Job's pod template, the run's spec.yaml) and an edit to it changes the spec's digest.

    A spec that already carries the source (one recorded by a run) keeps it when the file is not here.
    """
    train = raw.get("train")
    if not (isinstance(train, dict) and isinstance(train.get("module"), str) and ":" in train["module"]):
        return
    where, function, is_file = module_reference(train["module"])
    if not is_file:
        return
    path = Path(where).expanduser().resolve()
    if path.is_file():
        train["module"] = f"{path}:{function}"
        train["module_source"] = path.read_text(encoding="utf-8")
    elif not train.get("module_source"):
        raise InvalidSpec(f"{source}: train.module: no file {str(path)!r}; expected PATH.py:FUNCTION with PATH "
                          f"relative to the spec file (or to the working directory for --set)")


def validate_spec(raw: dict[str, Any], *, source: str = "spec") -> Spec:
    try:
        return Spec.model_validate(raw)
    except ValidationError as e:
        raise InvalidSpec(f"{source}: {_describe(e)}") from None


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one `--set KEY=VALUE` to the raw spec mapping, checking each key against the spec model.

    Raises:
        InvalidSpec: an unknown key (with the nearest valid name), or KEY=VALUE malformed.
    """
    import yaml

    key, sep, value = item.partition("=")
    if not sep or not key:
        raise InvalidSpec(f"--set {item!r}: expected KEY=VALUE, e.g. train.epochs=30")
    parts = key.strip().split(".")
    model: type[BaseModel] | None = Spec
    node = raw
    for i, part in enumerate(parts):
        fields = model.model_fields if model is not None else None
        if fields is not None and part not in fields:
            where = ".".join(parts[: i + 1])
            raise InvalidSpec(f"--set {where}: unknown key{_suggest(part, list(fields))}")
        last = i == len(parts) - 1
        if last:
            try:
                node[part] = yaml.safe_load(value) if value.strip() else None
            except yaml.YAMLError as e:
                raise InvalidSpec(f"--set {key.strip()}: not valid YAML: {_yaml_problem(e)} "
                                  f"(in {value!r}; quote the value to keep it as text)") from None
            break
        annotation = fields[part].annotation if fields is not None else None
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise InvalidSpec(f"--set {'.'.join(parts[: i + 1])}: is not a section")
        node = child


def _yaml_where(path: str, error: Exception) -> str:
    """`path:line:column` of a YAML error (1-based, as editors count), or `path` when it has no position."""
    mark = getattr(error, "problem_mark", None)
    return f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path


def _yaml_problem(error: Exception) -> str:
    """What a YAML parser said, in one line: its problem, else its first line."""
    problem = getattr(error, "problem", None)
    return str(problem) if problem else (str(error).splitlines() or ["unreadable"])[0]


def _describe(error: ValidationError) -> str:
    """The first problem, as `key.path: what (did you mean …)`."""
    first = error.errors()[0]
    loc = [str(p) for p in first["loc"]]
    where = ".".join(loc) or "(top level)"
    if first["type"] == "extra_forbidden":
        valid = _fields_at(loc[:-1])
        return f"{where}: unknown key{_suggest(loc[-1], valid)}"
    if first["type"] == "missing":
        return f"{where}: required key is missing"
    message = first["msg"].removeprefix("Value error, ")
    got = first.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"{where}: {message}{shown}"


def _fields_at(loc: list[str]) -> list[str]:
    model: Any = Spec
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return []
        model = model.model_fields[part].annotation
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _suggest(name: str, valid: list[str] | tuple[str, ...]) -> str:
    close = nearest(name, valid, cutoff=0.5)
    if close:
        return f"; did you mean {close!r}?"
    if valid:
        return f"; valid keys: {', '.join(valid)}"
    return ""
