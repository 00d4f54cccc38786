"""Column roles (numeric, categorical, boolean, datetime) and the canonical in-memory form of each role.

Every consumer (validation, feature fitting, ONNX feeds, serving) converts a raw table
through `canonical_frame`, so a category is always a Python str and a missing one None.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.canonical import as_numbers, boolean_text, calendar_name, calendar_parts, category_text
from driftloop.dates import ISO, written
from driftloop.suggest import nearest

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class ColumnRoles:
    """The columns a model takes, by role. `categorical` includes the `boolean` ones (read as 'True'/'False');
    a `datetime` column enters as its date text, in the format `date_formats[column]` names (ISO when absent),
    and becomes the numeric calendar features `datetime[column]` names; `parsed` notes the numeric columns that arrive as text ("3,750", "12%"); `table` is the roles
    table shown before training (column, role, why), dropped columns included."""

    target: str
    numeric: list[str]
    categorical: list[str]
    boolean: list[str] = field(default_factory=list)
    datetime: dict[str, list[str]] = field(default_factory=dict)
    parsed: dict[str, str] = field(default_factory=dict)
    table: list[dict[str, str]] = field(default_factory=list)
    # columns of the training table the model leaves out (id, constant, dropped): rows may still carry them
    ignored: list[str] = field(default_factory=list)
    date_formats: dict[str, str] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        """The raw columns a row must have."""
        return self.numeric + list(self.datetime) + self.categorical

    @property
    def calendar(self) -> list[str]:
        """The numeric inputs computed from the datetime columns, in the model's input order."""
        return [calendar_name(column, part) for column, parts in self.datetime.items() for part in parts]

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> ColumnRoles:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ColumnRoles:
        """From `save`'s JSON, a feature step's metadata or a suite's meta (older ones lack the newer roles)."""
        return cls(target=data["target"], numeric=list(data["numeric"]), categorical=list(data["categorical"]),
                   boolean=list(data.get("boolean") or []), datetime=dict(data.get("datetime") or {}),
                   parsed=dict(data.get("parsed") or {}), table=list(data.get("table") or []),
                   ignored=list(data.get("ignored") or []), date_formats=dict(data.get("date_formats") or {}))

    def to_meta(self) -> dict[str, Any]:
        """What the feature metadata and a suite's meta keep (the table stays in the roles artifact)."""
        return {"target": self.target, "numeric": self.numeric, "categorical": self.categorical,
                "boolean": self.boolean, "datetime": self.datetime, "parsed": self.parsed, "ignored": self.ignored,
                "date_formats": self.date_formats}


def canonical_frame(frame: pd.DataFrame, roles: ColumnRoles, *, with_target: bool = True) -> pd.DataFrame:
    """Numbers as float64 (NaN for missing, text like "3,750" parsed), categories as str objects (None for
    missing; booleans as 'True'/'False'), dates as their ISO text (None for missing).

    Raises:
        DataError: a numeric column holds text, naming the column, the value and the row.
    """
    import pandas as pd

    out = {}
    for column in roles.numeric:
        out[column] = as_numbers(frame[column], column)
    for column in roles.datetime:
        fmt = roles.date_formats.get(column, ISO)
        out[column] = pd.Series([_date_text(v, fmt) for v in frame[column].tolist()], index=frame.index, dtype=object)
    boolean = set(roles.boolean)
    for column in roles.categorical:
        values = frame[column].tolist()
        text = ([boolean_text(v) for v in values] if column in boolean
                else [None if _missing(v) else category_text(v) for v in values])
        out[column] = pd.Series(text, index=frame.index, dtype=object)
    for column in roles.ignored:
        # unused by this model, but kept as text in the splits: a champion that used the column (before an id was
        # dropped, or a role re-set) is still re-scored on the same rows
        if column in frame.columns and column not in out:
            out[column] = pd.Series([None if _missing(v) else category_text(v) for v in frame[column].tolist()],
                                    index=frame.index, dtype=object)
    if with_target and roles.target in frame.columns:
        out[roles.target] = frame[roles.target]
    return pd.DataFrame(out, index=frame.index)


def with_calendar(frame: pd.DataFrame, roles: ColumnRoles) -> pd.DataFrame:
    """A canonical frame plus the calendar features of its datetime columns: what the transform is fitted on."""
    import pandas as pd

    if not roles.datetime:
        return frame
    added = {}
    for column, parts in roles.datetime.items():
        fmt = roles.date_formats.get(column, ISO)
        rows = [calendar_parts(v, tuple(parts), fmt) for v in frame[column].tolist()]
        for i, part in enumerate(parts):
            added[calendar_name(column, part)] = pd.Series([r[i] for r in rows], index=frame.index, dtype="float64")
    return pd.concat([frame, pd.DataFrame(added, index=frame.index)], axis=1)


def looks_numeric(series: pd.Series) -> bool:
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


def _date_text(value: object, fmt: str) -> str | None:
    """Date text as written; a date object (a parquet timestamp, a pandas datetime column) written in the
    column's format, which the model file reads."""
    if _missing(value) or value != value:  # NaT
        return None
    if isinstance(value, date):
        return written(value, fmt)
    return str(value).strip()


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


def near_hint(name: str, options: list[str]) -> str:
    close = nearest(name, options)
    return f" (did you mean {close!r}?)" if close else f" (columns: {', '.join(options)})"
