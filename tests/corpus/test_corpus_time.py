"""A champion's date column in a drift check: tested on its calendar features, its year reported as time.

Reuses the session's penguins_raw champion (trained once for the corpus tests): the check reads the
model's roles (`Date Egg` → year, month, weekday, day of year) and reference sample from MLflow.
The current window is the same nests 28 years on, when the calendar repeats (each date keeps its
month, day of year and weekday), so every date is new but the seasons are the same: no drift,
and the range is reported. A shift of a few days would rightly drift: the nests cluster in three
weeks of November, and the model sees the day of year.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pandas as pd
import pytest

from .conftest import CorpusRun

pytestmark = pytest.mark.slow


def test_a_champion_s_dates_moving_on_are_time_not_drift(corpus_run: Callable[[str], CorpusRun]) -> None:
    run = corpus_run("penguins_raw")
    current = run.table.frame()
    dates = pd.to_datetime(current["Date Egg"]) + pd.DateOffset(years=28)
    current["Date Egg"] = dates.dt.strftime("%Y-%m-%d")
    current.to_csv(run.cwd / "28_years_on.csv", index=False, na_rep=run.table.na_rep)

    check = run.cli("drift", "--model", run.model, "--current", "28_years_on.csv", "--json", "time.json")
    assert check.returncode == 0, check.stderr[-3000:]  # 0: no drift, so no retrain either
    report = json.loads((run.cwd / "time.json").read_text(encoding="utf-8"))
    [egg] = report["time_columns"]
    assert egg["name"] == "Date Egg" and egg["kind"] == "date" and egg["extrapolates"]
    assert egg["note"] == (f"reference 2007-11-09..2009-12-01, current {dates.min():%Y-%m-%d}..{dates.max():%Y-%m-%d} "
                           "(time moves forward; the model extrapolates in year)")
    tested = {f["name"] for f in report["features"]}
    assert {"Date Egg__month", "Date Egg__weekday", "Date Egg__dayofyear"} <= tested and "Date Egg__year" not in tested
    assert "time column Date Egg: reference 2007-11-09..2009-12-01" in check.stderr
