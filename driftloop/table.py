"""Load a table (CSV, Parquet or JSON Lines, local or s3://) into pandas, with its content hash."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
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
    if kind == "csv":
        _check_csv_header(raw, uri)
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
    _check_unique(list(frame.columns), uri)
    return LoadedTable(frame=frame, uri=uri, sha256=sha256(raw))


def read_columns(uri: str, *, fmt: str = "auto") -> list[str]:
    """The table's column names from its header (CSV) or schema (Parquet), without parsing its rows.

    Raises:
        StorageError: the file or object does not exist.
        DataError: no readable header, or a column name given twice.
    """
    import pandas as pd

    raw = read_bytes(uri)
    kind = table_format(uri, fmt)
    if kind == "jsonl":
        return list(load_table(uri, fmt=kind).frame.columns)
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            columns = [str(c) for c in pq.read_schema(io.BytesIO(raw)).names]
        else:
            _check_csv_header(raw, uri)
            columns = [str(c) for c in pd.read_csv(io.BytesIO(raw), nrows=0).columns]
    except pd.errors.EmptyDataError:
        raise DataError(f"{uri}: the table is empty (no header, no rows)") from None
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - parser errors come in many types
        raise DataError(f"{uri}: cannot parse as {kind}: {str(e).splitlines()[0]}") from e
    _check_unique(columns, uri)
    return columns


def check_target(columns: list[str], target: str, source: str) -> None:
    """Raise DataError naming the nearest column when `target` is not one of `columns`."""
    if target in columns:
        return
    from driftloop.suggest import nearest

    close = nearest(target, columns)
    hint = f"; did you mean {close!r}?" if close else f"; columns are: {', '.join(columns)}"
    raise DataError(f"{source}: target column {target!r} not found{hint}")


def full_uri(path: str) -> str:
    """A URI as given (`s3://…`), a local path made absolute: what lineage records, valid from anywhere."""
    if "://" in path:
        return path
    return str(Path(path).expanduser().resolve())


def _check_csv_header(raw: bytes, uri: str) -> None:
    """pandas renames a repeated CSV header to `x.1`, which would train on a column nobody named: refuse it."""
    import pandas as pd

    try:
        header = pd.read_csv(io.BytesIO(raw), header=None, nrows=1, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return
    except Exception:  # noqa: BLE001 - the full read below reports what is wrong with the file
        return
    _check_unique([str(c) for c in header.iloc[0].tolist()] if len(header) else [], uri)


def _check_unique(columns: list[str], uri: str) -> None:
    seen: set[str] = set()
    for column in columns:
        if column in seen:
            raise DataError(f"{uri}: column name {column!r} appears more than once; each column needs its own name")
        seen.add(column)


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
