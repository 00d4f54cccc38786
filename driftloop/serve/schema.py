"""Request bodies → validated ONNX feeds, against the model's own input schema.

Every accepted layout is first brought to one columnar form (column → sequence of raw
values), so validation and conversion exist once. Row layouts (`instances`,
`dataframe_records`) pay one list comprehension per column; columnar layouts
(`inputs`, `dataframe_split`) skip per-row dict handling altogether, which is what
makes 100-row requests cheap.

Rows that training accepted are accepted here too: a null or NaN number is a missing value, which the
imputer inside the model file fills, and so is a category or date text that training read as missing
(pandas' `NA`, `None`, `null`, empty, ...; `OnnxModel.missing_texts`), on every route alike; a JSON
boolean in a category column is the category `True`/`False`, as pandas' bool column became in training; in a boolean column `"yes"`,
`"1"`, `"true"` are `True` too. A number written as text (`"3,750"`, `"$12"`, `"45%"`) is read
as training read it, and a date column takes the date text and computes the calendar features
the model takes (`driftloop.canonical`, shared with training and `OnnxModel.feed`).

Every rule names the column (and the row when there is one): a missing or unknown
column, a wrong type, an infinite number, a number beyond float32's range
(the model's input type: `1e39` would become inf and a null prediction) → 400; too
many rows → 413.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import chain
from typing import Any

import numpy as np

from driftloop.canonical import (
    DEFAULT_MISSING_TEXTS,
    FLOAT32_MAX,
    boolean_text,
    calendar_name,
    calendar_parts,
    category_text,
    missing_as_none,
    number_text,
)
from driftloop.serve.errors import ClientError

Columns = dict[str, Sequence[Any]]

_ROW_KEYS = ("instances", "dataframe_records")
_KNOWN_KEYS = ("instances", "inputs", "dataframe_records", "dataframe_split")


@dataclass(frozen=True)
class InputSchema:
    """The model's raw columns: numbers (float32 [N,1]) and categories (string [N,1])."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    max_rows: int
    # column → the model file's input name (`OnnxModel.input_names`); clients send the columns' own names
    input_names: dict[str, str] | None = None
    datetime: dict[str, list[str]] | None = None  # date column → its calendar features (`OnnxModel.datetime`)
    # date columns the model file reads as text itself (sent with the categories): column → training's format
    date_formats: dict[str, str] | None = None
    boolean: frozenset[str] = frozenset()  # categories read as 'True'/'False' in any spelling
    # training's columns the model left out (id, constant, dropped): a row of the training table still has them
    ignored: frozenset[str] = frozenset()
    # the category and date texts training read as missing (`OnnxModel.missing_texts`)
    missing: frozenset[str] = DEFAULT_MISSING_TEXTS

    # cached: these are read on every request, and the fields of a frozen schema never change
    @cached_property
    def dates(self) -> tuple[str, ...]:
        return tuple(self.datetime or {})

    @cached_property
    def columns(self) -> tuple[str, ...]:
        return self.numeric + self.dates + self.categorical

    @cached_property
    def texts(self) -> frozenset[str]:
        """The columns sent as text: dates and categories."""
        return frozenset(self.dates + self.categorical)

    @cached_property
    def _column_set(self) -> frozenset[str]:
        return frozenset(self.columns)

    @cached_property
    def number_missing(self) -> frozenset[str]:
        """Number cells written as text that mean missing: pandas' own (a numeric column cannot hold "NA" as a value,
        whatever keep_default_na said) and the model's `na_values` ("?" in a UCI table)."""
        return DEFAULT_MISSING_TEXTS | self.missing

    def describe(self) -> list[dict[str, str]]:
        """KServe-style input metadata: name and datatype of each column, in positional order."""
        return ([{"name": c, "datatype": "FP32", "kind": "number"} for c in self.numeric]
                + [{"name": c, "datatype": "BYTES", "kind": "datetime"} for c in self.dates]
                + [{"name": c, "datatype": "BYTES", "kind": _text_kind(c, self.boolean, self.date_formats)}
                   for c in self.categorical])

    def columns_of(self, payload: Any) -> tuple[Columns, int]:
        """Any accepted JSON body → (column → values, number of rows), the texts training read as missing as None."""
        columns, n = self._json_columns(payload)
        return self.read_missing(columns), n

    def read_missing(self, columns: Columns) -> Columns:
        """The text columns (categories, dates) with the texts training read as missing as None, as every route
        reads them: what the client meant by "NA" is what the training table meant, and the prediction log, which
        `driftloop drift` reads, holds it as missing too. The columns of a body too malformed for that are left to
        the feed's messages."""
        missing = self.missing
        for name in self.texts:
            values = columns.get(name)
            if values is not None and type(values) is not np.ndarray:  # binary BYTES tensors come decoded as lists
                columns[name] = missing_as_none(values, missing)
        return columns

    def _json_columns(self, payload: Any) -> tuple[Columns, int]:
        if not isinstance(payload, dict):
            raise ClientError(400, f"body must be a JSON object with one of {', '.join(_KNOWN_KEYS)}; "
                                   f"got a JSON {type(payload).__name__}")
        keys = [k for k in _KNOWN_KEYS if k in payload]
        if len(keys) != 1:
            found = ", ".join(sorted(payload)) or "nothing"
            raise ClientError(400, f"body must have exactly one of {', '.join(_KNOWN_KEYS)}; found {found}")
        key = keys[0]
        value = payload[key]
        if key == "dataframe_split":
            return self._split(value)
        if key == "inputs" and isinstance(value, dict):
            return self._columnar(value, key)
        if key == "inputs" and _looks_like_v2(value):
            raise ClientError(400, "inputs: this is an Open Inference Protocol (V2) body (a list of named tensors); "
                                   "send it to POST /v2/models/<name>/infer")
        if key in _ROW_KEYS or key == "inputs":
            return self._rows(value, key)
        raise AssertionError(key)  # pragma: no cover

    def check_rows(self, n: int, where: str) -> None:
        """400 for no rows, 413 for more than `max_rows`."""
        if n == 0:
            raise ClientError(400, f"{where}: no rows")
        if n > self.max_rows:
            raise ClientError(413, f"{where}: {n} rows is over the limit of {self.max_rows} rows per request")

    def check_names(self, names: Any, where: str) -> None:
        """400 naming the first missing, unknown or repeated column; the columns the model ignores may come along."""
        if self.ignored:
            names = [n for n in names if n not in self.ignored]
        if len(names) == len(self.columns) and self._column_set == set(names):
            return
        missing = [c for c in self.columns if c not in names]
        if missing:
            raise ClientError(400, f"{where}: column {missing[0]!r} is missing (model inputs: {', '.join(self.columns)})")
        unknown = [c for c in names if c not in self.columns]
        if unknown:
            raise ClientError(400, f"{where}: unknown column {str(unknown[0])!r} (model inputs: {', '.join(self.columns)})")
        raise ClientError(400, f"{where}: a column is given more than once")

    def _rows(self, rows: Any, where: str) -> tuple[Columns, int]:
        if not isinstance(rows, list):
            raise ClientError(400, f"{where}: expected a list of rows, got a JSON {type(rows).__name__}")
        self.check_rows(len(rows), where)
        first = rows[0]
        if isinstance(first, list):
            return self._positional(rows, where)
        # Fast path: one comprehension per column. A dict row that has every column and as many
        # keys as there are columns has no unknown one; anything else is diagnosed row by row.
        try:
            columns = {c: [row[c] for row in rows] for c in self.columns}
            whole = set(map(len, rows)) == {len(self.columns)} and all(type(row) is dict for row in rows)
        except (KeyError, TypeError, IndexError):
            whole = False
        if not whole:
            self._diagnose_rows(rows, where)
        return columns, len(rows)

    def _diagnose_rows(self, rows: list[Any], where: str) -> None:
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise ClientError(400, f"{where}[{i}]: expected an object keyed by column, got a JSON {type(row).__name__}")
            self.check_names(list(row), f"{where}[{i}]")
        if not self.ignored:
            raise AssertionError("rows looked malformed but every row checks out")  # pragma: no cover

    def _positional(self, rows: list[Any], where: str) -> tuple[Columns, int]:
        """Rows as lists in the order `GET /v1/models/<name>` lists the inputs."""
        width = len(self.columns)
        for i, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != width:
                got = f"{len(row)} values" if isinstance(row, list) else f"a JSON {type(row).__name__}"
                raise ClientError(400, f"{where}[{i}]: expected a list of {width} values in the order "
                                       f"{', '.join(self.columns)}; got {got}")
        return dict(zip(self.columns, zip(*rows, strict=True), strict=True)), len(rows)

    def _columnar(self, columns: dict[str, Any], where: str) -> tuple[Columns, int]:
        self.check_names(list(columns), where)
        unnested = _unnest_all([columns[name] for name in self.columns])
        if unnested is not None:  # every column an [N,1] tensor of one N: the loop below would give the same
            n = len(unnested[0])
            self.check_rows(n, where)
            result = dict(columns)
            result.update(zip(self.columns, unnested, strict=True))
            return result, n
        n = None
        columns = dict(columns)
        for name in self.columns:
            values = columns[name]
            if not isinstance(values, list):
                raise ClientError(400, f"{where}: column {name!r}: expected a list of values, got a JSON {type(values).__name__}")
            if values and isinstance(values[0], list):  # a [N,1] tensor, as TF-Serving / MLflow clients send it
                values = columns[name] = _unnest(values, f"{where}: column {name!r}")
            if n is None:
                n = len(values)
            elif len(values) != n:
                raise ClientError(400, f"{where}: column {name!r} has {len(values)} values, the others {n}")
        assert n is not None
        self.check_rows(n, where)
        return columns, n

    def _split(self, split: Any) -> tuple[Columns, int]:
        where = "dataframe_split"
        if not isinstance(split, dict) or not isinstance(split.get("columns"), list) or not isinstance(split.get("data"), list):
            raise ClientError(400, f"{where}: expected an object with 'columns' (list of names) and 'data' (list of rows)")
        names, data = split["columns"], split["data"]
        for i, name in enumerate(names):
            if not isinstance(name, str):  # pandas writes a MultiIndex's names as lists
                raise ClientError(400, f"{where}.columns[{i}]: expected a column name (text), "
                                       f"got a JSON {type(name).__name__}")
        self.check_names(names, where)
        self.check_rows(len(data), where)
        width = len(names)
        for i, row in enumerate(data):
            if not isinstance(row, list) or len(row) != width:
                got = f"{len(row)} values" if isinstance(row, list) else f"a JSON {type(row).__name__}"
                raise ClientError(400, f"{where}.data[{i}]: expected {width} values (one per column), got {got}")
        return dict(zip(names, zip(*data, strict=True), strict=True)), len(data)

    def columns_of_csv(self, text: str) -> tuple[Columns, int]:
        """MLflow's `text/csv` body: a header row of column names, then one line per row."""
        import csv
        import io

        # As pandas reads it (MLflow's server): a quoted cell keeps its line breaks (a reader over
        # `splitlines()` would join "a\nb" into "ab", and split rows on \u2028 or \x0c), and a UTF-8 BOM
        # (Excel's "CSV UTF-8") is not part of the first column's name
        from driftloop.table import padded_lines

        text = text.removeprefix("\ufeff")
        # a file padded after each comma ("gre, gpa, rank"), as training and `predict` read it: without the padding
        padded = padded_lines(text[:65536].splitlines()[:50], ",")
        reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=padded)
        try:
            lines = list(reader)
        except csv.Error as e:  # e.g. a cell over the csv module's field limit (128 KiB)
            raise ClientError(400, f"csv line {reader.line_num}: {e}") from None
        if not lines:
            raise ClientError(400, "csv: empty body")
        names, data = lines[0], [line for line in lines[1:] if line]
        if names and names[0] == "" and "" not in self.columns:
            # `DataFrame.to_csv()` writes its index first under an empty name; pandas' reader makes it
            # "Unnamed: 0" and MLflow's schema enforcement drops it, so the index is not a column here either
            names, data = names[1:], [line[1:] for line in data]
        if not self._column_set.issubset(names):  # before naming a missing column: was the header split at all?
            _check_csv_header(names, [c for c in self.columns if c not in names])
        self.check_names(names, "csv")
        self.check_rows(len(data), "csv")
        for i, row in enumerate(data):
            if len(row) != len(names):
                raise ClientError(400, f"csv line {i + 2}: expected {len(names)} values, got {len(row)}")
        columns: dict[str, Sequence[Any]] = dict(zip(names, zip(*data, strict=True), strict=True))
        missing = self.number_missing
        for name in self.numeric:
            columns[name] = [_csv_number(v, name, row, missing) for row, v in enumerate(columns[name])]
        for name in self.categorical:
            columns[name] = _as_pandas_reads(columns[name])
        return self.read_missing(columns), len(data)

    @cached_property
    def _inputs(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The model file's input names of the number and category columns, in `numeric`/`categorical` order."""
        inputs = self.input_names or {}
        return tuple(inputs.get(c, c) for c in self.numeric), tuple(inputs.get(c, c) for c in self.categorical)

    def feed(self, columns: Columns) -> dict[str, np.ndarray]:
        """Validated [N,1] arrays: float32 for numbers, str objects for categories.

        The common case (plain JSON numbers and text) is checked and converted for all number columns
        at once and for all category columns at once: a one-row request then costs two numpy calls
        instead of two per column. Anything else takes the per-column path, which names the column and
        row that are wrong, so the answers are the same either way.
        """
        numeric_inputs, categorical_inputs = self._inputs
        feed: dict[str, np.ndarray] = {}
        if self.numeric:
            block = _number_block([columns[name] for name in self.numeric])
            if block is None:
                feed.update((key, _numbers(columns[name], name, self.number_missing))
                            for key, name in zip(numeric_inputs, self.numeric, strict=True))
            else:
                feed.update(zip(numeric_inputs, block, strict=True))
        inputs = self.input_names or {}
        for name, parts in (self.datetime or {}).items():
            for part, values in zip(parts, _calendar(columns[name], name, tuple(parts)), strict=True):
                feed[inputs.get(calendar_name(name, part), calendar_name(name, part))] = values
        for name, fmt in (self.date_formats or {}).items():
            # the graph reads text it cannot parse as a missing date; a client sent it as a date, so say so
            _check_dates(columns[name], name, fmt)
        if self.categorical:
            boolean = self.boolean
            try:
                block = _text_block([[_boolean(v, name, row) for row, v in enumerate(columns[name])]
                                     if name in boolean else columns[name] for name in self.categorical])
            except ClientError:  # the per-column path reports the first wrong column in column order
                block = None
            if block is None:
                feed.update((key, _categories(columns[name], name, boolean=name in boolean))
                            for key, name in zip(categorical_inputs, self.categorical, strict=True))
            else:
                feed.update(zip(categorical_inputs, block, strict=True))
        return feed


def _check_csv_header(names: list[str], missing: list[str]) -> None:
    """A header that did not split on commas (a `;`-separated spreadsheet export) said as such, not as the first
    model column missing: MLflow's `text/csv` body is comma-separated, as pandas' default reader takes it."""
    from driftloop.table import header_hint

    hint = header_hint(names, missing, "a text/csv body is comma-separated (MLflow's scoring format); write it with "
                                       "DataFrame.to_csv() or send JSON")
    if hint is not None:
        raise ClientError(400, f"csv: {hint}")


_NUMBER_TYPES = frozenset({int, float, type(None)})


def _number_block(columns: list[Sequence[Any]]) -> np.ndarray | None:
    """Every number column as one float32 [columns, N, 1] array when each value is a JSON number or null
    (NaN: missing) within float32's range; None sends the caller to the per-column path that names the
    culprit (text, a boolean, inf, an overflow). The type test is exact: a bool is not an int here."""
    if type(columns[0]) is np.ndarray:  # binary V2 tensors
        return _float_array_block(columns)
    types: set[type] = set()
    for values in columns:
        if type(values) is np.ndarray:  # iterating its numpy scalars one by one (~20 µs at 100 rows) would only
            return None  # find that they fail the type test below
        types.update(map(type, values))
    if not types <= _NUMBER_TYPES:
        return None
    try:
        block = np.array(columns, dtype=np.float64)
    except (OverflowError, ValueError):  # an int beyond float64
        return None
    return _checked_block(block, len(columns))


def _float_array_block(columns: list[Sequence[Any]]) -> np.ndarray | None:
    """Binary V2 float tensors (1-D arrays of one length) as one block, checked as the per-column path checks
    each (`_numbers`): stacking promotes to the widest float, which holds every value exactly, so the range
    test and the cast to float32 give what they give column by column. Integer tensors go column by column:
    int64 -> float64 -> float32 could round twice where int64 -> float32 rounds once."""
    if not all(type(c) is np.ndarray and c.ndim == 1 and c.dtype.kind == "f" for c in columns):
        return None
    if len(set(map(len, columns))) != 1:
        return None
    return _checked_block(np.stack(columns), len(columns))


def _checked_block(block: np.ndarray, count: int) -> np.ndarray | None:
    if block.ndim != 2 or (np.abs(block) > FLOAT32_MAX).any():  # NaN compares False: it is a missing value
        return None
    return block.astype(np.float32).reshape(count, -1, 1)


def _text_block(columns: list[Sequence[Any]]) -> np.ndarray | None:
    """Every category column as one object [columns, N, 1] array when each value is text; else None."""
    types: set[type] = set()
    for values in columns:
        types.update(map(type, values))
    if types != {str}:
        return None
    block = np.empty((len(columns), len(columns[0]), 1), dtype=object)
    block[:, :, 0] = columns
    return block


def _numbers(values: Sequence[Any], column: str, missing: frozenset[str] = DEFAULT_MISSING_TEXTS) -> np.ndarray:
    # numpy's own type inference is the fast check: ints and floats give an int/float array,
    # anything else (text, null, bool, nested lists) gives another kind and a precise message below.
    try:
        array = np.asarray(values)
    except ValueError:  # ragged nested lists
        array = None
    if array is None or array.ndim != 1 or array.dtype.kind not in "iuf":
        array = _checked_numbers(values, column, missing)
    # one check before the cast catches inf sent as such and finite numbers float32 cannot hold; NaN is a
    # missing value (the model imputes it); ints cannot be either, as int64 is well inside float32's range
    if array.dtype.kind == "f" and not (np.isnan(array) | (np.abs(array) <= FLOAT32_MAX)).all():
        row = int(np.flatnonzero(~(np.isnan(array) | (np.abs(array) <= FLOAT32_MAX)))[0])
        value = values[row]
        if math.isfinite(float(value)):
            raise ClientError(400, f"column {column!r}: {_show(value)} at row {row} is out of range for the model's "
                                   f"float32 input (at most ±{FLOAT32_MAX:.4g})")
        raise ClientError(400, f"column {column!r}: {value!r} at row {row} is not a finite number")
    return array.astype(np.float32).reshape(-1, 1)


def _looks_like_v2(value: Any) -> bool:
    return (isinstance(value, list) and bool(value) and isinstance(value[0], dict)
            and {"name", "datatype", "data"} <= set(value[0]))


def _unnest_all(columns: list[Any]) -> list[list[Any]] | None:
    """Every column of the TF-Serving/MLflow `inputs` body as the flat values, when each is a list of N one-value
    lists (one N for all, N > 0); None for anything else, which `_columnar` checks column by column. One type check
    across all cells, then `[x for [x] in column]`, whose unpacking is the one-value check: 1 row ~4.9 -> ~2.7 µs,
    100 rows ~49 -> ~26 µs for the nine columns of the bench's model."""
    if set(map(type, columns)) != {list} or len(set(map(len, columns))) != 1 or not columns[0]:
        return None
    if set(map(type, chain.from_iterable(columns))) != {list}:
        return None
    try:
        return [[x for [x] in column] for column in columns]
    except ValueError:  # a cell of another length than one
        return None


def _unnest(values: list[Any], where: str) -> list[Any]:
    try:
        if set(map(len, values)) == {1} and all(type(v) is list for v in values):
            return [v[0] for v in values]
    except TypeError:  # a value without a length
        pass
    raise ClientError(400, f"{where}: expected a list of values or of one-value lists ([N,1])")


def _csv_number(text: str, column: str, row: int, missing: frozenset[str] = DEFAULT_MISSING_TEXTS) -> float | None:
    if text in missing:
        return None  # as JSON null: missing, and logged as null
    try:
        return float(text)
    except ValueError:
        parsed = number_text(text)
        if parsed is None:
            raise ClientError(400, f"column {column!r}: {_show(text)} at row {row} is not a number") from None
        return parsed[0]


def _checked_numbers(values: Sequence[Any], column: str,
                     missing: frozenset[str] = DEFAULT_MISSING_TEXTS) -> np.ndarray:
    """The slow path: null is a missing value (NaN); name the first value that is not a number, or convert ints
    too big for int64."""
    values = list(values)
    for row, value in enumerate(values):
        if value is None:
            continue
        if isinstance(value, str):  # a number written as text ("3,750", "12%"), as training read it
            parsed = number_text(value) if value not in missing else (math.nan, "")
            if parsed is None:
                raise ClientError(400, f"column {column!r}: {_show(value)} at row {row} is not a number")
            value = values[row] = None if math.isnan(parsed[0]) else parsed[0]
            if value is None:
                continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ClientError(400, f"column {column!r}: {_show(value)} at row {row} is not a number")
        if isinstance(value, float) and math.isinf(value):
            raise ClientError(400, f"column {column!r}: {value!r} at row {row} is not a finite number")
        if abs(value) > FLOAT32_MAX:
            raise ClientError(400, f"column {column!r}: {_show(value)} at row {row} is out of range for the model's "
                                   f"float32 input (at most ±{FLOAT32_MAX:.4g})")
    return np.asarray([math.nan if v is None else float(v) for v in values], dtype=np.float64)


def _missing(value: Any) -> bool:
    """A JSON null, or NaN (MLflow's client writes a pandas missing value so): missing in a text column too."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _calendar(values: Sequence[Any], column: str, parts: tuple[str, ...]) -> list[np.ndarray]:
    """Date text → one float32 [N,1] array per calendar feature; null is missing (NaN, imputed)."""
    rows = []
    for row, value in enumerate(values):
        if _missing(value):
            value = None
        if value is not None and not isinstance(value, str):
            raise ClientError(400, f"column {column!r}: {_show(value)} at row {row} is not a date (ISO text)")
        features = calendar_parts(value, parts)
        if value is not None and value.strip() and math.isnan(features[0]):
            raise ClientError(400, f"column {column!r}: {_show(value)} at row {row} is not a date "
                                   "(YYYY-MM-DD or YYYY-MM-DD HH:MM:SS)")
        rows.append(features)
    array = np.asarray(rows, dtype=np.float32).reshape(-1, len(parts))
    return [array[:, i:i + 1] for i in range(len(parts))]


def _text_kind(column: str, boolean: frozenset[str], date_formats: dict[str, str] | None) -> str:
    if column in boolean:
        return "boolean"
    return "datetime" if column in (date_formats or {}) else "category"


def _check_dates(values: Sequence[Any], column: str, fmt: str) -> None:
    """Date text in the format training read (null and blank are missing dates, which the model imputes)."""
    from driftloop.dates import parse, unreadable

    for row, value in enumerate(values):
        if _missing(value) or (isinstance(value, str) and (not value.strip() or parse(value, fmt) is not None)):
            continue
        if isinstance(value, str):
            raise ClientError(400, f"column {column!r}: {_show(value)} at row {row} {unreadable(value, fmt)}")
        raise ClientError(400, f"column {column!r}: {_show(value)} at row {row} is not a date (text in {fmt})")


_WHOLE_DECIMAL = re.compile(r"[+-]?[0-9]+\.0*")


def _as_pandas_reads(cells: Sequence[Any]) -> Sequence[Any]:
    """A CSV category cell written as a whole number with a decimal point ("1.0": `DataFrame.to_csv` of a code or
    flag column that pandas read as float for its blanks) as the category training and `driftloop predict` made of
    it, "1". Any other text as written: "01" (a code) and "2.5" stay."""
    return [category_text(float(cell)) if isinstance(cell, str) and _WHOLE_DECIMAL.fullmatch(cell) else cell
            for cell in cells]


def _categories(values: Sequence[Any], column: str, *, boolean: bool = False) -> np.ndarray:
    """Text as is; null as '' (a missing category, which the one-hot encoder ignores), as `OnnxModel.feed` does;
    a boolean as `True`/`False`, the text training made of pandas' bool values (`str(True)`); in a boolean
    column every spelling of one (`yes`, `1`, `true`) as `True`/`False`, as training read them; a number as the
    text training made of it (`category_text`: 2 and 2.0 are "2"), since a code column the spec names categorical
    (`feature.roles`) holds numbers in the training file, which MLflow's client and `to_json` send as numbers."""
    if boolean:
        values = [_boolean(v, column, row) for row, v in enumerate(values)]
    if set(map(type, values)) != {str}:  # C-speed type check; the loop below names what is wrong
        converted = []
        for row, value in enumerate(values):
            if _missing(value):
                converted.append("")
            elif isinstance(value, (str, bool)):
                converted.append(str(value))
            elif isinstance(value, numbers.Integral):  # any size: a 400-digit JSON integer is still its text
                converted.append(str(int(value)))
            elif isinstance(value, numbers.Real) and math.isfinite(value):
                converted.append(category_text(float(value)))
            else:
                raise ClientError(400, f"column {column!r}: {_show(value)} at row {row} is not a category (a string)")
        values = converted
    array = np.empty((len(values), 1), dtype=object)
    array[:, 0] = values
    return array


def _boolean(value: Any, column: str, row: int) -> Any:
    if isinstance(value, (list, dict)):
        raise ClientError(400, f"column {column!r}: {_show(value)} at row {row} is not a boolean")
    return "" if value is None else boolean_text(value)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f"text {value[:40]!r}"
    if isinstance(value, (list, dict)):
        return f"a JSON {'array' if isinstance(value, list) else 'object'}"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    return repr(value)[:40]
