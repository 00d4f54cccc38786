"""A date's seasonal parts compared over the same calendar time, so a short window is no drift.

Which months, days of the year and weekdays a table holds is set first by the dates it spans: a month of rows is
all March, ten days hold two Mondays, a day's rows fall in one day of the year. Tested as they are, a month of
undrifted rows against a year of reference "drifts" in its month and day of year (nannyml's car-loan reference,
March 2018 only, against the whole of it: chi2 11,370 and KS 0.70), so a check run on each day's data would
retrain each day. So:

- **month and day of year** are tested only when the current dates reach every month of a year: over less, which
  of them a window holds is the window's doing (and, for business-day data, which days of it fell on a weekend that year).
  The note says how long the span is, and how many current rows fall in months the reference never holds, where
  the model extrapolates.
- **weekday and hour** (and month and day of year over a year) are compared over the same calendar time: each
  table's span is laid out in hours (days, for dates without a time of day; months, for dates on one day of each
  month), each counted under its key, and each row kept with the chance that gives its key the share of calendar
  time it has in the *other* table: min(1, other / own), over the keys both spans reach (rows at keys only one
  span reaches are left out, and the note counts the current ones). A rolling 24 hours from 10:00, six hours of a
  morning, ten days: what a test still finds is rows arriving at another rate per unit of that time (busier
  nights, busier weekends, a season that moved), not the window.

A span runs from the 1st to the 99th percentile of a table's dates, so one late-arriving row (or a 9999-12-31
placeholder) does not stretch a day's window into a year.

Tables often hold the parts themselves, as integer columns: nycflights13's `weather` has `year`, `month`, `day` and
`hour` beside `time_hour`, ggplot2's `txhousing` `year` and `month`, `airquality` `Month` and `Day`. A column named
as a part (`CALENDAR_COLUMNS`) whose reference values are whole numbers in that part's range is one too (a `month`
of 0..72, months since signup, is an ordinary number): a month's window holds one value of it, which says nothing
of the data. With no dates to lay the window out in, it is tested only when the current rows hold (nearly) every
value the reference holds (`held_values`); over fewer, the note says how many, as a date part's does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from driftloop.drift.time_columns import Calendar

WINDOW_SETS = "is set by the window, not drift"  # the end of the note of a part a short window leaves untested
_SEED = 20181  # thinning draws: the same tables give the same verdict
_KEYS = 367  # keys are at most a day of the year, 1..366
_SEASONAL = frozenset({"month", "dayofyear"})
_YEAR_UNITS = {"hour": 365 * 24, "day": 365, "month": 12}
_TRIM = (1.0, 99.0)  # the percentiles a span runs between
_KEPT_SHARE = 0.98  # thinning that keeps more of both tables than this is not worth a note (365 days: one weekday 53)
# A column of one calendar part: its names (lower case, separators dropped: `day_of_week` is `dayofweek`) → the part,
# and the part's whole values. Weekday 0..7 takes Monday-first 0..6, R's wday 1..7 (Sunday first) and ISO's 1..7.
CALENDAR_COLUMNS: dict[str, str] = {
    **dict.fromkeys(("month", "mon", "mnth"), "month"),
    **dict.fromkeys(("day", "mday", "dayofmonth", "dom"), "day"),
    **dict.fromkeys(("hour", "hr"), "hour"),
    **dict.fromkeys(("weekday", "wday", "dayofweek", "dow"), "weekday"),
    **dict.fromkeys(("yday", "dayofyear", "doy"), "dayofyear"),
    **dict.fromkeys(("quarter", "qtr"), "quarter"),
    **dict.fromkeys(("week", "weekofyear", "isoweek", "woy"), "week"),
}
PART_RANGES: dict[str, tuple[int, int]] = {"month": (1, 12), "day": (1, 31), "hour": (0, 23), "weekday": (0, 7),
                                            "dayofyear": (1, 366), "quarter": (1, 4), "week": (0, 53)}
_PART_PLURALS = {"month": "months", "day": "days of the month", "hour": "hours of the day",
                 "weekday": "days of the week", "dayofyear": "days of the year", "quarter": "quarters",
                 "week": "weeks of the year"}
# What the current rows may lack and still be tested. A value rarer in the reference than the smaller of 1% of its
# rows and half an even share is none a window need reach (storms' positions at 3:00 beside the 0/6/12/18 ones);
# the others it lacks may hold 1% of the reference's rows in all (a year against a reference with one leap year
# lacks day 366). A February lacks days 29..31, 8% of a year's rows, which would shift a KS test of the day.
_LACKED_SHARE = 0.01


@dataclass(frozen=True)
class Matched:
    """A part's readable values on each side after matching, and what the matching did ('' when nothing)."""

    reference: np.ndarray
    current: np.ndarray
    note: str
    tested: bool = True  # False: the part is not tested, for the reason in `note`


def matched(part: str, reference: Calendar, current: Calendar, *, monthly: bool) -> Matched:
    """`part`'s readable values of each table, compared over the same calendar time (module docstring).

    Args:
        monthly: the dates are months (`YYYY-MM`, or every reference date one day of its month), so the unit of
            calendar time is the month, keyed by month of the year, not the day.
    """
    import numpy as np

    ref_values, cur_values = reference.readable(part), current.readable(part)
    timed = "hour" in reference.parts and "hour" in current.parts
    unit = "month" if monthly else "hour" if timed else "day"
    ref_units, cur_units = _units(reference, unit), _units(current, unit)
    if len(ref_units) == 0 or len(cur_units) == 0:
        return Matched(ref_values, cur_values, "")
    ref_span, cur_span = _span(ref_units, unit), _span(cur_units, unit)
    if part in _SEASONAL and not _whole_year(cur_span, unit):
        return Matched(ref_values, cur_values, _short_window(part, unit, cur_span, ref_units, cur_units), tested=False)
    ref_share = _exposure(ref_span, part, unit, _active_weekdays(ref_units, unit))
    cur_share = _exposure(cur_span, part, unit, _active_weekdays(cur_units, unit))
    both = (ref_share > 0) & (cur_share > 0)
    if not both.any():  # the spans share no key: nothing to compare, the test says it has too few rows
        return Matched(ref_values[:0], cur_values[:0], f"the two tables' dates share no {_key_word(part, unit)}")
    ref_share, cur_share = ref_share * both / ref_share[both].sum(), cur_share * both / cur_share[both].sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        keep_ref = np.where(both, np.minimum(1.0, cur_share / ref_share), 0.0)
        keep_cur = np.where(both, np.minimum(1.0, ref_share / cur_share), 0.0)
    ref_keys, cur_keys = _keys(ref_units, part, unit), _keys(cur_units, part, unit)
    draws = np.random.default_rng(_SEED)
    # rows outside their table's span are left out: the exposure counts the span's units only
    ref_kept = (draws.random(len(ref_keys)) < keep_ref[ref_keys]) & _within(ref_units, ref_span)
    cur_kept = (draws.random(len(cur_keys)) < keep_cur[cur_keys]) & _within(cur_units, cur_span)
    outside = int(np.count_nonzero(~both[cur_keys] & _within(cur_units, cur_span)))
    thinned = bool((keep_ref[both] < _KEPT_SHARE).any() or (keep_cur[both] < _KEPT_SHARE).any())
    if not thinned and not outside:
        return Matched(ref_values[ref_kept], cur_values[cur_kept], "")
    note = f"compared over the calendar time both tables span (each {unit}'s rows weighed alike)"
    if outside:
        note += (f"; {outside} current row(s) in {_key_word(part, unit, plural=True)} the reference's span never "
                 "reaches left out")
    return Matched(ref_values[ref_kept], cur_values[cur_kept], note)


def _within(units: np.ndarray, span: tuple[int, int]) -> np.ndarray:
    return (units >= span[0]) & (units <= span[1])


def _short_window(part: str, unit: str, span: tuple[int, int], ref_units: np.ndarray, cur_units: np.ndarray) -> str:
    """Why a seasonal part of a window shorter than a year is not tested, and where the model extrapolates in it."""
    import numpy as np

    length = span[1] - span[0] + 1
    note = (f"not tested: the current dates span {length} {unit}(s), not every month of a year, so which "
            f"{_key_word(part, unit, plural=True)} they hold {WINDOW_SETS}")
    unseen = int(np.count_nonzero(~np.isin(_months(cur_units, unit), _months(ref_units, unit))))
    if unseen:
        note += f"; {unseen} current row(s) fall in months no reference date is in: the model extrapolates there"
    return note


def _whole_year(span: tuple[int, int], unit: str) -> bool:
    """Whether a span reaches every month of the year (a year of dates between its 1st and 99th percentile may stop
    a few days short of twelve full months)."""
    import numpy as np

    first, last = span
    if last - first + 1 >= _YEAR_UNITS[unit]:
        return True
    if unit == "month":
        return False
    days = np.arange(first // 24, last // 24 + 1) if unit == "hour" else np.arange(first, last + 1)
    return len(set(_months(days, "day").tolist())) == 12


def _months(units: np.ndarray, unit: str) -> np.ndarray:
    """The month of the year (1..12) of each unit."""
    if unit == "month":
        return units % 12 + 1
    days = units // 24 if unit == "hour" else units
    return days.astype("datetime64[D]").astype("datetime64[M]").astype("int64") % 12 + 1


_KEY_WORDS = {"month": ("month", "months"), "weekday": ("day of the week", "days of the week"),
              "dayofyear": ("day of the year", "days of the year"), "hour": ("hour of the day", "hours of the day")}


def _key_word(part: str, unit: str, *, plural: bool = False) -> str:
    return _KEY_WORDS["month" if unit == "month" else part][plural]


def _units(calendar: Calendar, unit: str) -> np.ndarray:
    """Each readable row's calendar unit as an integer: hours, days or months since 1970-01-01."""
    days = calendar.days()
    if unit == "month":
        return days.astype("datetime64[D]").astype("datetime64[M]").astype("int64")
    if unit == "hour":
        return days * 24 + calendar.readable("hour").astype("int64")
    return days


def _span(units: np.ndarray, unit: str) -> tuple[int, int]:
    """The first and last unit of a table's time, between the 1st and 99th percentile of its rows. Dates outside the
    years a table's time can be in (`YEAR_RANGE`: 9999-12-31 and 0001-01-01 stand for "none") are left out of it
    however many there are, so 5% of them do not stretch a month's window over every month of a year."""
    import numpy as np

    from driftloop.drift.time_columns import YEAR_RANGE

    bounds = np.array([f"{YEAR_RANGE[0]}-01", f"{YEAR_RANGE[1] + 1}-01"], dtype="datetime64[M]")
    limits = bounds.astype("int64") if unit == "month" else bounds.astype("datetime64[D]").astype("int64")
    limits = limits * 24 if unit == "hour" else limits
    real = units[(units >= limits[0]) & (units < limits[1])]
    low, high = np.percentile(real if len(real) else units, _TRIM, method="nearest")
    return int(low), int(high)


def _keys(units: np.ndarray, part: str, unit: str) -> np.ndarray:
    """The key each unit is counted under: its hour of the day, month of the year, weekday or day of the year."""
    if unit == "month" or part == "month":
        return _months(units, unit)
    if part == "hour":
        return units % 24
    days = units // 24 if unit == "hour" else units
    if part == "weekday":
        return (days + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0, as `date.weekday()`
    days = days.astype("datetime64[D]")
    return (days - days.astype("datetime64[Y]")).astype("int64") + 1


def _active_weekdays(units: np.ndarray, unit: str) -> np.ndarray:
    """Which weekdays (Monday first) a table has rows on: each at least a tenth of an even seventh of them.
    Business-day data has none at weekends, and how many business days a month holds changes from year to year."""
    import numpy as np

    if unit == "month":
        return np.ones(7, dtype=bool)
    counts = np.bincount(_keys(units, "weekday", unit), minlength=7)
    return counts >= 0.1 * counts.sum() / 7


def _exposure(span: tuple[int, int], part: str, unit: str, weekdays: np.ndarray) -> np.ndarray:
    """Each key's share of the calendar units in the span (trimmed, so it stays a few thousand units at most for
    the months and days of year a table of real dates covers; a week's days are counted without listing them).
    A month or day of year counts only the units on the table's active `weekdays`: a year of business days holds
    another share of each month than a year of all days does, and than the next year's business days do."""
    import numpy as np

    first, last = span
    if part == "weekday" and unit == "day":
        length = last - first + 1
        counts = np.full(_KEYS, 0.0)
        offsets = (np.arange(7) - _keys(np.array([first]), part, unit)[0]) % 7  # days from the first to each weekday
        counts[:7] = length // 7 + (offsets < length % 7)
        return counts / counts.sum()
    units = np.arange(first, last + 1)
    if part in _SEASONAL and unit != "month":
        units = units[weekdays[_keys(units, "weekday", unit)]]
    counts = np.bincount(_keys(units, part, unit), minlength=_KEYS).astype("float64")
    return counts / counts.sum()


def calendar_part(name: str, reference: np.ndarray) -> str:
    """The calendar part a numeric column holds ('month', 'hour', ...; `CALENDAR_COLUMNS`), or '' for an ordinary
    number: its name is no part's, or a reference value is no whole number in the part's range."""
    import numpy as np

    part = CALENDAR_COLUMNS.get(re.sub(r"[^a-z0-9]", "", str(name).lower()), "")
    present = reference[np.isfinite(reference)]
    if not part or not len(present):
        return ""
    low, high = PART_RANGES[part]
    whole = bool(np.all(present == np.floor(present)))
    return part if whole and present.min() >= low and present.max() <= high else ""


def part_words(part: str) -> str:
    """How a calendar-part column's note starts: 'month (1..12), a calendar part'."""
    low, high = PART_RANGES[part]
    return f"{part} ({low}..{high}), a calendar part"


def held_values(part: str, reference: np.ndarray, current: np.ndarray) -> str:
    """'' when the current rows hold (nearly) every value of `part` the reference holds (`_LACKED_SHARE`), so a test
    compares like with like; else why the column is not tested (a window's months are the window's), and how many
    current rows hold values no reference row does (the model extrapolates there). Missing values count in neither
    table: a current column with none present is left to the test of its missing share."""
    import numpy as np

    ref, cur = reference[np.isfinite(reference)], current[np.isfinite(current)]
    if not len(ref) or not len(cur):
        return ""
    values, counts = np.unique(ref, return_counts=True)
    held = np.isin(values, cur)
    shares = counts / len(ref)
    common = shares >= min(_LACKED_SHARE, 0.5 / len(values))
    if shares[common & ~held].sum() <= _LACKED_SHARE:
        return ""
    plural = _PART_PLURALS[part]
    note = (f"not tested: the current rows hold {int(held.sum())} of the reference's {len(values)} {plural}; "
            f"which {plural} a window holds {WINDOW_SETS}")
    unseen = int(np.count_nonzero(~np.isin(cur, values)))
    if unseen:
        note += f"; {unseen} current row(s) hold {plural} no reference row holds: the model extrapolates there"
    return note
