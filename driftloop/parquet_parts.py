"""One Parquet file written a chunk at a time, when the column types are known only after the last chunk.

A CSV read in chunks gets each chunk's types from that chunk's cells: an integer column with a blank in chunk 9
is float there, a text column blank throughout chunk 1 is float there, a code column of digits until a letter is
an integer until then. A Parquet file has one schema. So each chunk is kept as a part file, the types are settled
over all of them as a whole-table read would have settled them, and the parts are then copied into one file
under that schema: memory holds one chunk, never the table.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


class ParquetParts:
    """Frames added one at a time, written as one Parquet file by `write`."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._parts: list[Path] = []
        self._schemas: list[pa.Schema] = []
        self._blank: list[set[str]] = []  # per part, the columns it has no value in: their type there says nothing

    def add(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        # without pandas' metadata: it records this chunk's dtypes, which the settled schema may change
        table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
        path = self._folder / f"part-{len(self._parts):06d}.parquet"
        pq.write_table(table, path)
        self._parts.append(path)
        self._schemas.append(table.schema)
        self._blank.append({name for name in table.column_names if table.column(name).null_count == len(table)})

    def discard(self) -> None:
        """Remove the parts, written to no file."""
        for part in self._parts:
            part.unlink(missing_ok=True)
        self._parts, self._schemas, self._blank = [], [], []

    def write(self, path: Path) -> None:
        """Every part, in order, into `path` under the settled schema; the parts are removed as they are copied."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        names = self._schemas[0].names
        schema = pa.schema([(name, settled_type([s.field(name).type for s in self._schemas],
                                                [name in blank for blank in self._blank])) for name in names])
        with pq.ParquetWriter(path, schema) as writer:
            for part in self._parts:
                table = pq.read_table(part)
                writer.write_table(pa.table([_as_type(table.column(name), schema.field(name).type) for name in names],
                                            schema=schema))
                part.unlink()


def settled_type(types: list[pa.DataType], blank: list[bool]) -> pa.DataType:
    """The type a whole-table read gives a column whose chunks had `types` (`blank`: the chunk has no value in it, so
    pandas made it a float or a null whatever the column holds elsewhere): one type where the others agree; a float
    for integers and floats (a blank somewhere); text where any chunk had text (or the chunks disagree otherwise)."""
    import pyarrow as pa

    kinds = list(dict.fromkeys(t for t, empty in zip(types, blank, strict=True) if not empty))
    if not kinds:
        return types[0]
    if len(kinds) == 1:
        return kinds[0]
    if all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in kinds):
        return pa.float64()
    return pa.string()


def _as_type(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray | pa.Array:
    import pyarrow as pa

    if column.type == target:
        return column
    if column.null_count == len(column):
        return pa.nulls(len(column), target)
    if pa.types.is_string(target):  # numbers as the text the file had: 2009, not 2009.0; True as pandas writes it
        return pa.array([_as_text(v) for v in column.to_pylist()], pa.string())
    # unsafe: an integer beyond 2**53 (an order id) with a blank in another chunk is a float, as a whole-table read
    # makes it, rounded, where the safe cast refused it
    return column.cast(target, safe=False)


def _as_text(value: Any) -> str | None:
    """A cell as the text of a text column: a whole float without its '.0' (`category_text`); NaN is missing."""
    from driftloop.canonical import category_text

    if value is None or (isinstance(value, float) and value != value):
        return None
    return category_text(value)
