"""How a re-profiled expectation suite differs from the champion's: categories, ranges, null shares.

A drift-triggered retrain profiles its suite from the data it trains on; this is the record
of what that changed, kept with the run (`suite_changes.json`) and shown in the drift report,
so a widened contract is never silent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

IN_SET = "expect_column_values_to_be_in_set"
BETWEEN = "expect_column_values_to_be_between"
NOT_NULL = "expect_column_values_to_not_be_null"
COLUMN_SET = "expect_table_columns_to_match_set"


@dataclass(frozen=True)
class SuiteChanges:
    """Per column: categories added or removed, range from/to, allowed null share from/to."""

    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    columns_added: list[str] = field(default_factory=list)
    columns_removed: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.columns or self.columns_added or self.columns_removed)

    def rows(self) -> list[tuple[str, str]]:
        """(column, what changed) per changed column; the table part of the drift report."""
        out = [(name, describe_column(change)) for name, change in self.columns.items()]
        if self.columns_added:
            out.append(("(columns added)", ", ".join(self.columns_added)))
        if self.columns_removed:
            out.append(("(columns removed)", ", ".join(self.columns_removed)))
        return out

    def lines(self) -> list[str]:
        """One short line per changed column, for the console."""
        return [f"{column}: {what}" for column, what in self.rows()]

    def to_json(self) -> dict[str, Any]:
        return {"columns": self.columns, "columns_added": self.columns_added,
                "columns_removed": self.columns_removed, "rows": [list(r) for r in self.rows()]}


def suite_changes(old: dict[str, Any], new: dict[str, Any]) -> SuiteChanges:
    """What `new` allows that `old` did not (and the reverse), column by column.

    Example:
        >>> suite_changes(champion_suite, retrain_suite).lines()
        ["plan: categories added: gold", "tenure_months: range 0…72 → 0…96"]
    """
    before, after = _index(old), _index(new)
    columns: dict[str, dict[str, Any]] = {}
    for column in dict.fromkeys([c for _, c in before] + [c for _, c in after]):
        if column is None:
            continue
        change = _column_change(before, after, column)
        if change:
            columns[column] = change
    old_set, new_set = _column_set(before), _column_set(after)
    return SuiteChanges(columns, [c for c in new_set if c not in old_set], [c for c in old_set if c not in new_set])


def describe_column(change: dict[str, Any]) -> str:
    parts = []
    if change.get("categories_added"):
        parts.append(f"categories added: {', '.join(map(str, change['categories_added']))}")
    if change.get("categories_removed"):
        parts.append(f"categories removed: {', '.join(map(str, change['categories_removed']))}")
    if "range" in change:
        (lo, hi), (new_lo, new_hi) = change["range"]["from"], change["range"]["to"]
        what = "values" if change["range"].get("observed") else "range"
        how = "widened" if change["range"].get("widened") else "narrowed"
        parts.append(f"{what} {how} {_num(lo)}…{_num(hi)} → {_num(new_lo)}…{_num(new_hi)}")
    if "null_share" in change:
        parts.append(f"allowed null share {_num(change['null_share']['from'])} → {_num(change['null_share']['to'])}")
    return "; ".join(parts)


def _index(suite: dict[str, Any]) -> dict[tuple[str, str | None], dict[str, Any]]:
    return {(e["type"], e.get("kwargs", {}).get("column")): e for e in suite.get("expectations", [])}


def _column_set(index: dict[tuple[str, str | None], dict[str, Any]]) -> list[str]:
    expectation = index.get((COLUMN_SET, None))
    return list(expectation["kwargs"].get("column_set", [])) if expectation else []


def _column_change(before: dict[tuple[str, str | None], dict[str, Any]],
                   after: dict[tuple[str, str | None], dict[str, Any]], column: str) -> dict[str, Any]:
    change: dict[str, Any] = {}
    old_set, new_set = before.get((IN_SET, column)), after.get((IN_SET, column))
    if old_set and new_set:
        old_values, new_values = set(old_set["kwargs"]["value_set"]), set(new_set["kwargs"]["value_set"])
        if new_values - old_values:
            change["categories_added"] = sorted(new_values - old_values, key=str)
        if old_values - new_values:
            change["categories_removed"] = sorted(old_values - new_values, key=str)
    old_between, new_between = before.get((BETWEEN, column)), after.get((BETWEEN, column))
    if old_between and new_between:
        # the observed values when both profiles kept them: what a reader knows; else the enforced bounds
        observed = all({"observed_min", "observed_max"} <= (e.get("meta") or {}).keys() for e in (old_between, new_between))
        old_range, new_range = _bounds(old_between, observed), _bounds(new_between, observed)
        if old_range != new_range:
            change["range"] = {"from": list(old_range), "to": list(new_range), "observed": observed,
                               "widened": _outside(new_range, old_range)}
    old_null, new_null = _null_share(before, column), _null_share(after, column)
    if old_null is not None and new_null is not None and abs(old_null - new_null) > 1e-9:
        change["null_share"] = {"from": old_null, "to": new_null}
    return change


def _bounds(expectation: dict[str, Any], observed: bool) -> tuple[float | None, float | None]:
    if observed:
        return expectation["meta"]["observed_min"], expectation["meta"]["observed_max"]
    kwargs = expectation["kwargs"]
    return kwargs.get("min_value"), kwargs.get("max_value")


def _outside(new: tuple[float | None, float | None], old: tuple[float | None, float | None]) -> bool:
    """Whether the new range reaches past the old one on either side."""
    lo_wider = new[0] is None and old[0] is not None or (None not in (new[0], old[0]) and new[0] < old[0])  # type: ignore[operator]
    hi_wider = new[1] is None and old[1] is not None or (None not in (new[1], old[1]) and new[1] > old[1])  # type: ignore[operator]
    return bool(lo_wider or hi_wider)


def _null_share(index: dict[tuple[str, str | None], dict[str, Any]], column: str) -> float | None:
    """The share of nulls the suite tolerates in `column` (0 when it expects none), None when it says nothing."""
    expectation = index.get((NOT_NULL, column))
    if expectation is None:
        return None
    mostly = expectation["kwargs"].get("mostly")
    return round(1 - float(mostly), 4) if mostly is not None else 0.0


def _num(value: float | None) -> str:
    return "unbounded" if value is None else f"{value:.4g}"
