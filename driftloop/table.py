"""Load a table (CSV, Parquet or JSON Lines, local or s3://) into pandas, with its content hash.

A CSV's delimiter, decimal mark and encoding are sniffed (`sniff_csv`), so a `;`-separated
file with decimal commas from a spreadsheet reads as the table it is; `data.read` in the
spec overrides any of them when the guess is wrong.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.constants import WHITESPACE_SEP
from driftloop.errors import DataError
from driftloop.storage import plain_name, read_bytes, sha256

if TYPE_CHECKING:
    import pandas as pd

    from driftloop.spec import DataSpec


@dataclass(frozen=True)
class LoadedTable:
    frame: pd.DataFrame
    uri: str
    sha256: str


def load_table(uri: str, *, fmt: str = "auto", read: Mapping[str, Any] | None = None,
               nested_ok: Callable[[str], bool] | None = None) -> LoadedTable:
    """Read a table and check it is not empty.

    Args:
        read: CSV options that override the sniffed ones (`sep`, `decimal`, `thousands`, `na_values`,
            `keep_default_na`, `encoding`: the spec's `data.read`).
        nested_ok: whether a column may hold nested values (a Parquet list): one the model leaves out.

    Raises:
        StorageError: the file or object does not exist.
        DataError: the content is not a readable, non-empty table.
    """
    import pandas as pd

    file_bytes = read_bytes(uri)
    raw = decompressed(file_bytes, uri)
    kind = table_format(uri, fmt)
    options = _csv_reading(raw, uri, read) if kind == "csv" else {}
    try:
        if kind == "parquet":
            frame = pd.read_parquet(io.BytesIO(raw))
        elif kind == "jsonl":
            raw = _complete_lines(raw)
            if not raw.strip():
                raise pd.errors.EmptyDataError("no lines")
            # one object per line (e.g. `driftloop serve`'s prediction log); keep values as written, and
            # parse floats exactly: the fast parser drops the last digit, which a KS test sees as drift
            frame = pd.read_json(io.BytesIO(raw), lines=True, dtype=False, convert_dates=False,
                                 precise_float=True)
        else:
            frame = _as_written(pd.read_csv(io.BytesIO(raw), **options), options)
    except pd.errors.EmptyDataError:
        raise DataError(f"{uri}: the table is empty (no header, no rows)") from None
    except Exception as e:  # parser errors come in many types; all mean the same to a user
        expected = "JSON Lines (one object per line)" if kind == "jsonl" else kind
        raise DataError(f"{uri}: cannot parse as {expected}: {str(e).splitlines()[0]}") from e
    if kind == "parquet":  # outside the parse: a failure here is not "cannot parse as parquet"
        frame = _index_as_columns(frame)
    if len(frame) == 0:
        raise DataError(f"{uri}: the table has a header but no rows")
    # row i is the file's row i (a Parquet file keeps the index of the frame it was saved from): errors count on it
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    _check_unique(list(frame.columns), uri)
    if kind == "parquet":  # a CSV cell is text; JSON lines are prediction logs, whose `_probabilities` are objects
        _check_flat(frame, uri, nested_ok or (lambda column: False))
    return LoadedTable(frame=frame, uri=uri, sha256=sha256(file_bytes))  # the file's, as lineage names the file


def _csv_reading(raw: bytes, uri: str, read: Mapping[str, Any] | None) -> dict[str, Any]:
    """`csv_options` for a CSV whose header was checked to be one (`_check_csv_header`): every reader's first step."""
    options = csv_options(raw, uri, read)
    _check_csv_header(raw, uri, options)
    return options


def _as_written(frame: pd.DataFrame, options: Mapping[str, Any]) -> pd.DataFrame:
    """A frame `pandas.read_csv` read with `options`, with a decimal-comma file's dotted thousands as numbers."""
    if options.get("decimal") == "," and "thousands" not in options:
        return _dot_thousands(frame)
    return frame


def _dot_thousands(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns pandas left as text in a decimal-comma file because of a dot between thousands (Excel in a German
    locale writes 4.229,89 and 1.234), read as the numbers they are: per column, and only when every cell is such a
    number. Not `thousands="."` for the whole file: pandas would strip any dot, reading 31.12.2023 as 31122023.

    Cells with a percent or currency sign after them ("12,5 %", "1.234,50 €") are such numbers too: they keep it, now
    around a dot decimal, so the one reading of "12.5%" and "$3" (`canonical.number_text`) takes them from there.
    """
    import pandas as pd

    for column in frame.columns:
        series = frame[column]
        if series.dtype != object:
            continue
        text = series.dropna().astype(str).str.strip()
        core = text.str.rstrip(_SIGNS)  # a sign after the number, as these locales write it ("$1,200" is not one)
        dotted = core.map(lambda v: bool(_DOT_THOUSANDS.match(v)))
        signed = core != text
        if not (dotted.any() or signed.any()) \
                or not (dotted | core.map(lambda v: bool(_COMMA_NUMBER.match(v)))).all():
            continue
        plain = core.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
        if not signed.any():
            frame[column] = pd.to_numeric(plain).reindex(series.index)  # the blank cells back, as NaN
            continue
        # the core is the cell less its trailing sign: the new number, then that sign
        rewritten = [new + cell[len(old):] for cell, old, new in zip(text, core, plain, strict=True)]
        frame[column] = pd.Series(rewritten, index=text.index, dtype=object).reindex(series.index)
    return frame


_SIGNS = "$€£¥₹% \u00a0"  # what may surround a number in a spreadsheet cell (\u00a0: a no-break space before €)


_NESTED = (dict, list, tuple, set)


def _check_flat(frame: pd.DataFrame, uri: str, nested_ok: Callable[[str], bool]) -> None:
    """DataError for a column of nested values (a Parquet list or struct): a model takes one number,
    text, boolean or date per cell, and a nested one would be read as the text of a dict, or fail deep in a step.
    A column `nested_ok` passes is the caller's: one the model leaves out."""
    for column in frame.columns:
        if nested_ok(str(column)):
            continue
        nested = nested_cells(frame[column])
        if nested.any():
            row = int(nested.to_numpy().nonzero()[0][0])
            drop = shlex.quote(f"feature.drop={json.dumps([str(column)], ensure_ascii=False)}")
            raise DataError(f"{uri}: column {column!r} holds nested values ({type(frame[column].iloc[row]).__name__} at "
                            f"row {row + 2}); expected one number, text, boolean or date per cell; a model leaves it "
                            f"out with --set {drop}")


def nested_cells(series: pd.Series) -> pd.Series:
    """Which cells of a column hold a nested value (a Parquet list or struct)."""
    import numpy as np
    import pandas as pd

    if series.dtype != object:  # a typed column holds no Python lists
        return pd.Series(False, index=series.index)
    return series.map(lambda v: isinstance(v, (*_NESTED, np.ndarray))).astype(bool)


def load_training_table(data: DataSpec, *, uri: str | None = None,
                        left_out: Callable[[str], bool] | None = None) -> tuple[LoadedTable, int]:
    """The spec's training table, read with `data.read`, less the rows without a target when
    `data.drop_missing_target` (the default); and how many rows were dropped.

    Args:
        uri: read this copy of the table instead of `data.path` (a KFP task's Dataset artifact).
        left_out: whether the spec leaves a column out of the model (`FeatureSpec.leaves_out`): it may hold anything.

    Raises:
        DataError: unreadable, or every row's target is missing.
    """
    source = uri or data.path
    table = load_table(source, fmt=data.format, read=data.read.options(), nested_ok=left_out)
    if not data.drop_missing_target:
        return table, 0
    kept, dropped = drop_missing_target(table, data.target)
    if dropped and kept.frame.empty:
        raise DataError(f"{data.path}: target column {data.target!r} is missing in every row ({dropped} rows)")
    return kept, dropped


def dropped_line(dropped: int, data: DataSpec) -> str:
    """What the console says about the dropped rows."""
    return f"dropped {dropped} rows with a missing target {data.target!r} (data.drop_missing_target)"


def drop_missing_target(table: LoadedTable, target: str) -> tuple[LoadedTable, int]:
    """The table without the rows whose `target` is missing, and how many those were.

    A table without the target column comes back whole: validation names that problem.
    The content hash stays the file's, which is what lineage records.
    """
    if target not in table.frame.columns:
        return table, 0
    missing = table.frame[target].isna()
    dropped = int(missing.sum())
    if not dropped:
        return table, 0
    # each row keeps its index, the file's row number less 2: an error names the row a spreadsheet shows
    kept = table.frame.loc[~missing].copy()
    kept[target] = whole_labels(kept[target])
    return LoadedTable(frame=kept, uri=table.uri, sha256=table.sha256), dropped


def whole_labels(labels: pd.Series) -> pd.Series:
    """A target column without missing cells, with whole numbers that pandas read as float (for the blanks since
    dropped) as the integers the file holds: classes 0 and 1, not 0.0 and 1.0 (`positive_class: 1` names one)."""
    if labels.dtype.kind == "f" and bool(((labels == labels.round()) & (labels.abs() <= 2**53)).all()):
        return labels.astype("int64")
    return labels


def read_columns(uri: str, *, fmt: str = "auto", read: Mapping[str, Any] | None = None) -> list[str]:
    """The table's column names from its header (CSV) or schema (Parquet), without parsing its rows.

    Raises:
        StorageError: the file or object does not exist.
        DataError: no readable header, or a column name given twice.
    """
    import pandas as pd

    kind = table_format(uri, fmt)
    if kind == "jsonl":
        return list(load_table(uri, fmt=kind).frame.columns)
    raw = decompressed(read_bytes(uri), uri)
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            # as `load_table` reads them: a named index is a column, first, and an unnamed one (__index_level_N__) not
            schema = pq.read_schema(io.BytesIO(raw))
            meta = schema.pandas_metadata or {}
            index = [c for c in meta.get("index_columns", []) if isinstance(c, str)]
            columns = [str(c) for c in [*index, *(c for c in schema.names if c not in index)]
                       if not _UNNAMED_INDEX.fullmatch(str(c))]
            if len(index) == 1 and _UNNAMED_INDEX.fullmatch(index[0]) and CSV_INDEX_NAME not in columns and any(
                    c.get("field_name") == index[0] and (c.get("pandas_type") in ("datetime", "datetimetz")
                                                         or str(c.get("numpy_type")).startswith("period"))
                    for c in meta.get("columns", [])):
                columns.insert(0, CSV_INDEX_NAME)  # an unnamed date index: a column (`_index_as_columns`)
        else:
            options = _csv_reading(raw, uri, read)
            columns = [str(c) for c in pd.read_csv(io.BytesIO(raw), nrows=0, **options).columns]
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
    fix = "set data.read.sep to the file's separator (for one or more spaces: --set \"data.read.sep='\\s+'\")"
    read_hint = header_hint(columns, [target], fix)
    if read_hint is None and len(columns) == 1:  # one column is no table to train on: the header did not split
        read_hint = f"the header was read as 1 column(s), {str(columns[0])[:80]!r}: {fix}"
    raise DataError(f"{source}: target column {target!r} not found{f'; {read_hint}' if read_hint else hint}")


# the read option by name: `--read` of predict and drift, `read` of the KFP drift task, `drift.read` of an MLTrainingJob
READ_FLAG_HINT = ("set the read option sep to the file's separator, as the model's data.read did (for one or more "
                  "spaces: --read 'sep=\\s+')")


_UNNAMED_INDEX = re.compile(r"__index_level_[0-9]+__")
_SEPARATORS = re.compile(r"[;|\t]")


def header_hint(columns: list[Any], wanted: list[str], fix: str) -> str | None:
    """Why `wanted` columns are not among `columns` when the header itself was misread, and `fix` for a header
    that did not split; None when it looks read right (the columns are simply other ones)."""
    names = [str(c) for c in columns]
    if names and names[0].lstrip().startswith("#"):  # "# Data source: …" (with commas or not)
        return (f"the first line, {','.join(names)[:80]!r}, was read as the header: remove the comment lines above "
                "the header")
    # a header that did not split: read whole as one column ("Weight Waist Pulse", R's '"Weight" "Waist"'), or with a
    # separator left inside its names (a spreadsheet's "mass g;bill mm"); "Weight Change" beside "island" is a name
    unsplit = [name for name in names if _SEPARATORS.search(name)] or (names if len(names) == 1 else [])
    words = {word.strip().strip("\"'") for name in unsplit
             for word in [*_SEPARATORS.split(name), *name.split(","), *name.split()]}
    if any(w in words and w not in names for w in wanted):
        return f"the header was read as {len(names)} column(s), {', '.join(names)[:80]!r}: {fix}"
    return None


def padding_hint(columns: list[Any], wanted: list[str]) -> str | None:
    """Why a model's columns " age", " city" are missing from a padded CSV: a model trained before such files were
    read without their padding (`padded_lines`) named its columns with the space; None when that is not why."""
    names = {str(c) for c in columns}
    padded = [w for w in wanted if w != w.lstrip() and w.lstrip() in names]
    if not padded:
        return None
    return (f"the model's columns were read with the space after each delimiter ({padded[0]!r}): read this file so "
            "too, with the read option skipinitialspace=false")


def full_uri(path: str) -> str:
    """A URI as given (`s3://…`), a local path made absolute: what lineage records, valid from anywhere."""
    if "://" in path:
        return path
    return str(Path(path).expanduser().resolve())


def _check_csv_header(raw: bytes, uri: str, options: Mapping[str, Any]) -> None:
    """pandas renames a repeated CSV header to `x.1`, which would train on a column nobody named: refuse it."""
    import pandas as pd

    if "names" in options:  # read from the header line by the sniffer
        _check_unique(list(options["names"]), uri)
        return
    header_options = {k: v for k, v in options.items() if k in ("sep", "encoding", "skipinitialspace")}
    try:
        header = pd.read_csv(io.BytesIO(raw), header=None, nrows=3, dtype=str, keep_default_na=False,
                             **header_options)
    except pd.errors.EmptyDataError:
        return
    except Exception:  # noqa: BLE001 - the full read below reports what is wrong with the file
        return
    _check_unique([str(c) for c in header.iloc[0].tolist()] if len(header) else [], uri)
    if len(header) == 3 and _orange_annotations([str(c) for c in header.iloc[1]], [str(c) for c in header.iloc[2]],
                                                tab_file=plain_name(uri).lower().endswith(".tab")):
        types, flags = ", ".join(dict.fromkeys(header.iloc[1])), ", ".join(c for c in dict.fromkeys(header.iloc[2]) if c)
        raise DataError(f"{uri}: lines 2 and 3 are Orange's type and flag rows ({types[:60]!r}; {flags[:40]!r}), not "
                        "data: save the table without them (Orange's Save Data: untick 'Add type annotations to "
                        "header') or delete those two lines")


# Orange's .tab (and its annotated CSV) header: names, then each column's type, then its flags
_ORANGE_TYPES = {"c", "d", "s", "t", "continuous", "discrete", "string", "time"}
_ORANGE_FLAGS = {"class", "meta", "c", "m", "i", "ignore", "w", "weight"}


def _orange_annotations(types: list[str], flags: list[str], *, tab_file: bool) -> bool:
    """Whether two rows under the header are Orange's annotations: each type a type word or a list of the values
    (`no yes`), each flag a flag word (or an attribute, `key=value`), and one of them a whole word (`continuous`,
    `class`), unless the file is a `.tab`, whose short forms (`c`, `d`, `m`) are its own: two rows of letter grades
    or shirt sizes are a table's. Read as data, a column of numbers failed as text ('continuous' at row 2), and a
    table of categories had a class named 'class'."""
    types = [t.strip() for t in types]
    flags = [f.strip() for f in flags]
    if not all(t.lower() in _ORANGE_TYPES or " " in t or not t for t in types) or 2 * sum(map(bool, types)) < len(types):
        return False
    tokens = [token.lower() for f in flags for token in f.split()]
    if not all(token in _ORANGE_FLAGS or "=" in token for token in tokens):
        return False
    words = [t.lower() for t in types if len(t) > 1 and t.lower() in _ORANGE_TYPES] + [t for t in tokens if len(t) > 1
                                                                                      and "=" not in t]
    return bool(words) or (tab_file and bool(tokens or any(t.lower() in _ORANGE_TYPES for t in types)))


def _check_unique(columns: list[str], uri: str) -> None:
    seen: set[str] = set()
    for column in columns:
        if column in seen:
            raise DataError(f"{uri}: column name {column!r} appears more than once; each column needs its own name")
        seen.add(column)


def _complete_lines(raw: bytes) -> bytes:
    """JSON Lines without a last line that a writer has not finished.

    `driftloop serve` appends to its prediction log while a drift check may read it, so the read can
    end inside a line. A last line without its newline that does not parse is that write in progress,
    as log shippers (Fluent Bit, Vector) treat it; one that parses is a file saved without a final newline.
    """
    import orjson

    cut = raw.rfind(b"\n")
    tail = raw[cut + 1:]
    if cut < 0 or not tail.strip():
        return raw
    try:
        orjson.loads(tail)
    except orjson.JSONDecodeError:
        return raw[:cut + 1]
    return raw


# A compressed CSV or JSON Lines file (as pandas reads it, and as scikit-learn ships its own tables), by its magic
# bytes, not its name: a name can lie, and a wrong codec would only say "not text". Parquet compresses inside.
_COMPRESSIONS = ((re.compile(b"\x1f\x8b"), "gzip"), (re.compile(b"BZh[1-9](1AY&SY|\\x17rE8P\\x90)"), "bz2"),
                 (re.compile(b"\xfd7zXZ\x00"), "xz"), (re.compile(b"PK(\x03\x04|\x05\x06)"), "zip"))
_MAC_EXTRAS = re.compile(r"(^|/)(__MACOSX/|\._)")  # what macOS's Finder adds to a zip it makes


def _codec(raw: bytes) -> str | None:
    return next((name for magic, name in _COMPRESSIONS if magic.match(raw)), None)


def _packed(start: bytes) -> bool:
    """Whether bytes (a file's first 512 will do) are compressed or a plain tar."""
    return _codec(start) is not None or start[257:262] == b"ustar"


def decompressed(raw: bytes, uri: str) -> bytes:
    """The file's bytes, unpacked if they are gzip, bz2, xz, a one-file zip archive, or a one-file tar in one of them.

    Raises:
        DataError: the archive is damaged or encrypted, or does not hold exactly one file, itself not compressed.
    """
    _refuse_workbook(raw, uri)
    if not _packed(raw):
        return raw
    codec = _codec(raw)
    import bz2
    import gzip
    import lzma
    import tarfile
    import zipfile
    import zlib

    try:
        if codec == "zip":
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                members = [m for m in archive.infolist() if not m.is_dir() and not _MAC_EXTRAS.search(m.filename)]
                _refuse_workbook(raw, uri, [m.filename for m in members])
                if len(members) != 1:
                    names = ", ".join(m.filename for m in members[:5]) or "none"
                    raise DataError(f"{uri}: a zip archive of {len(members)} files ({names}); expected one table")
                if members[0].flag_bits & 0x1:
                    raise DataError(f"{uri}: {members[0].filename} is encrypted in the zip archive; unpack it first")
                unpacked = archive.read(members[0])
        elif codec is not None:
            unpacked = {"gzip": gzip.decompress, "bz2": bz2.decompress, "xz": lzma.decompress}[codec](raw)
        else:
            unpacked, codec = raw, "tar"
        if unpacked[257:262] == b"ustar":  # a .tar.gz: its one file
            with tarfile.open(fileobj=io.BytesIO(unpacked)) as archive:
                files = [m for m in archive.getmembers() if m.isfile() and not _MAC_EXTRAS.search(m.name)]
                if len(files) != 1:
                    raise DataError(f"{uri}: a tar archive of {len(files)} files; expected one table")
                extracted = archive.extractfile(files[0])
                assert extracted is not None  # a regular file
                unpacked = extracted.read()
    except (OSError, EOFError, ValueError, RuntimeError, NotImplementedError, zlib.error, lzma.LZMAError,
            zipfile.BadZipFile, tarfile.TarError) as e:
        raise DataError(f"{uri}: a damaged or unreadable {codec} file ({e})") from None
    inner = _codec(unpacked)
    if inner is not None:
        raise DataError(f"{uri}: a {inner} file inside the {codec} file; unpack it to one level")
    return unpacked


_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an Excel 97-2003 workbook (and any other Office 97 file)


def _refuse_workbook(start: bytes, uri: str, members: list[str] | None = None) -> None:
    """DataError for a spreadsheet workbook, which is no table file: a .xls read as CSV said "not text in encoding
    'cp1252'; set data.read.encoding", and a .xlsx "a zip archive of 10 files", each sending the user the wrong way.

    Args:
        members: the file names in a zip archive (an .xlsx or .ods is one).
    """
    names = set(members or [])
    if start.startswith(_OLE2):  # .doc and .msg files are made so too
        kind = "an Excel 97-2003 workbook (.xls) or another Office 97-2003 file"
    elif "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names):
        kind = "an Excel workbook (.xlsx)"
    elif "mimetype" in names and "content.xml" in names:  # .odt too
        kind = "an OpenDocument file (an .ods spreadsheet?)"
    else:
        return
    raise DataError(f"{uri}: {kind}, not a table file; save the sheet as CSV (or Parquet) and give that")


def csv_chunks(uri: str, *, rows: int, read: Mapping[str, Any] | None = None,
               text_columns: Collection[str] = ()) -> Iterator[pd.DataFrame]:
    """A CSV table as frames of at most `rows` rows, read as `load_table` reads it (sniffed dialect, `read` on top),
    so a table larger than memory can be scored: a local file is read from disk a chunk at a time (its encoding found
    in one pass of 1 MiB blocks), and only an s3:// object or an archive is held whole, as bytes. The row index runs on
    from chunk to chunk, so errors name the file's row. `text_columns` are read as text in every chunk, as written.

    Raises:
        StorageError: the file or object does not exist.
        DataError: the content is not a readable, non-empty table (at the chunk where it stops being one).
    """
    import pandas as pd

    path = _plain_local_file(uri)
    if path is None:  # s3, or packed: the whole (unpacked) bytes
        raw = decompressed(read_bytes(uri), uri)
        options, source = _csv_reading(raw, uri, read), io.BytesIO(raw)
    else:  # read where it lies: memory holds one chunk, whatever the file's size
        head = _head(path)
        _refuse_workbook(head, uri)
        given = {**(read or {})}
        given["encoding"] = given.get("encoding") or _file_encoding(path)
        options, source = _csv_reading(head, uri, given), path
    if text_columns:
        options = {**options, "dtype": {**options.get("dtype", {}), **dict.fromkeys(text_columns, str)}}
    seen = 0
    try:
        for chunk in pd.read_csv(source, chunksize=rows, **options):
            if chunk.empty:  # a header without rows
                continue
            chunk = _as_written(chunk, options)
            chunk.columns = [str(c) for c in chunk.columns]
            if not seen:
                _check_unique(list(chunk.columns), uri)
            seen += len(chunk)
            yield chunk
    except pd.errors.EmptyDataError:
        raise DataError(f"{uri}: the table is empty (no header, no rows)") from None
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - parser errors come in many types; all mean the same to a user
        raise DataError(f"{uri}: cannot parse as csv: {str(e).splitlines()[0]}") from e
    if not seen:
        raise DataError(f"{uri}: the table has a header but no rows")


_HEAD_BYTES = 64 * 1024  # what `sniff_csv` reads of a file


def _plain_local_file(uri: str) -> Path | None:
    """`uri` as a local path when it is a file that is no archive, which pandas can read in chunks from disk."""
    from driftloop.storage import is_s3

    path = Path(uri)
    if is_s3(uri) or not path.is_file():  # a missing file gets `read_bytes`'s error
        return None
    try:
        with path.open("rb") as f:
            start = f.read(512)
    except OSError:  # unreadable: `read_bytes` says so in its words
        return None
    return None if _packed(start) else path


def _head(path: Path) -> bytes:
    """The first bytes of a file, as many as `sniff_csv` reads and one more, so it knows the file goes on; and at
    least the whole header line, which `_check_csv_header` reads (a table of thousands of columns has a long one)."""
    with path.open("rb") as f:
        head = f.read(_HEAD_BYTES + 1)
        while b"\n" not in head and (more := f.read(1 << 20)):
            head += more
    return head


def _file_encoding(path: Path) -> str:
    """`_encoding_of` the whole file, read a block at a time."""
    import codecs

    with path.open("rb") as f:
        first = f.read(_HEAD_BYTES)
        if first.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
            return _encoding_of(first)
        decoder = codecs.getincrementaldecoder("utf-8")()
        block = first
        try:
            while block:
                decoder.decode(block)
                block = f.read(1 << 20)
        except UnicodeDecodeError:
            return "cp1252"
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:  # it ends in a byte that starts no complete character: not utf-8 either
        return "cp1252"
    return "utf-8"


CSV_INDEX_NAME = "Unnamed: 0"  # what pandas names the column `to_csv` writes a frame's unnamed index in


def _index_as_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """A Parquet file's named index levels as the columns they are (`df.set_index("month").to_parquet()` keeps
    `month` in the file, and pandas reads it back as the index), as a CSV written with its index has them; an unnamed
    index is row labels, dropped as before (a CSV's is `Unnamed: 0`, which roles leave out as an id), unless it holds
    dates: then it is when each row was, the column `Unnamed: 0` that the CSV of the same frame has (roles read it
    as a date column), not labels to drop with no word (arch's vix: "no feature columns left")."""
    import pandas as pd

    if isinstance(frame.index, pd.RangeIndex):  # row positions, even when named: no column in the file either
        return frame
    if frame.index.name is None and isinstance(frame.index, (pd.DatetimeIndex, pd.PeriodIndex)) \
            and CSV_INDEX_NAME not in frame.columns:
        dates = frame.index.astype(str) if isinstance(frame.index, pd.PeriodIndex) else frame.index  # 2020-01, as CSV
        return frame.set_axis(pd.RangeIndex(len(frame))).assign(**{CSV_INDEX_NAME: list(dates)}) \
            [[CSV_INDEX_NAME, *frame.columns]]
    names = list(frame.index.names)
    # by position: two levels may share a name (the first one is the column then), and a name a column has is not
    levels = [i for i, name in enumerate(names)
              if name is not None and str(name) not in frame.columns and names.index(name) == i]
    return frame.reset_index(level=levels) if levels else frame


def table_format(uri: str, fmt: str = "auto") -> str:
    """`parquet`, `jsonl` or `csv`: as given, else from the file name (`.csv.gz` is a csv)."""
    if fmt != "auto":
        return fmt
    name = plain_name(uri).lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    return "csv"


SNIFF_DELIMITERS = (",", ";", "\t", "|")  # in order of preference when two parse equally well
_SNIFF_LINES = 50
_COMMA_DECIMAL = re.compile(r"^[-+]?\d+,\d+$")
_DOT_DECIMAL = re.compile(r"^[-+]?\d*\.\d+$")
# German/European spreadsheet numbers: a dot between thousands ("4.229,89", "1.234"); "1.234" alone could be 1.234
_DOT_THOUSANDS = re.compile(r"^[-+]?[1-9]\d{0,2}(\.\d{3})+(,\d+)?$")  # not "0.125", not "31.12.2023"
_COMMA_NUMBER = re.compile(r"^[-+]?\d+(,\d+)?$")


@dataclass(frozen=True)
class CsvDialect:
    """What `sniff_csv` found: the options pandas needs to read the file as the table it is."""

    sep: str
    decimal: str
    encoding: str
    names: tuple[str, ...] | None = None  # the header's names when each is in single quotes (statsmodels' spector.csv)
    padded: bool = False  # a space after each delimiter ("id, age, city"): not part of the cells
    codes: tuple[str, ...] = ()  # columns of codes written with leading zeros ("02134"): read as text, as written


def csv_options(raw: bytes, uri: str, read: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`pandas.read_csv` keyword arguments: the sniffed dialect, with the spec's `data.read` on top.

    Raises:
        DataError: the bytes are not text in the given encoding.
    """
    given = {k: v for k, v in (read or {}).items() if v is not None}
    dialect = sniff_csv(raw, encoding=given.get("encoding"), uri=uri, sep=given.get("sep"))
    # round_trip: each number is the float its text names, as Python's float() and a JSON body read it; pandas' own
    # parser is off by one unit in the last place for a third of 17-digit floats (`to_csv` writes them so), which
    # `predict` wrote back changed and a KS test on ties reads as a shift. Parsing takes about 2.5x as long.
    options: dict[str, Any] = {"sep": dialect.sep, "decimal": given.get("decimal", dialect.decimal),
                               "encoding": dialect.encoding, "float_precision": "round_trip"}
    if given.get("skipinitialspace", dialect.padded):  # else " Paris" is a category, and `, "Paris, FR"` two cells
        options["skipinitialspace"] = True
    if dialect.codes:  # "02134" stays "02134", in every chunk and every table that has it
        options["dtype"] = dict.fromkeys(dialect.codes, str)
    if dialect.names is not None:  # the header's quotes only: a row's "Smith, John" and 'nineties stay as pandas reads them
        options["names"], options["header"] = list(dialect.names), 0
    if "thousands" in given:
        options["thousands"] = given["thousands"]
    if "na_values" in given:
        options["na_values"] = list(given["na_values"])
    if given.get("keep_default_na") is False:  # pandas then reads only na_values as missing: a blank cell stays one
        options["keep_default_na"] = False
        options["na_values"] = ["", *options.get("na_values", [])]
    return options


def sniff_csv(raw: bytes, *, encoding: str | None = None, uri: str = "table", sep: str | None = None) -> CsvDialect:
    """Delimiter (`,` `;` tab `|`, unless `sep` is given), decimal mark, encoding and single-quoted header names of a
    CSV, from its first lines.

    The delimiter is the candidate that splits the sampled lines into the same number (> 1) of
    fields most often; a decimal comma is assumed only when the delimiter is not a comma and the
    sampled cells hold numbers like `3,5` (or `4.229,89`) and none like `3.5`. With a decimal comma, a column
    whose every cell is such a number, some with a dot between thousands (`4.229,89`, `1.234`), is read as numbers
    by `load_table` (`_dot_thousands`); a column of `31.12.2023` stays text, for the date reader.

    Example:
        >>> sniff_csv(b"a;b\\n1,5;2\\n")
        CsvDialect(sep=';', decimal=',', encoding='utf-8', names=None, padded=False, codes=())
    """
    encoding = encoding or _encoding_of(raw)
    try:
        head = raw[:_HEAD_BYTES].decode(encoding, errors="strict" if len(raw) <= _HEAD_BYTES else "ignore")
    except UnicodeDecodeError as e:
        from driftloop.errors import DataError

        raise DataError(f"{uri}: not text in encoding {encoding!r} (byte {e.start}); set data.read.encoding") from None
    lines = [line for line in head.lstrip("\ufeff").splitlines()[:_SNIFF_LINES] if line.strip()]
    if len(raw) > _HEAD_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the sample may end mid-line
    sep = sep or _delimiter(lines)
    names = _single_quoted_names(lines[0], sep) if lines else None
    padded = padded_lines(lines, sep)
    rows = [row.split() for row in lines[1:]] if sep == WHITESPACE_SEP else \
        list(csv.reader(lines[1:], delimiter=sep, skipinitialspace=padded))
    # "12,5 %" and "99,90 €" are numbers; "$1,200" stays as it is: a leading sign is US or UK grouping
    cells = [cell.strip().rstrip(_SIGNS) for row in rows for cell in row]
    grouped = [bool(_DOT_THOUSANDS.match(c)) for c in cells]
    # "4.229,89" says comma decimals; "1.234" says nothing (1.234 or 1234), so it is no dot-decimal evidence
    comma = sum(bool(_COMMA_DECIMAL.match(c)) or (g and "," in c) for c, g in zip(cells, grouped, strict=True))
    dot = sum(bool(_DOT_DECIMAL.match(c)) and not g for c, g in zip(cells, grouped, strict=True))
    decimal = "," if sep != "," and comma and not dot else "."
    header = (lines[0].split() if sep == WHITESPACE_SEP else
              next(csv.reader(lines[:1], delimiter=sep, skipinitialspace=padded), [])) if lines else []
    return CsvDialect(sep=sep, decimal=decimal, encoding=encoding, names=names, padded=padded,
                      codes=_coded_columns(list(names) if names is not None else header, rows))


def _coded_columns(header: list[str], rows: list[list[str]]) -> tuple[str, ...]:
    """The columns whose sampled cells are codes with leading zeros ("00501", "02134"; `written_as_codes`, as roles
    judge a text column): pandas reads "00501" as 501 when every cell is digits, so a ZIP code column trained as
    numbers (or as the categories '501', '2134'), while a chunk with a Canadian 'K1A0B1' read it as text."""
    from driftloop.canonical import written_as_codes

    return tuple(name for i, name in enumerate(header)
                 if written_as_codes([row[i] for row in rows if len(row) > i and row[i].strip()]))


def padded_lines(lines: list[str], sep: str) -> bool:
    """Whether a space follows each delimiter ("id, age, city", as R's `write.table(sep=", ")` and hand-written files
    have it): every name after the first starts with one, and so do the cells of most sampled rows (a blank cell may
    have none). Then a space after any delimiter is padding, in every row."""
    if sep in (WHITESPACE_SEP, " ") or not lines:
        return False

    def spaced(line: str, *, blanks: bool) -> bool:
        parts = line.split(sep)
        return len(parts) > 1 and all(part.startswith(" ") and part.strip() or (blanks and not part.strip())
                                      for part in parts[1:])

    rows = lines[1:]
    return spaced(lines[0], blanks=False) and 2 * sum(spaced(row, blanks=True) for row in rows) > len(rows)


_QUOTED_NAME = r"\s*'([^']*)'\s*"


def _single_quoted_names(header: str, sep: str) -> tuple[str, ...] | None:
    """The names of a header line whose every name is in single quotes ('OBS' 'GPA', as statsmodels ships some
    tables; 'first name' too), else None: the CSV standard's double quotes are pandas' own."""
    if sep in (WHITESPACE_SEP, " "):
        if not re.fullmatch(f"(?:{_QUOTED_NAME})+", header):
            return None
        return tuple(re.findall(_QUOTED_NAME, header))
    found = [re.fullmatch(_QUOTED_NAME, field) for field in header.split(sep)]
    return tuple(m.group(1) for m in found if m) if found and all(found) else None


def _encoding_of(raw: bytes) -> str:
    """A BOM's encoding ('utf-8-sig' strips it), else utf-8 when the bytes decode, else cp1252 (Excel on Windows)."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:  # anywhere, the last bytes too: the whole file is here, no sample cut mid-character
        return "cp1252"
    return "utf-8"


def _delimiter(lines: list[str]) -> str:
    best, best_score = ",", (0, 0)
    for candidate in SNIFF_DELIMITERS:
        # a space after the delimiter may open a quoted cell (`1, "Paris, FR"`): one cell, as in the padded read
        widths = [len(row) for row in csv.reader(lines, delimiter=candidate, skipinitialspace=True)]
        if not widths or widths[0] < 2:
            continue
        # lines that agree with the header's width, then more fields; ties keep the earlier candidate
        score = (sum(w == widths[0] for w in widths), widths[0])
        if score > best_score:
            best, best_score = candidate, score
    return best
