"""The nearest valid name for a misspelt one, shared by every "did you mean" message."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def nearest(name: str, options: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The option closest to `name`; one that differs only in case first (`GDEFL` for `gdefl`, `Species` for
    `species`), which difflib's ratio, comparing characters exactly, scores as nothing alike."""
    options = list(options)
    folded = [option for option in options if option.casefold() == name.casefold()]
    if folded:
        return folded[0]
    close = difflib.get_close_matches(name, options, n=1, cutoff=cutoff)
    return close[0] if close else None
