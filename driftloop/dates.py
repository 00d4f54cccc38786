"""Date text in the formats driftloop reads, found from a column's values and parsed by one grammar.

A format is named as a user would write it ("YYYY-MM-DD", "DD/MM/YYYY", "Mon DD, YYYY"). Each has
one regular expression (`pattern`) in the syntax Python's `re` and RE2 share, so the model file's
`RegexFullMatch` (`driftloop.onnx_calendar`) accepts exactly the text `parse` accepts here; any
format may carry a time of day (" HH:MM[:SS[.fff]]", ISO also "T…", and a UTC offset). Text that does
not match, or names no real day (2026-02-30), is a missing date in training and in the model file alike.
Pure Python: serving and batch scoring import it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from functools import cache

ISO = "YYYY-MM-DD"
# separator → the numeric formats it can write, year first or year last (month or day first)
NUMERIC = {"-": ("YYYY-MM-DD", "MM-DD-YYYY", "DD-MM-YYYY"), "/": ("YYYY/MM/DD", "MM/DD/YYYY", "DD/MM/YYYY"),
           ".": ("YYYY.MM.DD", "MM.DD.YYYY", "DD.MM.YYYY")}
# month names; "DD-Mon-YY" is the spreadsheet and database export form ("19-Sep-03": Excel, Oracle's DD-MON-RR)
NAMED = ("Mon DD, YYYY", "DD Mon YYYY", "DD-Mon-YYYY", "DD-Mon-YY")
# a month without a day: a monthly series' index as pandas writes it (sktime's airline, "1949-01"), a billing month;
# read as the month's first day, and its calendar features are the year and the month only
MONTHLY = "YYYY-MM"
MONTHLY_PARTS = ("year", "month")
MONTHLY_YEARS = (1700, 2300)  # the years a column of YYYY-MM text is taken as months in (`detect`)
FORMATS = tuple(f for group in NUMERIC.values() for f in group) + NAMED + (MONTHLY,)
SHORT_YEAR = "DD-Mon-YY"
# A two-digit year is 1969-2068, as POSIX strptime's %y (Python's too): 69-99 the 1900s, 00-68 the 2000s. Fixed,
# not a window sliding with today's date, so training, serving and the model file read "03" alike every year.
SHORT_YEAR_PIVOT = 69

MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
               "november", "december")


def month_spellings() -> dict[str, int]:
    """Every spelling of a month name the named formats take ("Nov", "nov", "NOV", "November", "Sept", ...)."""
    spellings: dict[str, int] = {}
    for number, name in enumerate(MONTH_NAMES, start=1):
        for word in {name[:3], name} | ({"sept"} if number == 9 else set()):
            for cased in (word, word.title(), word.upper()):
                spellings[cased] = number
    return spellings


_TIME = r"(?:{sep}([01]?[0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]+)?)?(?:Z|[+-][0-9]{{2}}:?[0-9]{{2}})?)?"


@cache
def pattern(fmt: str) -> str:
    """The full-match expression of a format; groups: its three date fields in written order, then the hour.
    Only spaces count as blanks (RE2's and Python's `\\s` differ beyond ASCII)."""
    if fmt == MONTHLY:  # no day and no time of day: groups year, month
        return " *([0-9]{4})-([0-9]{1,2}) *"
    if fmt in NAMED:
        month = "(" + "|".join(sorted(month_spellings(), key=lambda s: (-len(s), s))) + ")"
        if hyphened(fmt):  # 19-Sep-2003, 19-SEP-03
            body = "-".join(["([0-9]{1,2})", month, "([0-9]{2})" if fmt == SHORT_YEAR else "([0-9]{4})"])
        else:
            month += r"\.?"
            body = " +".join([month, "([0-9]{1,2}),?", "([0-9]{4})"] if fmt.startswith("Mon")
                             else ["([0-9]{1,2})", month, "([0-9]{4})"])
        time = _TIME.format(sep=" +")
    else:
        sep = fmt[4] if fmt.startswith("YYYY") else fmt[2]
        body = re.escape(sep).join("([0-9]{4})" if f == "YYYY" else "([0-9]{1,2})" for f in fmt.split(sep))
        time = _TIME.format(sep="(?:T| +)" if fmt == ISO else " +")
    return f" *{body}{time} *"


def hyphened(fmt: str) -> bool:
    """A month-name format written as one word with dashes (DD-Mon-YYYY, DD-Mon-YY)."""
    return fmt.startswith("DD-Mon")


def full_year(year: int, fmt: str) -> int:
    """The year a format's year field names: a two-digit one by `SHORT_YEAR_PIVOT`."""
    if fmt != SHORT_YEAR:
        return year
    return year + (1900 if year >= SHORT_YEAR_PIVOT else 2000)


def field_order(fmt: str) -> tuple[int, int, int]:
    """Where year, month and day are among a format's three written fields."""
    if fmt in NAMED:
        return (2, 0, 1) if fmt.startswith("Mon") else (2, 1, 0)
    sep = fmt[4] if fmt.startswith("YYYY") else fmt[2]
    written = fmt.split(sep)
    return written.index("YYYY"), written.index("MM"), written.index("DD")


def parse(text: str, fmt: str = ISO) -> tuple[int, int, int, int] | None:
    """(year, month, day, hour) of date text in `fmt`; None when it does not match or is not a real day."""
    found = re.fullmatch(pattern(fmt), text)
    if found is None:
        return None
    if fmt == MONTHLY:
        year, month = int(found.group(1)), int(found.group(2))
        try:
            date(year, month, 1)  # month 1..12 and year ≥ 1, as the other formats' day check has it
        except ValueError:
            return None
        return year, month, 1, 0
    fields = found.groups()[:3]
    y, m, d = (fields[i] for i in field_order(fmt))
    month = month_spellings()[m] if fmt in NAMED else int(m)
    year = full_year(int(y), fmt)
    try:
        date(year, month, int(d))
    except ValueError:
        return None
    return year, month, int(d), int(found.group(4) or 0)


def unreadable(text: str, fmt: str) -> str:
    """Why date text that `parse` refused is not a date in `fmt`, for the one error line serving and `predict` give:
    "02/30/1990" is written in MM/DD/YYYY but names no day; "1967-07-01" is not written in it at all."""
    if re.fullmatch(pattern(fmt), text) is not None:
        return f"names no real {'month' if fmt == MONTHLY else 'day'} (read as {fmt}, the format the model was trained on)"
    # the format's time of day is optional, and a client whose dates carry one needs to know it may send it
    return f"is not a date in the format {fmt}{'' if fmt == MONTHLY else '[ HH:MM[:SS]]'} the model was trained on"


def has_time(text: str, fmt: str) -> bool:
    """A time of day is written, and it is not midnight: dates stamped 00:00[:00] (an export of a date column from a
    database or a spreadsheet) have no hour to learn from, as a datetime column's midnights have none."""
    if fmt == MONTHLY:
        return False
    found = re.fullmatch(pattern(fmt), text)
    if found is None or found.group(4) is None:
        return False
    minute = text[found.end(4) + 1:found.end(4) + 3]  # the pattern has ':MM' right after the hour
    return int(found.group(4)) != 0 or minute != "00"


def detect(texts: Iterable[str]) -> tuple[str, str] | None:
    """(format, note) when every text is a date in one format; None otherwise.

    Month or day first is read from the data: a first field over 12 means day first, a second one over
    12 month first; when every value could be either, month first, and the note says so.
    """
    values = list(texts)
    if not values:
        return None
    for fmt in (ISO, *NAMED, "YYYY/MM/DD", "YYYY.MM.DD"):
        if all(parse(v, fmt) is not None for v in values):
            return fmt, ""
    if _monthly(values):
        return MONTHLY, ""
    for month_first, day_first in (NUMERIC["/"][1:], NUMERIC["."][1:], NUMERIC["-"][1:]):
        months = [parse(v, month_first) for v in values]
        days = [parse(v, day_first) for v in values]
        if all(days) and not all(months):
            return day_first, ""
        if all(months) and not all(days):
            return month_first, ""
        if all(months):
            return month_first, f"every day and month ≤ 12: read as {month_first}"
    return None


def _monthly(values: list[str]) -> bool:
    """Text that is months, not text of the same shape: years of the calendar's era ("4521-07" beside "1001-01" is
    more likely a code), and some year seen in two months; seasons and fiscal years ("2009-10", "2010-11") have
    every year in one "month" only, the next year's last two digits."""
    months = [parse(v, MONTHLY) for v in values]
    if not all(m is not None and MONTHLY_YEARS[0] <= m[0] <= MONTHLY_YEARS[1] for m in months):
        return False
    seen: dict[int, set[int]] = {}
    for year, month, _, _ in months:  # type: ignore[misc]
        seen.setdefault(year, set()).add(month)
    return len(set(values)) == 1 or any(len(of_year) > 1 for of_year in seen.values())


def written(when: date, fmt: str) -> str:
    """A `date` or `datetime` (pandas.Timestamp too) as text in `fmt`, with the time of day when it has one,
    so a date object reaches the model file as text its expression takes."""
    if fmt == SHORT_YEAR and not SHORT_YEAR_PIVOT <= when.year - 1900 < SHORT_YEAR_PIVOT + 100:
        return ""  # two digits cannot name this year: a missing date, not another century's
    if fmt == MONTHLY:  # the month alone, as the column's text was
        return f"{when.year:04d}-{when.month:02d}"
    if fmt in NAMED:
        month = MONTH_NAMES[when.month - 1][:3].title()
        text = (f"{month} {when.day}, {when.year:04d}" if fmt.startswith("Mon")
                else f"{when.day:02d}-{month}-{when.year % 100:02d}" if fmt == SHORT_YEAR
                else f"{when.day:02d}-{month}-{when.year:04d}" if hyphened(fmt)
                else f"{when.day} {month} {when.year:04d}")
    else:
        sep = fmt[4] if fmt.startswith("YYYY") else fmt[2]
        fields = {"YYYY": f"{when.year:04d}", "MM": f"{when.month:02d}", "DD": f"{when.day:02d}"}
        text = sep.join(fields[f] for f in fmt.split(sep))
    hour, minute, second = (getattr(when, n, 0) for n in ("hour", "minute", "second"))
    return f"{text} {hour:02d}:{minute:02d}:{second:02d}" if hasattr(when, "hour") else text
