"""Each column's role, with the reason a data scientist can check, before anything is fitted.

Roles: numeric (numbers, also written as text: "3,750", "$12", "45%"), boolean (true/false,
yes/no, 0/1 text, a bool dtype), datetime (dates in one of `driftloop.dates.FORMATS`: ISO, 28/11/2026,
Nov 28, 2026, 28-Nov-26 …, or a datetime dtype: calendar features, never one-hot), categorical (bounded:
rare categories of a wide column share an 'other' bucket; one value and blanks is a flag, categorical too),
and two that leave the model: id (a label per row, which cannot generalise) and constant (one value in every
row, which carries nothing). `feature.roles` overrides any of them, and the older
`feature.numeric`/`categorical`/`drop` lists keep working.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from driftloop.canonical import (
    DATE_PARTS,
    FALSE_WORDS,
    TIME_PARTS,
    TRUE_WORDS,
    calendar_name,
    number_text,
    written_as_codes,
)
from driftloop.components.columns import ColumnRoles, looks_numeric, near_hint
from driftloop.constants import PREDICTION_COLUMN, PROBABILITY_PREFIX
from driftloop.dates import FORMATS, ISO, MONTHLY, MONTHLY_PARTS, detect, has_time, parse
from driftloop.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from driftloop.console import Console
    from driftloop.spec import FeatureSpec

# A text column this distinct is a label per row (a name, a code), not a category to learn from
ID_SHARE = 0.95
# ... and so is one named like an identifier that is more than half distinct ("Individual ID": 190 in 344)
NAMED_ID_SHARE = 0.5
ID_NAME = re.compile(r"(^|[^a-z])id([^a-z]|$)|_id$|Id$|ID$", re.IGNORECASE)
MIN_ROWS_FOR_ID = 20  # in a handful of rows everything looks unique
INTEGER_IDS = "distinct integers"  # how the roles table says a number column is a row number or key
# A header cell left empty: R's write.csv writes its row names under "", pandas' to_csv its index; pandas' reader names
# it "Unnamed: 0". All distinct, it numbers or names the rows whatever they hold (a sample's row numbers are not one
# run, and a table sorted by its target before it was written leaks the target through them).
ROW_NAMES = re.compile(r"|Unnamed: [0-9]+")
# Why a column named as `driftloop predict` names its scores is left out (nannyml's tables carry the last model's
# `prediction`): a table holding it could never be scored, as predict will not overwrite an input with the scores
SCORES_WHY = (f"named as predict names the scores it writes ({PREDICTION_COLUMN!r}, '{PROBABILITY_PREFIX}<class>'): "
              "another model's output, which would also keep this one's table from being scored: dropped")
# Over this many distinct values a categorical column is "wide": rare categories share the 'other' bucket
WIDE_CATEGORIES = 20


def infer(frame: pd.DataFrame, target: str, feature: FeatureSpec) -> ColumnRoles:
    """The roles of every column but the target, each with why.

    Raises:
        DataError: the spec names a column the table lacks, a column cannot be read in the role set for it,
            or no feature column is left.
    """
    columns = list(frame.columns)
    for where, listed in (("feature.numeric", feature.numeric or []), ("feature.categorical", feature.categorical or []),
                          ("feature.drop", feature.drop), ("feature.roles", list(feature.roles))):
        for name in listed:
            if name not in columns:
                raise DataError(f"{where} names column {name!r}, which the table does not have{near_hint(name, columns)}")
    if target in feature.roles:
        raise DataError(f"feature.roles sets a role for the target column {target!r}; the target has none")
    table: list[dict[str, str]] = []
    for column in columns:
        if column == target:
            continue
        role, why = _decide(frame[column], column, feature)
        if is_scores_name(column) and role not in ("id", "constant", "drop"):
            if column in feature.roles or column in (feature.numeric or []) or column in (feature.categorical or []):
                raise DataError(f"column {column!r} cannot be a feature ({why}): driftloop predict writes the model's "
                                "scores under that name, so no table holding it could be scored; rename the column")
            role, why = "drop", SCORES_WHY
        table.append({"column": column, "role": role, "why": why})
    return _roles(frame, target, table)


def is_scores_name(column: str) -> bool:
    """Whether `column` is named as `driftloop predict` names an output column."""
    return column == PREDICTION_COLUMN or str(column).startswith(PROBABILITY_PREFIX)


def _decide(series: pd.Series, column: str, feature: FeatureSpec) -> tuple[str, str]:
    """(role, why) for one column: the spec's word first, then what the values look like."""
    if column in feature.roles:
        return feature.roles[column], "set in feature.roles"
    if column in feature.drop:
        return "drop", "listed in feature.drop"
    if feature.numeric is not None and column in feature.numeric:
        return "numeric", "listed in feature.numeric"
    if feature.categorical is not None and column in feature.categorical:
        return "categorical", "listed in feature.categorical"
    if feature.numeric is not None and feature.categorical is not None:
        return "drop", "not listed in feature.numeric or feature.categorical"
    role, why = _inferred(series, column)
    if feature.numeric is not None and role == "numeric":  # the user listed every numeric column
        return "categorical", f"not listed in feature.numeric ({why})"
    return role, why


def _inferred(series: pd.Series, column: str) -> tuple[str, str]:
    import pandas as pd

    present = series.dropna()
    rows, distinct = len(present), int(present.nunique())
    if distinct == 1 and rows < len(series):
        # one value and blanks (an exported one-hot or flag column): whether it is there is what it says, which a
        # number loses to imputation and a category keeps (a blank is a category of its own, '')
        return "categorical", f"one value ({_short(present.iloc[0])}) or blank: present or missing"
    if distinct == 1:
        return "constant", f"one value ({_short(present.iloc[0])}) in every row: dropped"
    if ROW_NAMES.fullmatch(str(column)) and distinct == rows == len(series) and not _time_index(present):
        return "id", (f"no name in the header, {distinct} distinct values, one per row: row names (R's write.csv, "
                      "pandas' to_csv index): dropped")
    if pd.api.types.is_bool_dtype(series):
        return "boolean", "true/false values"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime", "a datetime column: year, month, day of week, day of year" + _hour_note(present)
    if isinstance(series.dtype, pd.CategoricalDtype):  # the table's author said so (a Parquet dictionary column)
        kind = series.cat.categories.dtype
        plain = series.astype("Int64" if pd.api.types.is_integer_dtype(kind) else kind)  # Int64: blanks stay blank
        role, why = _inferred(plain, column)  # an id or a date is still one; anything else is what the author said
        return (role, why) if role in ("id", "datetime") else ("categorical", f"a categorical column, {distinct} "
                                                                              "distinct values")
    if pd.api.types.is_numeric_dtype(series):
        if _integer_id(present, column):
            return "id", f"{distinct} {INTEGER_IDS} in {rows} rows, one per row: dropped"
        return "numeric", "numbers"
    text = present.astype(str).str.strip()
    if distinct == 2 and set(text.str.lower()) <= TRUE_WORDS | FALSE_WORDS:
        return "boolean", f"two values: {' / '.join(sorted(set(text)))}"
    found = _date_format(text)
    if found is not None:
        fmt, note = found
        timed = bool(text.map(lambda v: has_time(v, fmt)).any())
        if fmt == MONTHLY:
            return "datetime", f"months as {fmt}: year, month"
        return "datetime", (f"dates as {fmt}{' HH:MM[:SS]' if timed else ''}: year, month, day of week, day of year"
                            + (", hour" if timed else "") + (f" ({note})" if note else ""))
    # codes written with leading zeros (ZIP codes, account numbers, "007") are labels: as numbers they lose them
    coded = written_as_codes(text)
    numbers = text.map(number_text)
    if numbers.notna().mean() >= 0.9 and not coded:
        notes = sorted({n for r in numbers.dropna() for n in r[1].split(", ") if n})
        return "numeric", "parsed from text" + (f": {', '.join(notes)}" if notes else "")
    if rows >= MIN_ROWS_FOR_ID and distinct >= ID_SHARE * rows:
        return "id", f"{distinct} distinct values in {rows} rows (≥ {ID_SHARE:.0%}): dropped"
    if rows >= MIN_ROWS_FOR_ID and ID_NAME.search(column) and distinct >= NAMED_ID_SHARE * rows:
        return "id", f"named like an identifier, {distinct} distinct values in {rows} rows: dropped"
    if looks_numeric(series) and not coded:  # numbers with a few typos: the numeric reading names the first bad value
        return "numeric", "mostly numbers"
    unit = "" if coded else _unit_of(text)
    if unit:  # a category per measurement, silently, was what a user got: say what would make them numbers
        unit = (f"; numbers with a unit ('{text.iloc[0]}'), each a category as text: write the numbers without "
                f"'{unit}' to use them as numbers")
    if distinct > WIDE_CATEGORIES:
        return "categorical", (f"text, {distinct} distinct values: those seen fewer than feature.min_frequency "
                               f"times in training share one 'other' bucket{unit}")
    return "categorical", f"text, {distinct} distinct values" + (", codes with leading zeros" if coded else "") + unit


_WITH_UNIT = re.compile(r"[-+]?(?:\d+(?:[.,]\d+)?|[.,]\d+)\s*([^\d\s.,+-][^\d\s]{0,5})")


# Endings that make a number something else: a time (10am), a decade (80s), an ordinal (1st), a multiple (2x)
_NOT_UNITS = frozenset({"am", "pm", "s", "st", "nd", "rd", "th", "x"})


def _unit_of(text: pd.Series) -> str:
    """The unit every value is written with ("3750 g", "181mm", "12.5 kg"), or "" when the values are not so."""
    found = text.map(lambda v: m.group(1) if (m := _WITH_UNIT.fullmatch(v)) else None)
    units = set(found)
    unit = units.pop() if len(units) == 1 and None not in units else ""
    return "" if unit.lower() in _NOT_UNITS else unit


def missing_marks(series: pd.Series) -> dict[str, int]:
    """The marks in a column of numbers: its cells that are no number and hold no letter or digit ('?' as UCI and
    Orange write a missing value, '-', '.'), with their counts; {} when the column is anything else (words among the
    other cells, codes with leading zeros, fewer than two distinct numbers).

    pandas reads none of them as missing, so such a column was text: a category per number when the marks were 10%
    of it or more, a wrong task for a target ('?' made a price a class label), and an error naming '?' below that.
    """
    import pandas as pd

    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return {}
    present = series.dropna()
    if present.empty or not all(isinstance(v, str) for v in present.head(1000)):
        return {}
    text = present.astype(str).str.strip()
    numbers = text.map(number_text)
    found = numbers.notna()
    if found.all() or numbers[found].map(lambda r: r[0]).nunique() < 2:
        return {}
    if written_as_codes(text):  # codes: their own reading decides (see `_inferred`)
        return {}
    others = present[~found.to_numpy()].astype(str)
    if not others.map(lambda v: not any(ch.isalnum() for ch in v)).all():
        return {}
    return {str(mark): int(count) for mark, count in others.value_counts().items()}


def _time_index(present: pd.Series) -> bool:
    """Row names that are when each row was: dates or datetimes (`Series.to_csv()` of a time series writes its
    date index under an empty header cell, pmdarima's sunspots as `1749-01`), read as the date column they are
    rather than dropped as row names; the run had nothing left but them ("no feature columns left")."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(present):
        return True
    if pd.api.types.is_numeric_dtype(present) or pd.api.types.is_bool_dtype(present):
        return False
    return _date_format(present.astype(str).str.strip()) is not None


def _integer_id(present: pd.Series, column: str) -> bool:
    """Integers that are a row number or a named key: all distinct, and consecutive (one per row), or named like an
    id. A nearly unique integer measurement (an area, a count), or one year per row, stays numeric."""
    import pandas as pd

    rows = len(present)
    if not pd.api.types.is_integer_dtype(present) or rows < MIN_ROWS_FOR_ID or present.nunique() != rows:
        return False
    span = int(present.max()) - int(present.min()) + 1
    year_like = int(present.min()) >= 1800 and int(present.max()) <= 2100  # one row per year is a feature
    return (span == rows and not year_like) or bool(ID_NAME.search(column))


def _hour_note(present: pd.Series) -> str:
    return ", hour" if bool((present.dt.hour != 0).any() or (present.dt.minute != 0).any()) else ""


def _roles(frame: pd.DataFrame, target: str, table: list[dict[str, str]]) -> ColumnRoles:
    by_role: dict[str, list[str]] = {}
    for row in table:
        by_role.setdefault(row["role"], []).append(row["column"])
    datetime: dict[str, list[str]] = {}
    formats: dict[str, str] = {}
    for column in by_role.get("datetime", []):
        parts, formats[column] = _calendar_parts(frame[column], column)
        datetime[column] = list(parts)
        for part in parts:  # the derived feature and the column would be two inputs of one name
            if (derived := calendar_name(column, part)) in frame.columns:
                raise DataError(f"column {derived!r} has the name of the {part} feature derived from the date column "
                                f"{column!r}; rename it, or set another role for {column!r} in feature.roles")
        row = next(r for r in table if r["column"] == column)
        if "hour" in datetime[column] and "hour" not in row["why"]:
            row["why"] += " (+ hour)"
    boolean = by_role.get("boolean", [])
    numeric = by_role.get("numeric", [])
    parsed = {r["column"]: r["why"] for r in table if r["role"] == "numeric" and r["why"].startswith("parsed")}
    if not numeric and not datetime and not by_role.get("categorical") and not boolean:
        raise DataError(f"no feature columns left besides the target {target!r} (roles: "
                        + ", ".join(f"{r['column']} {r['role']}" for r in table) + ")")
    return ColumnRoles(target=target, numeric=numeric, categorical=by_role.get("categorical", []) + boolean,
                       boolean=boolean, datetime=datetime, parsed=parsed, table=table, date_formats=formats,
                       ignored=[r["column"] for r in table if r["role"] in ("id", "constant", "drop")])


def _calendar_parts(series: pd.Series, column: str) -> tuple[tuple[str, ...], str]:
    """(the calendar features of a datetime column, the format of its text); hour only when some value has a
    time of day.

    Raises:
        DataError: a value is not a date in one format with the others (the column was set to datetime in the spec).
    """
    import pandas as pd

    present = series.dropna()
    if pd.api.types.is_datetime64_any_dtype(series):
        return DATE_PARTS + (TIME_PARTS if _hour_note(present) else ()), ISO
    text = present.astype(str).str.strip()
    found = _date_format(text)
    if found is None:
        formats = ", ".join(FORMATS)
        text = text[text != ""]  # blank is a missing date, as to the feed and the model file: not the culprit
        if text.empty:
            raise DataError(f"column {column!r} is datetime, but it holds no value")
        first = next((f for f in FORMATS if parse(text.iloc[0], f) is not None), None)
        if first is None:  # then no other value's format can be "its first value's"
            raise DataError(f"column {column!r} is datetime, but its first value {text.iloc[0]!r} at row "
                            f"{int(text.index[0]) + 2} is a date in none of the formats read ({formats})")
        found_at = next(((r, v) for r, v in text.items() if parse(v, first) is None), None)
        if found_at is None:  # all in one format that detection would not guess (months of 1650), set by hand
            return (MONTHLY_PARTS if first == MONTHLY else DATE_PARTS), first
        row, value = found_at
        raise DataError(f"column {column!r} is datetime, but {value!r} at row {int(row) + 2} is not a date in the "
                        f"format of its first value, {first} (formats read: {formats})")
    fmt = found[0]
    if fmt == MONTHLY:  # the first of every month: its weekday and day of year say nothing the month does not
        return MONTHLY_PARTS, fmt
    return DATE_PARTS + (TIME_PARTS if bool(text.map(lambda v: has_time(v, fmt)).any()) else ()), fmt


def _date_format(text: pd.Series) -> tuple[str, str] | None:
    """(format, note) of a text column whose every value is a date in one format; distinct values decide, and
    blank text is a missing date, as it is to the feed and the model file."""
    values = [v for v in text.drop_duplicates().tolist() if v]
    return detect(values) if values else None


def _short(value: object) -> str:
    text = repr(value.item() if hasattr(value, "item") else value)
    return text if len(text) <= 30 else text[:27] + "…"


def show(roles: ColumnRoles, console: Console) -> None:
    """The roles table, and a warning per column left out (id, constant), on the run's console."""
    rows = [(r["column"], r["role"], r["why"]) for r in roles.table]
    if not rows:
        return
    console.table("column roles", ["column", "role", "why"], rows)
    for r in roles.table:
        if r["why"] == SCORES_WHY:
            console.warning(f"column {r['column']!r} is left out of the model: driftloop predict writes the scores "
                            "under that name; rename the column to keep it as a feature")
        if r["role"] in ("id", "constant"):
            # distinct integers kept as categories would each be seen once, all in the 'other' bucket: as numbers
            # (a day number, a year) they can still say something
            keep = "numeric" if INTEGER_IDS in r["why"] else "categorical"
            console.warning(f"column {r['column']!r} is left out of the model as {r['role']} "
                            f"({r['why'].removesuffix(': dropped')}); feature.roles "
                            f"{{{r['column']!r}: {keep}}} keeps it")


def markdown(roles: ColumnRoles) -> str:
    """The roles table as the run's `roles.md` artifact."""
    lines = ["# Column roles", "", f"target: `{roles.target}`", "", "| column | role | why |", "|---|---|---|"]
    lines += [f"| {r['column']} | {r['role']} | {r['why']} |" for r in roles.table]
    return "\n".join(lines) + "\n"
