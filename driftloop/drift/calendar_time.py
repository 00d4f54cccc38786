"""A date's seasonal parts compared over the same calendar time, so a short window is no drift.

Which months, days of the year, weekdays and hours a table holds is set first by the dates it spans: a month
of rows is all March, ten days hold two Mondays, and a day's rows all fall in one day of the year. Tested as
they are, a month of undrifted rows against a year of reference "drifts" in its month and day of year (nannyml's
car-loan reference, March 2018 only, against the whole of it: chi2 11,370 and KS 0.70), so a check run on
each day's data would retrain each day.

So each table's span is laid out in calendar units (days; hours for the hour; months when the dates are one day
of each month), each unit counted under its key (its month, weekday, day of year or hour), and each row kept with
the chance that gives its key the share of calendar time it has in the *other* table: min(1, other / own). Keys
only one table's span covers are left out. Both tables then hold their keys in the same shares of calendar
time, and what a test still finds is rows arriving at another rate per unit of that time: drift (more night-time
requests, a summer that now outsells the winter), not the window. Over whole years against whole years nothing
is thinned and the test is the plain one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from driftloop.drift.time_columns import Calendar

_SEED = 20181  # thinning draws: the same tables give the same verdict
_KEYS = 367  # keys are at most a day of the year, 1..366
_KEY_WORDS = {("hour", "hour"): "hour of the day", ("month", "month"): "month", ("month", "dayofyear"): "month",
              ("day", "month"): "month", ("day", "weekday"): "day of the week", ("day", "dayofyear"): "day of the year"}


@dataclass(frozen=True)
class Matched:
    """A part's readable values on each side after matching, and what the matching did ('' when nothing)."""

    reference: np.ndarray
    current: np.ndarray
    note: str


def matched(part: str, reference: Calendar, current: Calendar, *, monthly: bool) -> Matched:
    """`part`'s readable values of each table, thinned to the same shares of calendar time (module docstring).

    Args:
        monthly: the dates are months (`YYYY-MM`, or every reference date one day of its month), so the unit of
            calendar time is the month, keyed by month of the year, not the day.
    """
    import numpy as np

    unit = "hour" if part == "hour" else "month" if monthly else "day"
    ref_values, cur_values = reference.readable(part), current.readable(part)
    ref_units, cur_units = _units(reference, unit), _units(current, unit)
    if len(ref_units) == 0 or len(cur_units) == 0:
        return Matched(ref_values, cur_values, "")
    ref_share, cur_share = _exposure(ref_units, part, unit), _exposure(cur_units, part, unit)
    both = (ref_share > 0) & (cur_share > 0)
    if not both.any():  # the spans share no key: nothing to compare, the test says it has too few rows
        return Matched(ref_values[:0], cur_values[:0], f"the two tables' dates share no {_KEY_WORDS[unit, part]}")
    ref_share, cur_share = ref_share * both / ref_share[both].sum(), cur_share * both / cur_share[both].sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        keep_ref = np.where(both, np.minimum(1.0, cur_share / ref_share), 0.0)
        keep_cur = np.where(both, np.minimum(1.0, ref_share / cur_share), 0.0)
    ref_keys, cur_keys = _keys(ref_units, part, unit), _keys(cur_units, part, unit)
    draws = np.random.default_rng(_SEED)
    ref_kept = draws.random(len(ref_keys)) < keep_ref[ref_keys]
    cur_kept = draws.random(len(cur_keys)) < keep_cur[cur_keys]
    if ref_kept.all() and cur_kept.all():
        return Matched(ref_values, cur_values, "")
    outside = int(np.count_nonzero(~both[cur_keys]))
    note = f"compared over the calendar time both tables span (each {unit}'s rows weighed alike)"
    if outside:
        note += f"; {outside} current row(s) in {unit}s the reference's dates never reach left out"
    return Matched(ref_values[ref_kept], cur_values[cur_kept], note)


def _units(calendar: Calendar, unit: str) -> np.ndarray:
    """Each readable row's calendar unit as an integer: days, hours or months since 1970-01-01."""

    years = calendar.readable("year").astype("int64")
    days = (years - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype("int64") \
        + calendar.readable("dayofyear").astype("int64") - 1
    if unit == "hour":
        return days * 24 + calendar.readable("hour").astype("int64")
    if unit == "month":
        return days.astype("datetime64[D]").astype("datetime64[M]").astype("int64")
    return days


def _keys(units: np.ndarray, part: str, unit: str) -> np.ndarray:
    """The key each unit is counted under: its hour of the day, month of the year, weekday or day of the year."""

    if unit == "hour":
        return units % 24
    if unit == "month":
        return units % 12 + 1
    if part == "weekday":
        return (units + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0, as `date.weekday()`
    days = units.astype("datetime64[D]")
    if part == "month":
        return days.astype("datetime64[M]").astype("int64") % 12 + 1
    return (days - days.astype("datetime64[Y]")).astype("int64") + 1


def _exposure(units: np.ndarray, part: str, unit: str) -> np.ndarray:
    """Each key's share of the calendar units from the table's first to its last."""
    import numpy as np

    span = np.arange(units.min(), units.max() + 1)
    counts = np.bincount(_keys(span, part, unit), minlength=_KEYS).astype("float64")
    return counts / counts.sum()
