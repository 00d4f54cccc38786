"""One value's canonical form for the roles that need reading: numbers written as text, booleans, dates.

Training (`components.columns.canonical_frame`), batch scoring (`OnnxModel.feed`) and serving
(`serve.schema`) all call these, so a raw "3,750" or "yes" means the same number or category wherever a
row enters. A date's calendar features are computed here for training; the model file computes the same
ones from the date text itself (`driftloop.onnx_calendar`, checked against this by a parity test).
Pure Python: serving imports it per request (`as_numbers`, for whole columns, imports pandas when called).
"""

from __future__ import annotations

import math
import numbers
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from driftloop.dates import ISO, parse

if TYPE_CHECKING:
    import pandas as pd

# Spellings of a boolean, compared lower-cased; "1"/"0" only count in a column of nothing else
TRUE_WORDS = frozenset({"true", "yes", "y", "t", "1", "1.0"})
FALSE_WORDS = frozenset({"false", "no", "n", "f", "0", "0.0"})
TRUE, FALSE = "True", "False"  # what pandas' bool column became as text before roles existed: kept

# What `number_text` strips, and the notes the roles table shows for it
_CURRENCY = "$€£¥₹"
_LEADING_ZERO = re.compile(r"0[0-9]+")
CODED_SHARE = 0.1  # this share of a column's cells with a leading zero ("007") makes it codes, not numbers


def written_as_codes(cells: Iterable[str]) -> bool:
    """Whether text cells are codes written with leading zeros ("00501", "007") often enough (`CODED_SHARE`) to be
    labels: read as numbers they lose the zeros. Roles, the missing-mark check and the CSV sniffer ask it alike."""
    stripped = [cell.strip() for cell in cells]
    return bool(stripped) and sum(bool(_LEADING_ZERO.fullmatch(c)) for c in stripped) >= CODED_SHARE * len(stripped)
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")
_PLAIN = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")

# The cells pandas.read_csv reads as missing by default (pandas._libs.parsers.STR_NA_VALUES): a table read so has
# none of these texts as a category. Kept here so serving does not import pandas.
DEFAULT_MISSING_TEXTS = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
                                   "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})


def missing_texts(read: Mapping[str, Any] | None) -> frozenset[str]:
    """The cell texts a table read with these `data.read` options reads as missing: pandas' own (unless
    `keep_default_na` is false: a level spelled "None" or "NA" is a category then) and `na_values`; a blank cell
    always. A model keeps them (`OnnxModel.missing_texts`), so every route into it reads a text as training did."""
    read = read or {}
    base = DEFAULT_MISSING_TEXTS if read.get("keep_default_na", True) is not False else frozenset({""})
    return base | frozenset(read.get("na_values") or ())


def missing_read(texts: frozenset[str]) -> dict[str, Any]:
    """The `data.read` options (`keep_default_na`, `na_values`) that read exactly `texts` as missing: the inverse of
    `missing_texts`, for reading a table to score as the model's training table was read."""
    if DEFAULT_MISSING_TEXTS <= texts:
        extra = sorted(texts - DEFAULT_MISSING_TEXTS)
        return {"na_values": extra} if extra else {}
    return {"keep_default_na": False, "na_values": sorted(texts - {""})}


def missing_as_none(values: Sequence[Any], missing: frozenset[str]) -> Sequence[Any]:
    """`values` with each text of `missing` as None; `values` itself when it has none (one hashing pass): how every
    route into a model reads a category or date text training read as missing."""
    try:
        if missing.isdisjoint(values):
            return values
    except TypeError:  # a list or an object among the values: the reader after names it
        pass
    return [None if type(value) is str and value in missing else value for value in values]


def missing_words_as_none(frame: pd.DataFrame, columns: Iterable[str], words: frozenset[str]) -> pd.DataFrame:
    """A Parquet or JSON Lines table's text in `columns` that the model reads as missing, missing (`missing_as_none`):
    the CSV reader applied the words already, these formats are read without them. Number columns too, where a
    word ("nil", the model's `na_values`) kept the column text: `driftloop serve` logs such a cell as it was sent,
    and its prediction log must read back. A Parquet `category` or `string` column comes back as plain text."""
    import pandas as pd

    changed = {}
    for column in [c for c in dict.fromkeys(columns) if c in frame.columns]:
        series = frame[column]
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_datetime64_any_dtype(series):
            continue
        values = series.tolist()
        read = missing_as_none(values, words)
        if read is not values:
            changed[column] = pd.Series(read, index=series.index, dtype=object)
    return frame.assign(**changed) if changed else frame


def unheld(texts: frozenset[str], columns: Iterable[Iterable[Any]]) -> frozenset[str]:
    """`texts` less any that the category or date `columns` hold as a value: a Parquet or JSON Lines table is read
    without pandas' missing words, so its "None" level is a category the model learned, not a missing value."""
    return texts - {value for values in columns for value in values if isinstance(value, str)}


def over_missing_read(model: Mapping[str, Any], given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The user's `--read` options over the model's reading of missing (`missing_read`): the user's keys win, except
    that `na_values` add to the model's, so scoring a table that writes "-" for missing does not lose "?"."""
    given = dict(given or {})
    merged = {**model, **given}
    if "na_values" in model and "na_values" in given:
        merged["na_values"] = list(dict.fromkeys([*model["na_values"], *given["na_values"]]))
    return merged


# Calendar features of a datetime column, in the order the model's inputs list them
DATE_PARTS = ("year", "month", "weekday", "dayofyear")
TIME_PARTS = ("hour",)


def row_number(index: pd.Index, position: int) -> int:
    """The spreadsheet row of the value at `position`: a table read from a file keeps the file's row index (less
    the header's row) through the rows it drops; a frame indexed otherwise counts by position."""
    label = index[position]
    return int(label) + 2 if isinstance(label, numbers.Integral) else position + 2


def calendar_name(column: str, part: str) -> str:
    """The model input that holds one calendar feature of a datetime column."""
    return f"{column}__{part}"


def boolean_text(value: object) -> str | None:
    """'True'/'False' for any spelling of a boolean, None when missing; other values as their text
    (an unseen category to the model, not an error: serving accepts what it has not seen)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or _pandas_missing(value):
        return None
    if isinstance(value, bool):
        return TRUE if value else FALSE
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return TRUE
    if text in FALSE_WORDS:
        return FALSE
    return str(value)


def category_text(value: object) -> str:
    """A category cell's text: a whole number held as a float without its '.0' (an integer code column that pandas
    read as float for its blank cells), so 2.0, 2 and "2" are one category in training, scoring and drift alike."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return str(value)


def _pandas_missing(value: object) -> bool:
    """pandas' NA (a nullable boolean column's missing cell, from Parquet or `convert_dtypes`) or NaT, without
    importing pandas here: when pandas was never imported, no value can be one of them."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and (value is pandas.NA or value is pandas.NaT)


def number_text(text: str) -> tuple[float, str] | None:
    """A number written as text → (value, what was stripped: '' | 'thousands separators' | 'currency sign' |
    'percent sign'); None when it is not one. A percentage is the fraction: '12%' → 0.12."""
    cleaned = text.strip()
    notes = []
    if cleaned[:1] in _CURRENCY or cleaned[-1:] in _CURRENCY:
        cleaned = cleaned.strip(_CURRENCY).strip()
        notes.append("currency sign")
    elif cleaned[:2] in {f"-{c}" for c in _CURRENCY}:
        cleaned = "-" + cleaned[2:].strip()
        notes.append("currency sign")
    percent = cleaned.endswith("%")
    if percent:
        cleaned = cleaned[:-1].strip()
        notes.append("percent sign")
    if _THOUSANDS.match(cleaned):
        cleaned = cleaned.replace(",", "")
        notes.append("thousands separators")
    if not _PLAIN.match(cleaned):
        return None
    if percent:  # the decimal point moved in the text: "57%" is 0.57 exactly as "0.57" reads, not 57 * 0.01
        from decimal import Decimal

        sign, digits, exponent = Decimal(cleaned).as_tuple()  # no arithmetic: no context, no rounding, no overflow
        return float(Decimal((sign, digits, int(exponent) - 2))), ", ".join(notes)
    return float(cleaned), ", ".join(notes)


FLOAT32_MAX = 3.4028234663852886e38  # numpy.finfo(numpy.float32).max: the model file's number inputs are float32


def beyond_float32(values: Any) -> list[int]:
    """Positions of finite numbers float32 cannot hold (|x| > 3.4e38): cast, they become infinities the model's
    imputer passes on, so the row scores as whatever inf makes of it. NaN (missing) and inf are not listed."""
    import numpy as np

    array = np.asarray(values, dtype="float64")
    return np.flatnonzero(np.isfinite(array) & (np.abs(array) > FLOAT32_MAX)).tolist()


def as_numbers(series: pd.Series, column: str) -> pd.Series:
    """A numeric column as float64 the way training reads it: numbers written as text ("3,750", "$12", "45%") too.

    Raises:
        DataError: a value that is no number, naming the column, the value and the row.
    """
    import pandas as pd

    from driftloop.errors import DataError

    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.astype("float64")
    coerced = pd.to_numeric(series, errors="coerce")
    bad = series.notna() & coerced.isna()
    if bad.any():  # numbers written as text: "3,750", "$12", "45%"
        reread = series[bad].map(lambda v: number_text(v) if isinstance(v, str) else None)
        coerced[bad] = reread.map(lambda r: r[0] if r is not None else float("nan"))
        bad = series.notna() & coerced.isna()
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise DataError(
            f"column {column!r}: text in a numeric column: {series.iloc[row]!r} at row {row_number(series.index, row)} "
            f"({int(bad.sum())} non-numeric values; expected numbers)")
    return coerced.astype("float64")


def calendar_parts(value: object, parts: tuple[str, ...], fmt: str = ISO) -> list[float]:
    """The calendar features of one date (text in `fmt`, a `datetime` or a `date`); NaN for each when missing
    or unreadable, which the model's imputer fills, as for a missing number."""
    moment = _moment(value, fmt)
    if moment is None:
        return [math.nan] * len(parts)
    year, month, day, hour = moment
    when = date(year, month, day)
    values = {"year": year, "month": month, "weekday": when.weekday(), "dayofyear": when.timetuple().tm_yday,
              "hour": hour}
    return [float(values[p]) for p in parts]


def _moment(value: object, fmt: str) -> tuple[int, int, int, int] | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, datetime):  # pandas.Timestamp too
        return None if value != value else (value.year, value.month, value.day, value.hour)  # NaT: unequal to itself
    if isinstance(value, date):
        return value.year, value.month, value.day, 0
    return parse(str(value), fmt)
