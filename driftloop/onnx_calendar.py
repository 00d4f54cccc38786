"""The calendar features of a date column, computed inside the model file from the raw date text.

So any runtime given the file (onnxruntime alone, Triton, KServe) turns "28/11/2026" into the year,
month, weekday, day of year and hour that training computed with `driftloop.canonical.calendar_parts`,
with no driftloop code in front of it. Standard ONNX only: `RegexFullMatch` checks the text against the
format's one expression (`driftloop.dates.pattern`), `StringSplit` takes the fields apart, `Cast` reads
them as integers; the weekday is Sakamoto's formula and the day of year a lookup of the days before each
month. Those two string ops arrived in opset 20 (`DATES_OPSET`), so a model with a date column is built
at that opset. Text that does not match, or names no real day, gives NaN features, which the imputer
after them fills as it filled a missing date in training.
"""

from __future__ import annotations

from typing import Any

from driftloop.dates import ISO, MONTHLY, NAMED, SHORT_YEAR, SHORT_YEAR_PIVOT, field_order, hyphened, month_spellings

DATES_OPSET = 20
# days before each month in a common year, and in a common year's months (index 0 unused: months are 1..12)
_DAYS_BEFORE = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334]
_MONTH_DAYS = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
_SAKAMOTO = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4]  # Sakamoto's month offsets (weekday with Sunday = 0)
# a date every format can write: what an unreadable value is swapped for before the fields are cast
_STAND_IN = {"YYYY": "2000", "MM": "1", "DD": "1"}


class _Graph:
    """Nodes and constants under one name prefix, so two date columns never share a tensor name."""

    def __init__(self, prefix: str) -> None:
        self.prefix, self.nodes, self.initializers, self._n = prefix, [], [], 0  # type: list[Any]

    def name(self) -> str:
        self._n += 1
        return f"{self.prefix}{self._n}"

    def const(self, value: Any, dtype: Any) -> str:
        import numpy as np
        from onnx import numpy_helper

        name = self.name()
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, *inputs: str, outputs: int = 1, out: str | None = None, **attributes: Any) -> Any:
        from onnx import helper

        names = [out or self.name()] + [self.name() for _ in range(outputs - 1)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, **attributes))
        return names[0] if outputs == 1 else names

    def piece(self, split: str, index: int) -> str:
        """Piece `index` of a StringSplit output [N,1,K] as [N,1]."""
        return self.op("Gather", split, self.const(index, "int64"), axis=2)

    def split(self, text: str, delimiter: str | None, maxsplit: int) -> str:
        """StringSplit [N,1] → [N,1,K] with K ≥ maxsplit + 1: its output is only as wide as the batch's most
        pieces, so '' pieces are appended (ORT has no string Pad)."""
        attributes: dict[str, Any] = {"maxsplit": maxsplit}
        if delimiter is not None:
            attributes["delimiter"] = delimiter
        pieces = self.op("StringSplit", text, outputs=2, **attributes)[0]
        shape = self.op("Concat", self.op("Shape", pieces, start=0, end=2), self.const([maxsplit + 1], "int64"), axis=0)
        blanks = self.op("Expand", self.const([""], object), shape)
        return self.op("Concat", pieces, blanks, axis=2)  # type: ignore[no-any-return]

    def integer(self, text: str) -> str:
        return self.op("Cast", text, to=7)  # INT64


def stand_in(fmt: str) -> str:
    """A valid date in `fmt`, fed through the fields in place of text that is not one (Cast fails on '')."""
    if fmt == MONTHLY:
        return "2000-01"
    if fmt in NAMED:
        return {"Mon DD, YYYY": "Jan 1, 2000", "DD Mon YYYY": "1 Jan 2000", "DD-Mon-YYYY": "1-Jan-2000",
                SHORT_YEAR: "1-Jan-00"}[fmt]
    sep = fmt[4] if fmt.startswith("YYYY") else fmt[2]
    return sep.join(_STAND_IN[f] for f in fmt.split(sep))


def calendar_graph(text: str, fmt: str, parts: list[str], outputs: dict[str, str], prefix: str) -> tuple[list[Any], list[Any]]:
    """(nodes, initializers) that compute `parts` of the string tensor `text` [N,1] into float32 [N,1]
    tensors named `outputs[part]`."""
    from driftloop.dates import pattern

    g = _Graph(prefix)
    matches = g.op("RegexFullMatch", text, pattern=pattern(fmt))
    readable = g.op("Where", matches, text, g.const([stand_in(fmt)], object))
    year, month, day, time = _fields(g, readable, fmt)
    hour = g.integer(g.op("Where", g.op("Equal", time, g.const([""], object)), g.const(["0"], object),
                          g.piece(g.split(time, ":", 1), 0)))
    valid, leap = _real_day(g, matches, year, month, day)
    safe_month = g.op("Clip", month, g.const(1, "int64"), g.const(12, "int64"))  # Gather needs an index in range
    before = g.op("Gather", g.const(_DAYS_BEFORE, "int64"), g.op("Sub", safe_month, g.const(1, "int64")))
    after_february = g.op("And", leap, g.op("Greater", month, g.const(2, "int64")))
    dayofyear = g.op("Add", g.op("Add", before, day), g.op("Cast", after_february, to=7))
    values = {"year": year, "month": month, "day": day, "dayofyear": dayofyear, "hour": hour,
              "weekday": _weekday(g, year, safe_month, day)}
    nan = g.const(float("nan"), "float32")
    for part in parts:
        g.op("Where", valid, g.op("Cast", values[part], to=1), nan, out=outputs[part])  # FLOAT
    return g.nodes, g.initializers


def _fields(g: _Graph, text: str, fmt: str) -> tuple[str, str, str, str]:
    """(year, month, day) as int64 [N,1] and the time of day as text ('' when none) of readable date text."""
    if fmt == MONTHLY:  # "1949-01": the month's first day, no time of day
        tokens = g.split(text, None, 1)
        fields = g.split(g.piece(tokens, 0), "-", 1)
        year, month = g.integer(g.piece(fields, 0)), g.integer(g.piece(fields, 1))
        day = g.op("Add", g.op("Mul", year, g.const(0, "int64")), g.const(1, "int64"))  # 1, shaped as the year
        return year, month, day, g.piece(tokens, 1)
    named = fmt in NAMED
    spaced = named and not hyphened(fmt)  # "28 Nov 2026": the date's fields are words of their own
    tokens = g.split(text, None, 3 if spaced else 1)  # on runs of spaces, the blanks around dropped
    time = g.piece(tokens, 3 if spaced else 1)
    if spaced:
        written = [g.piece(tokens, i) for i in range(3)]
    else:
        date = g.piece(tokens, 0)
        if fmt == ISO:  # 2026-11-28T13:45: the time follows a T, not a space
            halves = g.split(date, "T", 1)
            date, after_t = g.piece(halves, 0), g.piece(halves, 1)
            time = g.op("Where", g.op("Equal", after_t, g.const([""], object)), time, after_t)
        sep = "-" if named else fmt[4] if fmt.startswith("YYYY") else fmt[2]
        fields = g.split(date, sep, 2)
        written = [g.piece(fields, i) for i in range(3)]
    at_year, at_month, at_day = field_order(fmt)
    if named:
        day = g.integer(g.piece(g.split(written[at_day], ",", 1), 0))  # "28," → 28
        month = _month_number(g, g.piece(g.split(written[at_month], ".", 1), 0))  # "Nov." → Nov
    else:
        day, month = g.integer(written[at_day]), g.integer(written[at_month])
    year = g.integer(written[at_year])
    if fmt == SHORT_YEAR:  # "03" → 2003, "99" → 1999 (`driftloop.dates.full_year`)
        century = g.op("Where", g.op("GreaterOrEqual", year, g.const(SHORT_YEAR_PIVOT, "int64")),
                       g.const(1900, "int64"), g.const(2000, "int64"))
        year = g.op("Add", year, century)
    return year, month, day, time


def _month_number(g: _Graph, word: str) -> str:
    """A month name → 1..12: its position among the spellings (the expression let only those through)."""
    spellings = month_spellings()
    hits = g.op("Cast", g.op("Equal", word, g.const(list(spellings), object)), to=1)  # [N, S]
    position = g.op("ArgMax", hits, axis=1, keepdims=1)
    return g.op("Gather", g.const(list(spellings.values()), "int64"), position, axis=0)  # type: ignore[no-any-return]


def _real_day(g: _Graph, matches: str, year: str, month: str, day: str) -> tuple[str, str]:
    """(the text matched and names a real day, the year is a leap year)."""
    def divides(n: int) -> str:
        return g.op("Equal", g.op("Mod", year, g.const(n, "int64")), g.const(0, "int64"))

    leap = g.op("Or", g.op("And", divides(4), g.op("Not", divides(100))), divides(400))
    safe_month = g.op("Clip", month, g.const(1, "int64"), g.const(12, "int64"))
    length = g.op("Add", g.op("Gather", g.const(_MONTH_DAYS, "int64"), safe_month),
                  g.op("Cast", g.op("And", leap, g.op("Equal", month, g.const(2, "int64"))), to=7))
    checks = [matches, g.op("GreaterOrEqual", year, g.const(1, "int64")),
              g.op("GreaterOrEqual", month, g.const(1, "int64")), g.op("LessOrEqual", month, g.const(12, "int64")),
              g.op("GreaterOrEqual", day, g.const(1, "int64")), g.op("LessOrEqual", day, length)]
    valid = checks[0]
    for check in checks[1:]:
        valid = g.op("And", valid, check)
    return valid, leap


def _weekday(g: _Graph, year: str, month: str, day: str) -> str:
    """Monday = 0, as Python's `date.weekday()`: Sakamoto's formula (Sunday = 0) shifted by six."""
    def div(a: str, n: int) -> str:
        return g.op("Div", a, g.const(n, "int64"))  # truncates; the shifted year is never negative

    shifted = g.op("Sub", year, g.op("Cast", g.op("Less", month, g.const(3, "int64")), to=7))
    total = g.op("Add", g.op("Sub", g.op("Add", shifted, div(shifted, 4)), div(shifted, 100)), div(shifted, 400))
    offset = g.op("Gather", g.const(_SAKAMOTO, "int64"), g.op("Sub", month, g.const(1, "int64")))
    sunday_first = g.op("Mod", g.op("Add", g.op("Add", total, offset), day), g.const(7, "int64"))
    return g.op("Mod", g.op("Add", sunday_first, g.const(6, "int64")), g.const(7, "int64"))  # type: ignore[no-any-return]
