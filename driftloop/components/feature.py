"""feature: fit the preprocessing (impute, scale, encode) and split deterministically.

Writes the raw (canonical) splits, the fitted ColumnTransformer, and a small JSON
describing columns, task and classes. The transform is later folded into the ONNX
model, so serving takes raw rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.components.columns import ColumnRoles, canonical_frame, explain_task, python_value, with_calendar
from driftloop.constants import FEATURE_META_FILE, SPLITS, TRANSFORM_FILE
from driftloop.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from driftloop.components.context import RunContext
    from driftloop.mlflow_gateway import ModelVersion
    from driftloop.spec import FeatureSpec
    from driftloop.table import LoadedTable

REFERENCE_FILE = "reference.parquet"


@dataclass(frozen=True)
class FeatureResult:
    out_dir: Path
    task: str
    classes: list[Any] | None
    rows: dict[str, int]
    n_features: int
    task_reason: str = ""  # why this task: set in the spec, or what the target looked like
    positive_class: Any = None  # binary tasks: the class the precision/recall/F1/PR-AUC are about
    positive_kept: bool = False  # it is the champion's, kept although this table's minority is the other class

    def split_path(self, split: str) -> Path:
        return self.out_dir / f"{split}.parquet"

    def task_line(self) -> str:
        """What the console says about the task."""
        positive = f"; positive class {self.positive_class!r}" if self.positive_class is not None else ""
        if self.positive_kept:
            positive += " (the champion's, kept although this table's minority is the other class)"
        return f"task: {self.task} ({self.task_reason}){positive}"


def resolve_task(target: pd.Series, task: str, source: str) -> str:
    """`auto` means the task the target's dtype and distinct values suggest (`explain_task`)."""
    return explain_resolved_task(target, task, source)[0]


def explain_resolved_task(target: pd.Series, task: str, source: str) -> tuple[str, str]:
    """(task, why): the spec's task, or the inferred one, checked against the target.

    Raises:
        DataError: a single class, or a regression target that is not numeric.
    """
    import pandas as pd

    reason = "set by data.task"
    if task == "auto":
        task, reason = explain_task(target)
    if task == "classification" and target.nunique() < 2:
        raise DataError(f"{source}: target {target.name!r} has a single class ({python_value(target.iloc[0])!r}); "
                        "classification needs at least two")
    if task == "regression" and not pd.api.types.is_numeric_dtype(target):
        raise DataError(f"{source}: target {target.name!r} is not numeric, so it cannot be a regression target")
    return task, reason


def order_classes(classes: list[Any], train_target: pd.Series, positive: Any, source: str, *,
                  kept: Any = None) -> list[Any]:
    """Classes in model output order. Binary: the positive class second, which is what every metric and
    the served probabilities take as positive: `data.positive_class` when given, else `kept` (the champion's
    positive class) while it is still a class, else the minority class of the training split (the sorted
    order's second on a tie). Keeping the champion's means a retrain on data whose minority turned round does
    not swap the served probabilities' columns, or what precision means, from one version to the next.

    Raises:
        DataError: `data.positive_class` is not one of the classes, or the task is not binary.
    """
    if positive is None and kept is not None and len(classes) == 2:
        positive = next((c for c in classes if _same_label(c, kept)), None)
    if positive is not None:
        matches = [c for c in classes if _same_label(c, positive)]
        if len(classes) != 2:
            raise DataError(f"{source}: data.positive_class is for binary targets; target {train_target.name!r} has "
                            f"{len(classes)} classes")
        if not matches:
            raise DataError(f"{source}: data.positive_class {positive!r} is not a class of target "
                            f"{train_target.name!r}; classes are: {', '.join(repr(c) for c in classes)}")
        chosen = matches[0]
    elif len(classes) == 2:
        counts = {c: 0 for c in classes}
        for value, count in train_target.value_counts().items():
            counts[python_value(value)] = int(count)
        first, second = classes
        chosen = first if counts[first] < counts[second] else second
    else:
        return classes
    return [c for c in classes if c != chosen] + [chosen]


# YAML reads `yes`/`no`/`on`/`off` as booleans: `positive_class: yes` means the text label "yes" too
_YAML_BOOLEANS = {True: {"true", "yes", "y", "on"}, False: {"false", "no", "n", "off"}}


def _same_label(label: Any, given: Any) -> bool:
    """Whether the spec's `positive_class` names `label`: equal, equal as text, or a YAML boolean's spelling."""
    if label == given and type(label) is type(given) or str(label) == str(given):
        return True
    return isinstance(given, bool) and isinstance(label, str) and label.lower() in _YAML_BOOLEANS[given]


def build_transform(roles: ColumnRoles, spec: FeatureSpec, train: pd.DataFrame | None = None) -> Any:
    """Impute and scale the numbers (calendar features included), encode the categories.

    A wide categorical column (over `WIDE_CATEGORIES` distinct values in `train`) is encoded over the
    categories seen at least `spec.min_frequency` times; the rest get the encoding of an unknown category,
    which is the 'other' bucket. It is built from explicit categories rather than scikit-learn's
    `min_frequency` because skl2onnx cannot convert infrequent categories, and this way the served file
    treats a rare category and an unseen one alike without any help from the feed.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, OrdinalEncoder, StandardScaler

    parts = []
    numbers = transform_numeric(roles)
    if numbers:
        numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
        if spec.scaling == "standard":
            numeric_steps.append(("scale", StandardScaler()))
        elif spec.scaling == "minmax":
            numeric_steps.append(("scale", MinMaxScaler()))
        parts.append(("numeric", Pipeline(numeric_steps), numbers))
    if roles.categorical:
        categories: Any = "auto"
        if train is not None and any(_kept(train[c], spec) is not None for c in roles.categorical):
            categories = [_kept(train[c], spec) or sorted(set(train[c].tolist())) for c in roles.categorical]
        if spec.encoding == "onehot":
            encoder: Any = OneHotEncoder(categories=categories, handle_unknown="ignore", sparse_output=False,
                                         dtype="float32")
        else:
            encoder = OrdinalEncoder(categories=categories, handle_unknown="use_encoded_value", unknown_value=-1,
                                     dtype="float32")
        parts.append(("categorical", encoder, roles.categorical))
    return ColumnTransformer(parts, sparse_threshold=0.0)


# Over this many distinct values in the training split, rare categories share the 'other' bucket
WIDE_CATEGORIES = 20


def _kept(filled: pd.Series, spec: FeatureSpec) -> list[str] | None:
    """The categories a wide column keeps (seen at least `min_frequency` times), sorted; None for a narrow one."""
    counts = filled.value_counts()
    if len(counts) <= WIDE_CATEGORIES:
        return None
    kept = sorted(str(v) for v, n in counts.items() if n >= spec.min_frequency)
    return kept or [str(counts.index[0])]  # an encoder needs one category; the commonest stands in


def transform_numeric(roles: ColumnRoles) -> list[str]:
    """The transform's numeric inputs: the numeric columns, then the calendar features of the dates."""
    return roles.numeric + roles.calendar


def transform_input(frame: pd.DataFrame, roles: ColumnRoles) -> pd.DataFrame:
    """Canonical rows as the fitted transform takes them: calendar features added, missing categories ''."""
    return fill_categories(with_calendar(frame, roles), roles)[transform_numeric(roles) + roles.categorical]


def fill_categories(frame: pd.DataFrame, roles: ColumnRoles) -> pd.DataFrame:
    """Missing categories become '' (an unknown category) — the same thing ONNX feeds receive."""
    filled = frame.copy()
    for column in roles.categorical:
        filled[column] = filled[column].map(lambda v: "" if v is None else v)
    return filled


# A regression split needs two rows: r2 (and any spread) of one row is undefined, and a gate judging a 1-row holdout
# could promote on luck (plotly's 3-row medals table split 1/1/1)
MIN_REGRESSION_SPLIT_ROWS = 2


def min_rows_per_class(n_classes: int, spec: FeatureSpec, *, per_split: int | None = None) -> int:
    """The fewest rows per class with which every class can reach train, validation and test splits (each split
    holding at least `per_split` rows, by default one per class)."""
    import math

    rows = 3
    while True:
        n = n_classes * rows
        test = math.ceil(spec.test_size * n)
        val = math.ceil(spec.val_size / (1 - spec.test_size) * (n - test))
        if min(test, val, n - test - val) >= (per_split or n_classes):
            return rows
        rows += 1


def _too_few_rows(target: pd.Series, classes: list[Any] | None, spec: FeatureSpec, source: str) -> str | None:
    """One line naming the minimum, or None when the table splits."""
    if classes is None:
        least = min_rows_per_class(1, spec, per_split=MIN_REGRESSION_SPLIT_ROWS)
        return (None if len(target) >= least else
                f"{source}: {len(target)} rows are too few to split into train, validation and test; "
                f"at least {least} rows are needed")
    least = min_rows_per_class(len(classes), spec)
    counts = target.value_counts()
    if int(counts.min()) >= least:
        return None
    rare = counts[counts < least]
    rare = rare.iloc[sorted(range(len(rare)), key=lambda i: (int(rare.iloc[i]), str(rare.index[i])))]  # fewest first
    fix = _way_to_split(len(classes), int(counts.min()), spec)
    if len(rare) == 1:
        return (f"{source}: too few rows to split: class {python_value(counts.idxmin())!r} of target {target.name!r} "
                f"has {int(counts.min())} rows; with {len(classes)} classes, train, validation and test need at least "
                f"{least} rows per class; {fix}")
    # every one in the line (great_tables' gibraltar named 'Mist' while 'Heavy Rain' and others had one row too)
    shown = ", ".join(f"{python_value(label)!r} ({int(n)})" for label, n in rare.head(10).items())
    more = f" and {len(rare) - 10} more" if len(rare) > 10 else ""
    return (f"{source}: too few rows to split: {len(rare)} classes of target {target.name!r} have fewer than {least} "
            f"rows: {shown}{more}; with {len(classes)} classes, train, validation and test need at least {least} rows "
            f"per class; {fix}")


_HOLDOUT_SIZES = (0.25, 0.3, 0.34, 0.4, 0.45)  # larger test and validation shares, tried in turn


def _way_to_split(n_classes: int, fewest: int, spec: FeatureSpec) -> str:
    """What makes a table with a class of `fewest` rows split: the smallest larger test and validation shares that
    give each split one of its rows (zoo's 101 animals, 4 of them amphibians), else merging or dropping the class."""
    for size in _HOLDOUT_SIZES:
        if size > max(spec.test_size, spec.val_size) and \
                min_rows_per_class(n_classes, spec.model_copy(update={"test_size": size, "val_size": size})) <= fewest:
            return (f"larger holdouts split it (--set feature.test_size={size} --set feature.val_size={size}), or merge "
                    "the rare classes into others")
    return "merge the rare classes into others, or leave their rows out"


def run(frame: pd.DataFrame, *, source: str, roles: ColumnRoles, spec: FeatureSpec, task: str,
        out_dir: Path, positive_class: Any = None, champion_positive: Any = None) -> FeatureResult:
    """Fit the transform on the training split and write splits, transform and metadata to `out_dir`.

    Args:
        champion_positive: the champion's positive class (as MLflow holds it, text), kept when no
            `positive_class` is given and it is still a class (`order_classes`).
    """
    import joblib
    from sklearn.model_selection import train_test_split

    out_dir.mkdir(parents=True, exist_ok=True)
    canonical = canonical_frame(frame, roles)
    task, task_reason = explain_resolved_task(canonical[roles.target], task, source)
    classes = (sorted((python_value(c) for c in canonical[roles.target].unique().tolist()), key=str)
               if task == "classification" else None)
    too_few = _too_few_rows(canonical[roles.target], classes, spec, source)
    if too_few:
        raise DataError(too_few)
    stratify = canonical[roles.target] if classes is not None else None
    try:
        rest, test = train_test_split(canonical, test_size=spec.test_size, random_state=spec.split_seed,
                                      stratify=stratify)
        val_share = spec.val_size / (1 - spec.test_size)
        train, val = train_test_split(rest, test_size=val_share, random_state=spec.split_seed,
                                      stratify=rest[roles.target] if classes is not None else None)
    except ValueError as e:  # a corner `_too_few_rows` did not foresee: still the user's table, not our bug
        raise DataError(f"{source}: {len(canonical)} rows cannot be split into train, validation and test "
                        f"({str(e).splitlines()[0]})") from e
    kept = False
    if classes is not None:
        own = order_classes(classes, train[roles.target], positive_class, source)  # this table's own order
        classes = order_classes(classes, train[roles.target], positive_class, source, kept=champion_positive)
        kept = classes != own
    elif positive_class is not None:
        raise DataError(f"{source}: data.positive_class is for binary targets; target {roles.target!r} is a "
                        f"regression target ({task_reason})")
    positive = classes[1] if classes is not None and len(classes) == 2 else None
    fit_rows = transform_input(train, roles)
    transform = build_transform(roles, spec, fit_rows)
    transform.fit(fit_rows)
    n_features = int(transform.transform(fit_rows.head(2)).shape[1])
    splits = {"train": train, "val": val, "test": test}
    for name in SPLITS:
        splits[name].reset_index(drop=True).to_parquet(out_dir / f"{name}.parquet", index=False)
    if spec.reference_sample_rows:
        sample = frame.sample(n=min(len(frame), spec.reference_sample_rows), random_state=spec.split_seed)
        sample.reset_index(drop=True).to_parquet(out_dir / REFERENCE_FILE, index=False)
    joblib.dump(transform, out_dir / TRANSFORM_FILE)
    meta = {"task": task, "task_reason": task_reason, "classes": classes, "positive_class": positive,
            **roles.to_meta(), "n_features": n_features, "rows": {name: len(part) for name, part in splits.items()}}
    (out_dir / FEATURE_META_FILE).write_text(json.dumps(meta, indent=2, default=python_value), encoding="utf-8")
    return FeatureResult(out_dir, task, classes, meta["rows"], n_features, task_reason, positive, kept)


def load_meta(out_dir: Path) -> dict[str, Any]:
    return json.loads((out_dir / FEATURE_META_FILE).read_text(encoding="utf-8"))


def execute(ctx: RunContext, table: LoadedTable, *, roles_path: Path, out_dir: Path,
            champion: ModelVersion | None = None) -> FeatureResult:
    """Fit the transform and split the run's table; log the feature metadata and the drift reference sample.
    A binary target keeps `champion`'s positive class (its run's `data.positive_class`) unless the spec names one."""
    from driftloop.constants import FEATURES_DIR, PARAM_POSITIVE_CLASS, RUN_TAG_TASK, RUN_TAG_TASK_REASON

    spec = ctx.spec
    kept = None
    if champion is not None and spec.data.positive_class is None:
        kept = ctx.gateway.get_run(champion.run_id).params.get(PARAM_POSITIVE_CLASS)
    outcome = run(table.frame, source=spec.data.path, roles=ColumnRoles.load(roles_path), spec=spec.feature,
                  task=spec.data.task, out_dir=out_dir, positive_class=spec.data.positive_class, champion_positive=kept)
    ctx.tracker.set_tags({RUN_TAG_TASK: outcome.task, RUN_TAG_TASK_REASON: outcome.task_reason})
    if outcome.positive_class is not None:
        ctx.tracker.log_params({PARAM_POSITIVE_CLASS: outcome.positive_class})
    ctx.tracker.log_artifact(out_dir / FEATURE_META_FILE, FEATURES_DIR)
    reference = out_dir / REFERENCE_FILE
    if reference.exists():
        ctx.tracker.log_artifact(reference, "reference")
    return outcome
