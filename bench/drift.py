"""Drift detection: `driftloop.drift.detect.detect` against a plain scipy.stats KS / chi-square loop.

1,000,000 current rows x 20 features (15 numeric, 5 categorical) against a 100,000-row
reference, both pandas DataFrames already in memory. `detect` does everything the report
needs: alibi-detect KSDrift/ChiSquareDrift per feature, the correction, and the per-feature
summaries (mean/std/histogram, category shares). The baseline is the loop a user would write:
`scipy.stats.ks_2samp` on each numeric column, and `chi2_contingency` on aligned
`value_counts` of each categorical column. Imports are done (and one small warm-up call
made) before timing. Goal: ratio = ours / plain <= 1.5. Peak memory of each (tracemalloc,
which sees numpy's buffers) is reported, for information.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from typing import Any

from _common import median, write_result

NAME = "drift"
CURRENT_ROWS = 1_000_000
REFERENCE_ROWS = 100_000
NUMERIC, CATEGORICAL = 15, 5
REPEATS = 3
GOAL_MAX_RATIO = 1.5


def tables(rows: int, seed: int, shift: float) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {f"num{i}": rng.normal(shift if i == 0 else 0.0, 1.0 + 0.1 * i, rows)
                               for i in range(NUMERIC)}
    for i in range(CATEGORICAL):
        levels = np.array([f"level_{j}" for j in range(4 + 3 * i)])
        columns[f"cat{i}"] = levels[rng.integers(0, len(levels), rows)]
    return pd.DataFrame(columns)


def plain_loop(reference: Any, current: Any) -> dict[str, float]:
    """What a user writes without driftloop: one scipy test per column, p-values only."""
    import numpy as np
    import pandas as pd
    from scipy.stats import chi2_contingency, ks_2samp

    p_values = {}
    for i in range(NUMERIC):
        column = f"num{i}"
        p_values[column] = float(ks_2samp(reference[column].to_numpy(), current[column].to_numpy()).pvalue)
    for i in range(CATEGORICAL):
        column = f"cat{i}"
        counts = pd.concat([reference[column].value_counts(), current[column].value_counts()], axis=1).fillna(0)
        p_values[column] = float(chi2_contingency(np.asarray(counts.T, dtype=float))[1])
    return p_values


def ours(reference: Any, current: Any) -> Any:
    from driftloop.components.columns import ColumnRoles
    from driftloop.drift.detect import DriftParams, detect

    roles = ColumnRoles("", [f"num{i}" for i in range(NUMERIC)], [f"cat{i}" for i in range(CATEGORICAL)])
    return detect(reference, current, roles, DriftParams())


def timed(function: Any, reference: Any, current: Any) -> tuple[float, float, Any]:
    """Wall seconds and peak traced MiB of one call."""
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    result = function(reference, current)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak, result


def main() -> None:
    import resource

    reference = tables(REFERENCE_ROWS, seed=1, shift=0.0)
    current = tables(CURRENT_ROWS, seed=2, shift=0.02)
    ours(reference.head(500), current.head(500))  # imports alibi-detect, scipy; not timed
    plain_loop(reference.head(500), current.head(500))
    plain_s, ours_s, plain_mb, ours_mb = [], [], [], []
    report = None
    for _ in range(REPEATS):  # alternate so drifting machine load hits both alike
        seconds, peak, _ = timed(plain_loop, reference, current)
        plain_s.append(round(seconds, 4))
        plain_mb.append(round(peak, 1))
        seconds, peak, report = timed(ours, reference, current)
        ours_s.append(round(seconds, 4))
        ours_mb.append(round(peak, 1))
    plain_p = plain_loop(reference, current)
    agree = {f.name: (f.p_value, plain_p[f.name]) for f in report.features}  # same tests, same p-values
    ratio = median(ours_s) / median(plain_s)
    path = write_result(NAME, {
        "unit": "seconds", "measured": round(median(ours_s), 4), "baseline": round(median(plain_s), 4),
        "ratio": round(ratio, 3), "goal": {"metric": "ratio", "op": "<=", "value": GOAL_MAX_RATIO},
        "passed_goal": ratio <= GOAL_MAX_RATIO,
        "notes": "measured = detect() incl. summaries; baseline = scipy ks_2samp / chi2_contingency loop",
        "current_rows": CURRENT_ROWS, "reference_rows": REFERENCE_ROWS, "numeric": NUMERIC, "categorical": CATEGORICAL,
        "ours_s": ours_s, "plain_s": plain_s, "ours_peak_mib": ours_mb, "plain_peak_mib": plain_mb,
        "process_max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "drifted_features": report.drifted_features,
        "max_p_value_difference": max(abs(a - b) for a, b in agree.values())})
    print(f"{NAME}: ours {median(ours_s):.2f}s vs plain {median(plain_s):.2f}s, ratio {ratio:.2f} "
          f"(goal <= {GOAL_MAX_RATIO}); peak {median(ours_mb):.0f} vs {median(plain_mb):.0f} MiB -> {path}")


if __name__ == "__main__":
    main()
