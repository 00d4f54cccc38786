"""The nearest valid name for a misspelt one, shared by every "did you mean" message."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def nearest(name: str, options: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=cutoff)
    return close[0] if close else None
