"""Durations as people write them in a cooldown: `90s`, `30m`, `6h`, `1d`, `0`."""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(text: str) -> float:
    """Seconds in `text`; a bare number is seconds.

    Raises:
        ValueError: naming what was expected (pydantic and the CLI turn it into one line).

    Example:
        >>> parse_duration("6h")
        21600.0
    """
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration; expected a number with s, m, h or d, e.g. 30m or 6h")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def format_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
