"""Time columns in a drift check: the part of a table that moves forward by design.

A date column enters the model as calendar features (`driftloop.canonical.calendar_parts`):
year, month, weekday, day of year, hour. The seasonal ones repeat, so `detect` tests them, over
the calendar time both tables span (`calendar_time`). The year only grows, and so does an integer year column (2007..2009),
or a decimal one (txhousing's `date`, 2000, 2000.083, ..., a month a twelfth of a year): a later
window always "drifts" in them, which says nothing but that time has passed, and a retrain
would fire on every check. They are reported as a time range instead, with whether the model
now extrapolates, and `drift.time_columns` overrides which columns count as time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from driftloop.canonical import DATE_PARTS, TIME_PARTS, calendar_parts
from driftloop.dates import ISO
from driftloop.errors import DataError
from driftloop.suggest import nearest

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from driftloop.components.columns import ColumnRoles

# Words that name a year column ("year", "birth_year", "ModelYear", "yr_built", "fy"), matched per word of the name
YEAR_WORDS = frozenset({"year", "years", "yr", "yrs", "yyyy", "fy", "date", "season", "vintage"})
YEAR_RANGE = (1900, 2100)
# Decimal years (R's `time()` of a monthly series, lubridate's `decimal_date`) step a month (1/12) or less; a `year`
# column of half years (2007.5, 2008.5) steps a year and is no time
_DECIMAL_STEP = 1 / 12 + 1e-6
# Calendar features that cycle through a few values: compared as counts (Chi-square), not as an order (KS),
# so December and January are no further apart than any two months
CYCLIC_PARTS = frozenset({"month", "weekday", "hour"})
MONOTONE_PART = "year"
CALENDAR_SETS = "follows the calendar, not the data"  # the end of why a weekday on one day of each month is untested
_EXAMPLES = 3


@dataclass(frozen=True)
class TimeColumn:
    """A column reported as a time range instead of tested: its two ranges and what the move means."""

    name: str
    kind: str  # date | year (whole or decimal) | number
    why: str  # why it counts as time: inferred (and from what) or listed in drift.time_columns
    reference: dict[str, Any]  # first, last, rows, missing_share (and unparseable_share for a date)
    current: dict[str, Any]  # the same, plus after_reference_share
    movement: str  # forward | backward | within | wider | later | earlier | none
    extrapolates: bool  # the model sees a year (or value) outside the reference's
    note: str  # one line: "reference A..B, current C..D (time moves forward; ...)"


@dataclass(frozen=True)
class QualityFinding:
    """Something wrong with the current values themselves (not a change in their distribution)."""

    column: str
    finding: str  # unparseable_dates, one_timestamp, infinite_values
    count: int
    share: float
    examples: list[str] = field(default_factory=list)
    note: str = ""


@dataclass(frozen=True)
class Calendar:
    """A date column's calendar features for every row (NaN where missing or unreadable)."""

    parts: dict[str, np.ndarray]
    present: np.ndarray  # a value was given
    unreadable: np.ndarray  # a value was given, but it is not a date the model can read

    def readable(self, part: str) -> np.ndarray:
        values = self.parts[part]
        return values[self.present & ~self.unreadable]

    def days(self) -> np.ndarray:
        """Each readable date as days since 1970-01-01 (int64), from its year and day of year: numpy's days, not
        pandas' Timestamps, so a placeholder date (0001-01-01, 9999-12-31) outside 1677..2262 is a day too."""
        years = self.readable("year").astype("int64")
        return (years - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype("int64") \
            + self.readable("dayofyear").astype("int64") - 1


def calendar(series: pd.Series, parts: list[str], fmt: str = ISO) -> Calendar:
    """The calendar features the model computes from each value, each distinct value read once.

    Args:
        fmt: the column's date format, as training detected it (`ColumnRoles.date_formats`).
    """
    import numpy as np
    import pandas as pd

    wanted = tuple(dict.fromkeys([*parts, MONOTONE_PART, "dayofyear"]))  # the range needs year and day of year
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    table = np.array([calendar_parts(v, wanted, fmt) for v in uniques], dtype="float64").reshape(len(uniques), len(wanted))
    table = np.vstack([table, np.full((1, len(wanted)), np.nan)])  # the missing sentinel (-1) reads the last row
    rows = table[codes]
    present = codes >= 0
    return Calendar({p: rows[:, i] for i, p in enumerate(wanted)}, present, present & np.isnan(rows[:, 0]))


def year_like(name: str, values: np.ndarray) -> str:
    """Why a column holds years (its name and its values), or '' when it does not."""
    import numpy as np

    present = values[~np.isnan(values)]
    form = _dates_as_numbers(present)
    # months or days written as numbers are dates by their values alone, once there are enough of them to tell
    # (12 distinct: by chance, a twelfth of arbitrary integers in range end in 01..12); a year needs its name too
    if form and len(np.unique(present)) >= _DATE_NUMBERS_DISTINCT:
        return f"dates written as {form} numbers, {int(present.min())}..{int(present.max())}"
    if not year_named(name):
        return ""
    if _years(present):
        return (f"integers named like a year, {int(present.min())}..{int(present.max())} within "
                f"{YEAR_RANGE[0]}..{YEAR_RANGE[1]}")
    if _decimal_years(present):
        return (f"decimal years named like a year, {present.min():.6g}..{present.max():.6g} within "
                f"{YEAR_RANGE[0]}..{YEAR_RANGE[1]}, a twelfth of a year apart or less")
    if form:
        return f"dates written as {form} numbers named like a date, {int(present.min())}..{int(present.max())}"
    return ""


_DATE_NUMBERS_DISTINCT = 12


def _dates_as_numbers(present: np.ndarray) -> str:
    """'YYYYMM' or 'YYYYMMDD' when every value is a month (192607, as Fama-French and FRED tables date a row) or a
    day (20240131) of a year in `YEAR_RANGE`, else ''."""
    import numpy as np

    if not len(present) or not np.all(present == np.floor(present)):
        return ""
    for form, scale in (("YYYYMM", 100), ("YYYYMMDD", 10_000)):
        years, rest = np.divmod(present.astype("int64"), scale)
        months = rest if scale == 100 else rest // 100
        days = np.ones_like(rest) if scale == 100 else rest % 100
        if (years.min() >= YEAR_RANGE[0] and years.max() <= YEAR_RANGE[1] and months.min() >= 1
                and months.max() <= 12 and days.min() >= 1 and days.max() <= 31):
            return form
    return ""


def year_named(name: str) -> bool:
    return bool(set(_words(name)) & YEAR_WORDS)


def _years(present: np.ndarray) -> bool:
    import numpy as np

    return bool(len(present) and np.all(present == np.floor(present)) and present.min() >= YEAR_RANGE[0]
                and present.max() <= YEAR_RANGE[1])


def _decimal_years(present: np.ndarray) -> bool:
    """Years with fractions (2000, 2000.083, 2000.167, ...): within the year range, not all whole, and the distinct
    values mostly (by their median gap) a month or less apart."""
    import numpy as np

    if not len(present) or present.min() < YEAR_RANGE[0] or present.max() > YEAR_RANGE[1]:
        return False
    distinct = np.unique(present)
    if len(distinct) < 2 or np.all(distinct == np.floor(distinct)):
        return False
    return bool(np.median(np.diff(distinct)) <= _DECIMAL_STEP)


def _words(name: str) -> list[str]:
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(name))  # ModelYear → Model_Year
    return [w for w in re.split(r"[^a-z0-9]+|(?<=[a-z])(?=[0-9])|(?<=[0-9])(?=[a-z])", snake.lower()) if w]


def choose(roles: ColumnRoles, listed: tuple[str, ...] | None,
           numbers: dict[str, np.ndarray | None]) -> tuple[dict[str, str], dict[str, str]]:
    """(time columns → why, inferred time columns the setting leaves out → why they would have been).

    Args:
        roles: the model's columns.
        listed: `drift.time_columns`; None infers them (date columns, and year columns by name and values).
        numbers: the reference values, as numbers, of every numeric feature and of the categorical ones that
            may hold years (named like a year, or listed); None for a categorical one that holds text.

    Raises:
        DataError: `listed` names a column the model does not take, or one with neither dates nor numbers.
    """
    inferred = {c: "a date: its year only moves forward; its seasonal parts are tested where they cycle" for c in roles.datetime}
    for column, values in numbers.items():
        why = year_like(column, values) if values is not None else ""
        if why:
            inferred[column] = why
    if listed is None:
        return {c: f"inferred: {why}" for c, why in inferred.items()}, {}
    features = roles.features
    for column in listed:
        if column not in features:
            close = nearest(column, features, cutoff=0.5)
            raise DataError(f"drift.time_columns names column {column!r}, which is not a feature of the model"
                            + (f"; did you mean {close!r}?" if close else f" (features: {', '.join(features)})"))
        if column not in roles.datetime and numbers.get(column) is None:
            raise DataError(f"drift.time_columns names column {column!r}, which holds neither dates nor numbers; "
                            "a time column is reported as a range")
    chosen = {c: "listed in drift.time_columns" for c in listed}
    return chosen, {c: why for c, why in inferred.items() if c not in chosen}


def text_numbers(series: pd.Series) -> np.ndarray | None:
    """A categorical column's values as numbers (years kept as text, "2007"), or None when one is not a number."""
    import pandas as pd

    coerced = pd.to_numeric(series, errors="coerce")
    if bool((series.notna() & coerced.isna()).any()):
        return None
    return coerced.to_numpy(dtype="float64", na_value=float("nan"))


def date_column(name: str, why: str, ref: Calendar, cur: Calendar) -> TimeColumn:
    """A date column's two ranges, read from the year and day of year the model sees (and the hour)."""
    ref_keys, cur_keys = _date_keys(ref), _date_keys(cur)
    with_hour = any(p in ref.parts for p in TIME_PARTS) and _has_time(ref, cur)
    reference = _range_summary(ref_keys, ref.present, lambda k: _date_text(k, with_hour)) | {
        "unparseable_share": _share(int(ref.unreadable.sum()), len(ref.present))}
    current = _range_summary(cur_keys, cur.present, lambda k: _date_text(k, with_hour)) | {
        "unparseable_share": _share(int(cur.unreadable.sum()), len(cur.present))}
    ref_years, cur_years = ref.readable(MONOTONE_PART), cur.readable(MONOTONE_PART)
    extrapolates = bool(len(ref_years) and len(cur_years) and (cur_years.max() > ref_years.max()
                                                               or cur_years.min() < ref_years.min()))
    return _time_column(name, "date", why, ref_keys, cur_keys, reference, current, extrapolates,
                        f"the model extrapolates in {MONOTONE_PART}", f"{MONOTONE_PART} within the reference's")


def number_column(name: str, why: str, ref: np.ndarray, cur: np.ndarray) -> TimeColumn:
    """A year (or other numeric time) column's two ranges."""
    import numpy as np

    ref_present, cur_present = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    whole = _years(ref_present) or bool(_dates_as_numbers(ref_present))
    kind = "year" if whole or _decimal_years(ref_present) else "number"
    text = (lambda v: str(int(v))) if whole else (lambda v: f"{v:.6g}")
    reference = _range_summary(ref_present, ~np.isnan(ref), text)
    current = _range_summary(cur_present, ~np.isnan(cur), text)
    extrapolates = bool(len(ref_present) and len(cur_present) and (cur_present.max() > ref_present.max()
                                                                   or cur_present.min() < ref_present.min()))
    return _time_column(name, kind, why, ref_present, cur_present, reference, current, extrapolates,
                        f"the model extrapolates in {name}", f"{name} within the reference's")


def _time_column(name: str, kind: str, why: str, ref: np.ndarray, cur: np.ndarray, reference: dict[str, Any],
                 current: dict[str, Any], extrapolates: bool, outside: str, inside: str) -> TimeColumn:
    movement = _movement(ref, cur)
    if len(ref) and len(cur):
        current["after_reference_share"] = _share(int((cur > ref.max()).sum()), len(cur))
    words = {"forward": "time moves forward", "backward": "current is before the reference",
             "later": f"time moves forward: {current.get('after_reference_share', 0):.0%} of current values after "
                      "the reference", "earlier": "current starts before the reference",
             "wider": "current spans beyond the reference on both sides",
             "within": "current within the reference's range", "none": "no readable values to compare"}[movement]
    if movement != "none":
        words += f"; {outside}" if extrapolates else (f"; {inside}" if movement in ("forward", "later") else "")
    note = f"reference {_span(reference)}, current {_span(current)} ({words})"
    return TimeColumn(name, kind, why, reference, current, movement, extrapolates, note)


def _movement(ref: np.ndarray, cur: np.ndarray) -> str:
    if not len(ref) or not len(cur):
        return "none"
    if cur.min() > ref.max():
        return "forward"
    if cur.max() < ref.min():
        return "backward"
    later, earlier = cur.max() > ref.max(), cur.min() < ref.min()
    return "wider" if later and earlier else "later" if later else "earlier" if earlier else "within"


def one_timestamp(name: str, reference: pd.Series, current: pd.Series, cal: Calendar,
                  min_rows: int) -> QualityFinding | None:
    """Every current timestamp the same one, where the reference's vary: a feed that stamps each row with its batch's
    time, or a stuck clock. The calendar parts are not tested on a window so short (one moment), so nothing else
    would say it, and the model reads every row as that hour and weekday. Dates without a time are left alone: a
    day's batch of dates is one date."""
    if "hour" not in cal.parts:
        return None
    values = current[cal.present & ~cal.unreadable].astype(str)
    if len(values) < min_rows:
        return None
    distinct = values.unique()
    if len(distinct) != 1 or reference.dropna().astype(str).nunique() < 2:
        return None
    return QualityFinding(name, "one_timestamp", len(values), 1.0, [str(distinct[0])],
                          f"all {len(values)} current values are one timestamp, {distinct[0]!r}, where the "
                          "reference's vary: a feed that stamps each row with its batch's time, or a stuck clock? "
                          "The model reads every row as that hour and weekday")


def unreadable_dates(name: str, series: pd.Series, cal: Calendar) -> QualityFinding | None:
    """The current values of a date column that the model cannot read (it sees them as missing)."""
    count = int(cal.unreadable.sum())
    if not count:
        return None
    examples = list(dict.fromkeys(str(v) for v in series[cal.unreadable].tolist()))[:_EXAMPLES]
    share = _share(count, len(series))
    return QualityFinding(name, "unparseable_dates", count, share, examples,
                          f"{count} of {len(series)} current values ({share:.1%}) are not dates the model can read, "
                          f"e.g. {', '.join(map(repr, examples))}; the model sees them as missing")


def _date_keys(cal: Calendar) -> np.ndarray:
    """Each readable date as one sortable number: year * 1000 + day of year (+ hour / 24)."""
    keys = cal.parts[MONOTONE_PART] * 1000 + cal.parts["dayofyear"]
    if "hour" in cal.parts:
        keys = keys + cal.parts["hour"] / 24
    return keys[cal.present & ~cal.unreadable]


def _has_time(*cals: Calendar) -> bool:
    import numpy as np

    return any(bool(np.nansum(c.parts.get("hour", np.zeros(0)))) for c in cals)


def _date_text(key: float, with_hour: bool) -> str:
    year, rest = divmod(key, 1000)
    day = int(rest)
    moment = datetime(int(year), 1, 1) + timedelta(days=day - 1, hours=round((rest - day) * 24))
    return moment.strftime("%Y-%m-%d %H:00" if with_hour else "%Y-%m-%d")


def _range_summary(values: np.ndarray, present: np.ndarray, text: Any) -> dict[str, Any]:
    summary: dict[str, Any] = {"rows": int(len(present)),
                               "missing_share": _share(int(len(present) - present.sum()), len(present))}
    if len(values):
        summary |= {"first": text(values.min()), "last": text(values.max())}
    return summary


def _span(summary: dict[str, Any]) -> str:
    if "first" not in summary:
        return "(none readable)"
    return summary["first"] if summary["first"] == summary["last"] else f"{summary['first']}..{summary['last']}"


def _share(count: int, total: int) -> float:
    return float(f"{count / total:.4g}") if total else 0.0


def weekday_set_by_calendar(reference: Calendar) -> str:
    """Why a date column's weekday says nothing but which month of which year it is, or '' when it cycles on its own.

    Dates all on one day of the month (vega's cars: every model year as 1 January; monthly figures dated the 1st)
    have a weekday the calendar sets: a later window "drifts" in it as surely as in the year itself. Dates on
    other days (billing on business days) keep theirs, tested. The month is always tested: on one day of the
    year it is one value, which moves only if the data does. Judged on the reference's readable dates.
    """
    import numpy as np

    if not {"year", "dayofyear"} <= set(reference.parts):
        return ""
    dates = reference.days().astype("datetime64[D]")
    if len(dates) == 0:
        return ""
    days_of_month = np.unique((dates - dates.astype("datetime64[M]")).astype("int64") + 1)
    if len(days_of_month) > 1:
        return ""
    return f"every reference date is day {int(days_of_month[0])} of its month: its day of week {CALENDAR_SETS}"


def parts_of(roles: ColumnRoles, column: str) -> list[str]:
    """The calendar features the model takes from a date column (older metadata may lack the list)."""
    return list(roles.datetime.get(column) or DATE_PARTS)
