"""Metrics per slice of the holdout (`evaluate.slices`): one record per value of each named column.

A model can beat the champion overall and still fail one region or one plan; the slice table
shows it and `gate.slices` can refuse it. Categorical columns slice by value (the
`MAX_VALUES - 1` most frequent, the rest as `(other)`); numeric columns with more distinct
values than `bins` slice by quantile bins of the holdout, labelled with their interval.
Missing values are their own slice, `(missing)`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from driftloop.errors import DataError
from driftloop.suggest import nearest

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

MISSING = "(missing)"
OTHER = "(other)"
MAX_VALUES = 20
# Shown in the Markdown table; every metric is in slices.json and in MLflow.
SHOWN = {"classification": ("accuracy", "f1", "roc_auc"), "regression": ("rmse", "mae", "r2")}

Scorer = Callable[["np.ndarray"], dict[str, float]]  # a boolean row mask -> that slice's metrics


def slice_masks(rows: pd.DataFrame, column: str, *, bins: int) -> list[tuple[str, bool, np.ndarray]]:
    """(label, binned, mask) per slice of `column`, largest categorical slices first, bins in order."""
    import pandas as pd

    values = rows[column]
    missing = values.isna().to_numpy()
    present = values[~missing]
    out: list[tuple[str, bool, np.ndarray]] = []
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values) \
            and present.nunique() > bins:
        binned = pd.qcut(values, q=bins, duplicates="drop")
        for interval in binned.cat.categories:
            out.append((f"({interval.left:.4g}, {interval.right:.4g}]", True, (binned == interval).to_numpy()))
    else:
        labels = values.map(str)
        counts = labels[~missing].value_counts()
        kept = list(counts.index[:MAX_VALUES - 1]) if len(counts) > MAX_VALUES else list(counts.index)
        for label in kept:
            out.append((label, False, (labels == label).to_numpy() & ~missing))
        rest = ~missing & ~labels.isin(kept).to_numpy()
        if rest.any():
            out.append((OTHER, False, rest))
    if missing.any():
        out.append((MISSING, False, missing))
    return out


def check_columns(columns: list[str], available: list[str]) -> None:
    """Raises DataError naming the first slice column the holdout does not have."""
    for column in columns:
        if column not in available:
            close = nearest(column, available)
            hint = f"; did you mean {close!r}?" if close else f"; columns: {', '.join(available)}"
            raise DataError(f"evaluate.slices: {column!r} is not a column of the holdout (a feature or the "
                            f"target){hint}")


def slice_records(rows: pd.DataFrame, columns: list[str], *, bins: int, candidate: Scorer,
                  champion: Scorer | None) -> list[dict[str, Any]]:
    """One record per slice: column, value (label), key (for metric names), binned, rows, metrics[, champion's]."""
    import warnings

    check_columns(columns, list(rows.columns))
    records = []
    for column in columns:
        keys: set[str] = set()
        for label, binned, mask in slice_masks(rows, column, bins=bins):
            record: dict[str, Any] = {"column": column, "value": label, "key": _unique(metric_key(label), keys),
                                      "binned": binned, "rows": int(mask.sum())}
            with warnings.catch_warnings():  # a one-class slice has no AUC; dropped below, not warned about
                warnings.simplefilter("ignore")
                record["metrics"] = _finite(candidate(mask))
                if champion is not None:
                    record["champion_metrics"] = _finite(champion(mask))
            records.append(record)
    return records


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    import math

    return {k: v for k, v in metrics.items() if math.isfinite(v)}


def metric_key(label: str) -> str:
    """A slice label as MLflow accepts it in a metric name: letters, digits, `_ - .` kept, the rest `_`."""
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", label).strip("_") or "_"


def _unique(key: str, taken: set[str]) -> str:
    """`key`, or `key_2`, `key_3`…: "pro plan" and "pro/plan" both become `pro_plan`, and MLflow would keep
    whichever was logged last under that name."""
    unique, n = key, 1
    while unique in taken:
        n += 1
        unique = f"{key}_{n}"
    taken.add(unique)
    return unique


def slice_metrics(records: list[dict[str, Any]]) -> dict[str, float]:
    """`slice.<column>.<value>.<metric>` and `champion_slice.…` for MLflow."""
    out: dict[str, float] = {}
    for record in records:
        where = f"{metric_key(record['column'])}.{record['key']}"
        out |= {f"slice.{where}.{k}": v for k, v in record["metrics"].items()}
        out |= {f"champion_slice.{where}.{k}": v for k, v in record.get("champion_metrics", {}).items()}
        out[f"slice.{where}.rows"] = float(record["rows"])
    return out


def slices_markdown(records: list[dict[str, Any]], task: str, *, champion_version: str | None,
                    min_rows: int | None = None) -> str:
    """The slice table as Markdown: candidate (champion) per shown metric."""
    if not records:
        return "# Slices\n\nNo slices: name columns in `evaluate.slices`.\n"
    shown = SHOWN[task]
    against = f" (champion v{champion_version})" if champion_version else ""
    lines = ["# Slices", "", f"Metrics per slice of the holdout: candidate{against}. Numeric columns are cut into "
             "quantile bins of the holdout." + (f" Slices under {min_rows} rows are reported, not gated."
                                                 if min_rows else ""), "",
             "| column | value | rows | " + " | ".join(shown) + " |", "| --- | --- | ---: |" + " ---: |" * len(shown)]
    for record in records:
        cells = [_pair(record["metrics"].get(m), record.get("champion_metrics", {}).get(m), bool(against))
                 for m in shown]
        small = " (small)" if min_rows and record["rows"] < min_rows else ""
        column, value = (str(record[k]).replace("|", "\\|") for k in ("column", "value"))
        lines.append(f"| {column} | {value} | {record['rows']}{small} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _pair(ours: float | None, theirs: float | None, with_champion: bool) -> str:
    cell = "-" if ours is None else f"{ours:.4f}"
    if with_champion:
        cell += " (-)" if theirs is None else f" ({theirs:.4f})"
    return cell
