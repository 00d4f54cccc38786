"""Features that give the target away: a copy of the target under another name kept in the table.

Public tables carry them (scikit-survival's `gbsg2` with its event flag copied, `veterans` with the survival days
twice), and so do exports that join the outcome back onto the inputs. The model learns the copy, the holdout score
is near perfect, the gate passes, and the rows to score in production will not have it. Found here, before
training, and said as a warning naming the column: it may be meant (a check of the pipeline itself).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from driftloop.components.columns import ColumnRoles

# |Pearson r| at which a number column is the target in other units (days and weeks, dollars and thousands):
# exact up to float rounding, never met by a feature that only predicts it well
SAME_NUMBERS_R = 0.999999


def target_copies(canonical: pd.DataFrame, roles: ColumnRoles, task: str) -> list[str]:
    """One line per feature column that is the target in disguise, on the canonical training rows.

    A classification target's copy matches it one to one (each value of the column goes with one class and each
    class with one value: `event` True/False beside `cens` 1/0); a regression target's copy is a number column in
    exact linear relation with it.
    """
    import numpy as np
    import pandas as pd

    target = canonical[roles.target]
    found = []
    if task == "classification":
        labels, kinds = pd.factorize(target, use_na_sentinel=False)
        classes = len(kinds)
        for column in roles.features:
            codes, levels = pd.factorize(canonical[column], use_na_sentinel=False)
            if classes < 2 or len(levels) != classes:  # a cheap test that rules most out
                continue
            if np.unique(codes.astype(np.int64) * classes + labels).size == classes:  # each value goes with one class
                found.append(column)
    else:
        numbers = canonical[roles.numeric].astype("float64")
        if len(numbers.columns) and float(target.std()) > 0:
            correlation = numbers.corrwith(target.astype("float64")).abs()
            found += [c for c in roles.numeric if correlation[c] >= SAME_NUMBERS_R]
    return [f"column {c!r} matches the target {roles.target!r} in every row (a copy of it under another name); rows "
            f"scored later will not have it, and a model that learns it scores well only on paper: feature.roles "
            f"{{{c!r}: drop}} leaves it out" for c in found]
