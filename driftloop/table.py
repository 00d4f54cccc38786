"""Load a table (CSV, Parquet or JSON Lines, local or s3://) into pandas, with its content hash."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

from driftloop.errors import DataError
from driftloop.storage import read_bytes, sha256

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class LoadedTable:
    frame: pd.DataFrame
    uri: str
    sha256: str


def load_table(uri: str, *, fmt: str = "auto") -> LoadedTable:
    """Read a table and check it is not empty.

    Raises:
        StorageError: the file or object does not exist.
        DataError: the content is not a readable, non-empty table.
    """
    import pandas as pd

    raw = read_bytes(uri)
    kind = table_format(uri, fmt)
    try:
        if kind == "parquet":
            frame = pd.read_parquet(io.BytesIO(raw))
        elif kind == "jsonl":
            if not raw.strip():
                raise pd.errors.EmptyDataError("no lines")
            # one object per line (e.g. `driftloop serve`'s prediction log); keep values as written, and
            # parse floats exactly: the fast parser drops the last digit, which a KS test sees as drift
            frame = pd.read_json(io.BytesIO(raw), lines=True, dtype=False, convert_dates=False,
                                 precise_float=True)
        else:
            frame = pd.read_csv(io.BytesIO(raw))
    except pd.errors.EmptyDataError:
        raise DataError(f"{uri}: the table is empty (no header, no rows)") from None
    except Exception as e:  # parser errors come in many types; all mean the same to a user
        expected = "JSON Lines (one object per line)" if kind == "jsonl" else kind
        raise DataError(f"{uri}: cannot parse as {expected}: {str(e).splitlines()[0]}") from e
    if len(frame) == 0:
        raise DataError(f"{uri}: the table has a header but no rows")
    frame.columns = [str(c) for c in frame.columns]
    return LoadedTable(frame=frame, uri=uri, sha256=sha256(raw))


def table_format(uri: str, fmt: str = "auto") -> str:
    """`parquet`, `jsonl` or `csv`: as given, else from the file name."""
    if fmt != "auto":
        return fmt
    name = uri.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    return "csv"
