"""Column roles (numeric or categorical) and the canonical in-memory form of each role.

Every consumer (validation, feature fitting, ONNX feeds, serving) converts a raw table
through `canonical_frame`, so a category is always a Python str and a missing one None.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.errors import DataError
from driftloop.suggest import nearest

if TYPE_CHECKING:
    import pandas as pd

    from driftloop.spec import FeatureSpec


@dataclass(frozen=True)
class ColumnRoles:
    target: str
    numeric: list[str]
    categorical: list[str]

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> ColumnRoles:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def infer_roles(frame: pd.DataFrame, target: str, feature: FeatureSpec) -> ColumnRoles:
    """Numeric dtypes are numeric features, everything else categorical, unless the spec lists them."""

    columns = [c for c in frame.columns if c != target and c not in feature.drop]
    for listed in (feature.numeric or []) + (feature.categorical or []) + feature.drop:
        if listed not in frame.columns:
            raise DataError(f"feature spec names column {listed!r}, which the table does not have{_near(listed, list(frame.columns))}")
    numeric = feature.numeric
    categorical = feature.categorical
    if numeric is None:
        numeric = [c for c in columns if c not in (categorical or []) and _looks_numeric(frame[c])]
    if categorical is None:
        categorical = [c for c in columns if c not in numeric]
    if not numeric and not categorical:
        raise DataError(f"no feature columns left besides the target {target!r}")
    return ColumnRoles(target=target, numeric=list(numeric), categorical=list(categorical))


def canonical_frame(frame: pd.DataFrame, roles: ColumnRoles, *, with_target: bool = True) -> pd.DataFrame:
    """Numbers as float64 (NaN for missing), categories as str objects (None for missing).

    Raises:
        DataError: a numeric column holds text, naming the column, the value and the row.
    """
    import pandas as pd

    out = {}
    for column in roles.numeric:
        out[column] = _as_numbers(frame[column], column)
    for column in roles.categorical:
        series = frame[column]
        out[column] = pd.Series(
            [None if _missing(v) else str(v) for v in series.tolist()], index=frame.index, dtype=object)
    if with_target and roles.target in frame.columns:
        out[roles.target] = frame[roles.target]
    return pd.DataFrame(out, index=frame.index)


def _looks_numeric(series: pd.Series) -> bool:
    """Numeric dtype, or text that is mostly numbers (a numeric column with typos in it)."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(series):
        return False
    if pd.api.types.is_numeric_dtype(series):
        return True
    present = series.dropna()
    if present.empty:
        return False
    parsed = pd.to_numeric(present, errors="coerce").notna().mean()
    return bool(parsed >= 0.9)


def _as_numbers(series: pd.Series, column: str) -> pd.Series:
    import pandas as pd

    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.astype("float64")
    coerced = pd.to_numeric(series, errors="coerce")
    bad = series.notna() & coerced.isna()
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise DataError(
            f"column {column!r}: text in a numeric column: {series.iloc[row]!r} at row {row + 2} "
            f"({int(bad.sum())} non-numeric values; expected numbers)")
    return coerced.astype("float64")


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is __import__("pandas").NA


# An integer target is a set of labels when it has few distinct values and each is seen often:
# `quality` 3..8 in 1,599 wines is a grade to classify, a count with 10 values in 10 rows is a quantity.
MAX_CLASSES = 20
MIN_ROWS_PER_LABEL = 10


def infer_task(target: pd.Series) -> str:
    """`classification` or `regression` for a target column; `explain_task` says why."""
    return explain_task(target)[0]


def explain_task(target: pd.Series) -> tuple[str, str]:
    """(task, why) from the target's dtype and its ratio of distinct values to rows.

    Text, booleans and two-valued targets are classes; non-integral numbers are a regression;
    integers are classes when there are at most 20 distinct values and on average at least
    10 rows per value, else a regression.
    """
    import pandas as pd

    present = target.dropna()
    distinct, rows = int(present.nunique()), len(present)
    if pd.api.types.is_bool_dtype(present):
        return "classification", "the target is boolean"
    if not pd.api.types.is_numeric_dtype(present):
        return "classification", f"the target is text ({distinct} distinct labels)"
    if distinct <= 2:
        return "classification", f"the target has {distinct} distinct values"
    if not bool((present == present.round()).all()):
        return "regression", "the target holds non-integral numbers"
    if distinct > MAX_CLASSES:
        return "regression", f"the target has {distinct} distinct integers in {rows} rows (over {MAX_CLASSES})"
    if distinct * MIN_ROWS_PER_LABEL > rows:
        return "regression", (f"the target has {distinct} distinct integers in {rows} rows (fewer than "
                              f"{MIN_ROWS_PER_LABEL} rows per value)")
    return "classification", (f"the target has {distinct} distinct integers in {rows} rows (at most {MAX_CLASSES}, "
                              f"at least {MIN_ROWS_PER_LABEL} rows per value)")


def python_value(value: Any) -> Any:
    """A numpy scalar as the Python value JSON and class lookups expect; other objects as text."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _near(name: str, options: list[str]) -> str:
    close = nearest(name, options)
    return f" (did you mean {close!r}?)" if close else f" (columns: {', '.join(options)})"
