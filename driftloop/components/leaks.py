"""Features that give the target away: a copy of the target under another name kept in the table.

Public tables carry them (scikit-survival's `gbsg2` with its event flag copied, `veterans` with the survival days
twice), and so do exports that join the outcome back onto the inputs. The model learns the copy, the holdout score
is near perfect, the gate passes, and the rows to score in production will not have it. Found here, before
training, and said as a warning naming the column: it may be meant (a check of the pipeline itself).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from driftloop.components.columns import ColumnRoles

# A number column is the target in other units (days and weeks, dollars and thousands) when a line through them
# misses no row by more than float rounding: relative to the target's size. A lag of a smooth series or a running
# total is close to a line (r over 0.99999) but misses rows by whole units.
SAME_NUMBERS_TOLERANCE = 1e-9


def target_copies(canonical: pd.DataFrame, roles: ColumnRoles, task: str,
                  champion_features: list[str] | None = None) -> list[str]:
    """One line per column that is the target in disguise, on the canonical training rows: each feature that is,
    and each column the champion used (`champion_features`) that is and this run leaves out, since the gate then
    weighs the candidate against a score that copy made.

    A classification target's copy matches it one to one (each value of the column goes with one class and each
    class with one value: `event` True/False beside `cens` 1/0); a regression target's copy is a number column in
    exact linear relation with it.
    """
    from driftloop.components.gate import primary_metric

    left_out = [c for c in champion_features or [] if c not in roles.features and c in canonical.columns]
    # a regression's features: its numbers (a category's text is no line); for a class, any column
    features = roles.features if task == "classification" else roles.numeric
    found = copies(canonical, roles.target, task, [*features, *left_out])
    lines = [f"column {c!r} matches the target {roles.target!r} in every row (a copy of it under another name); rows "
             f"scored later will not have it, and a model that learns it scores well only on paper: feature.roles "
             f"{{{c!r}: drop}} leaves it out" for c in found if c in roles.features]
    metric = primary_metric(task)
    lines += [f"@champion learned column {c!r}, a copy of the target {roles.target!r}, which this run leaves out: the "
              f"gate compares with a score that copy made; --set 'gate.vs_champion={{{metric}: .inf}}' lets this run's "
              f"own merit decide" for c in found if c in left_out]
    return lines


def copies(canonical: pd.DataFrame, target_column: str, task: str, columns: list[str]) -> list[str]:
    """The `columns` that are `target_column` in disguise (see `target_copies`)."""
    import numpy as np
    import pandas as pd

    target = canonical[target_column]
    found = []
    if task == "classification":
        labels, kinds = pd.factorize(target, use_na_sentinel=False)
        classes = len(kinds)
        for column in columns:
            codes, levels = pd.factorize(canonical[column], use_na_sentinel=False)
            if classes < 2 or len(levels) != classes:  # a cheap test that rules most out
                continue
            if np.unique(codes.astype(np.int64) * classes + labels).size == classes:  # each value goes with one class
                found.append(column)
    elif pd.api.types.is_numeric_dtype(target) and not pd.api.types.is_bool_dtype(target):
        # (a target of text is the feature step's error to give, in its words); a column left out is kept as text:
        # numbers in every row that has a value, or it is no number column
        y = target.to_numpy("float64")
        for column in columns:
            values = canonical[column]
            numbers = pd.to_numeric(values, errors="coerce")
            if numbers.isna().sum() == values.isna().sum() and _on_one_line(numbers.to_numpy("float64"), y):
                found.append(column)
    return found


def _on_one_line(x: np.ndarray, y: np.ndarray) -> bool:
    """y = a·x + b in every row where both are present (a ≠ 0), to float rounding."""
    import numpy as np

    both = ~(np.isnan(x) | np.isnan(y))
    x, y = x[both], y[both]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return False
    slope, intercept = np.polyfit(x, y, 1)
    return bool(np.abs(y - (slope * x + intercept)).max() <= SAME_NUMBERS_TOLERANCE * np.abs(y).max())
