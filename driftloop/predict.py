"""Batch scoring: a table in, the same table with predictions out, through the registered ONNX file.

`driftloop predict` is `mlflow models predict` for driftloop models: it takes a registered
version (`@champion` unless told otherwise), reads a CSV or Parquet file or an s3:// object
as training read it (sniffed CSV dialect, same canonical values), scores it in chunks with
the one model file that `driftloop serve` also loads, and writes CSV or Parquet by the output's
suffix. So a batch prediction and a served one for the same row are the same number.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from driftloop.constants import CHAMPION_ALIAS, PREDICTION_COLUMN, PROBABILITY_PREFIX
from driftloop.dates import ISO
from driftloop.errors import DataError, ModelNotFound, UsageError

if TYPE_CHECKING:
    import pandas as pd

    from driftloop.console import Console
    from driftloop.mlflow_gateway import MLflowGateway
    from driftloop.onnx_model import OnnxModel

OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
CHUNK_ROWS = 50_000  # rows per ONNX call: bounds memory, and a progress line per chunk on large files


@dataclass(frozen=True)
class Prediction:
    """What one `driftloop predict` did."""

    model_name: str
    version: str
    rows: int
    output: str
    columns: list[str]  # the columns added to the input's


def output_format(output: str) -> str:
    """`csv` or `parquet` from the output's suffix.

    Raises:
        UsageError: another suffix.
    """
    suffix = Path(output.rsplit("/", 1)[-1]).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise UsageError(f"-o {output}: expected a .csv, .parquet or .jsonl file name")
    return OUTPUT_FORMATS[suffix]


def resolve_version(gateway: MLflowGateway, name: str, *, version: str | None, alias: str | None) -> Any:
    """The registered version to score with: `version`, else the one `alias` (default champion) points at.

    Raises:
        ModelNotFound: no such model, version or alias, naming which.
    """
    if version is not None:
        found = gateway.model_version(name, version)
        if found is None:
            gateway.require_model(name)  # a misspelt model says so, not that its version is missing
            raise ModelNotFound(f"model {name!r} has no version {version} at {gateway.tracking_uri}")
        return found
    alias = (alias or CHAMPION_ALIAS).removeprefix("@")  # `models` shows aliases as @champion
    found = gateway.by_alias(name, alias)
    if found is None:
        gateway.require_model(name)
        raise ModelNotFound(f"model {name!r} has no @{alias} version at {gateway.tracking_uri}")
    return found


def predictions_frame(model: OnnxModel, rows: pd.DataFrame) -> pd.DataFrame:
    """The prediction column (and for classifiers one probability column per class) for raw rows.

    Rows are made canonical as training made them (numbers as float, categories as text), so
    text in a numeric column is an error naming the column and row, not a silent missing value.
    """
    import pandas as pd

    from driftloop.components.columns import ColumnRoles, canonical_frame

    roles = ColumnRoles(target=model.target, numeric=model.numeric, categorical=model.categories,
                        boolean=model.boolean, datetime=model.dates, date_formats=model.date_formats)
    canonical = canonical_frame(rows, roles, with_target=False)
    _check_float32(canonical, roles.numeric)
    for column in roles.datetime:
        _check_dates(canonical[column], column, roles.date_formats.get(column, ISO))
    output = model.run(canonical)
    if model.task != "classification":
        return pd.DataFrame({PREDICTION_COLUMN: output.astype("float64")}, index=rows.index)
    classes = model.classes or []
    labels = pd.Series([classes[i] for i in output.argmax(axis=1)], index=rows.index)
    frame = pd.DataFrame({PREDICTION_COLUMN: labels})
    for i, label in enumerate(classes):
        frame[f"{PROBABILITY_PREFIX}{label}"] = output[:, i].astype("float64")
    return frame


def predict_table(*, gateway: MLflowGateway, model_name: str, data: str, output: str, version: str | None = None,
                  alias: str | None = None, console: Console, read: dict[str, Any] | None = None,
                  chunk_rows: int = CHUNK_ROWS) -> Prediction:
    """Score `data` with a registered version and write it, with the prediction columns, to `output`.

    Args:
        read: CSV options over the sniffed ones (`sep`, `decimal`, `thousands`, `na_values`, `keep_default_na`,
            `encoding`), over the model's own reading of missing values (`OnnxModel.missing_texts`).

    Raises:
        UsageError: `output` is not .csv/.parquet, or both `version` and `alias` are given.
        ModelNotFound: no such model, version or alias.
        DataError, StorageError: the input cannot be read, lacks a model column, or holds text in a numeric one.

    Example:
        >>> predict_table(gateway=connect(None), model_name="churn", data="new.csv", output="scored.csv",
        ...               console=Console())  # doctest: +SKIP
        Prediction(model_name='churn', version='3', rows=1200, output='scored.csv', columns=['prediction', ...])
    """
    from driftloop.canonical import missing_read, missing_texts, missing_words_as_none, over_missing_read
    from driftloop.onnx_model import OnnxModel
    from driftloop.table import load_table, table_format

    if version is not None and alias is not None:
        raise UsageError("give --version or --alias, not both")
    kind = output_format(output)
    from driftloop.table import full_uri

    if full_uri(output) == full_uri(data):  # the rows would be lost for the next run, replaced by their scores
        raise UsageError(f"-o {output} is the --data table itself; write the scores to another file")
    found = resolve_version(gateway, model_name, version=version, alias=alias)
    with tempfile.TemporaryDirectory(prefix="driftloop-predict-") as scratch:
        model = OnnxModel(gateway.download_model(found, Path(scratch)))
        # missing values mean what they meant in training (a level spelled "None" stays one); the form is sniffed
        read = over_missing_read(missing_read(model.missing_texts), read)
        source = table_format(data)
        if source == "csv":
            return _score_streamed(model, model_name, found.version, data=data, output=output, kind=kind, read=read,
                                   chunk_rows=chunk_rows, console=console, scratch=Path(scratch))
        # a nested column the model does not take (a Parquet list) passes through, as it does in training
        table = load_table(data, read=read, nested_ok=lambda column: column not in model.columns).frame
        if source != "csv":  # read without missing words: a number column's "nil" means what it did
            table = missing_words_as_none(table, model.numeric, missing_texts(read))
        _check_columns(model, table, data)
        total = len(table)
        console.info(f"scoring {total} rows of {data} with {model_name} v{found.version}")
        parts = []
        for start in range(0, total, chunk_rows):
            parts.append(predictions_frame(model, table.iloc[start:start + chunk_rows]))
            if total > chunk_rows:
                console.info(f"  {min(start + chunk_rows, total)}/{total} rows")
    import pandas as pd

    added = pd.concat(parts)
    scored = _going_out(table, added, kind)
    _write(_nested_as_json(scored) if kind == "csv" else scored, output, kind)
    _wrote(console, total, list(added.columns), output)
    return Prediction(model_name, str(found.version), total, output, list(added.columns))


def _score_streamed(model: OnnxModel, model_name: str, version: Any, *, data: str, output: str, kind: str, read: dict[str, Any],
                    chunk_rows: int, console: Console, scratch: Path, text_columns: tuple[str, ...] = ()) -> Prediction:
    """A CSV scored chunk by chunk: one chunk in memory (and an s3 object's bytes), not the whole table, its canonical
    copy, the scores and the written text at once (a 47 MB CSV took 626 MB so, and 303 MB into Parquet 1.5 GB). The
    scores go to a scratch file first, and reach `output` only when every chunk was scored: a bad row in the last
    chunk leaves no half-scored file behind. Parquet's chunks are parts until the last one settles the column types.

    A column that is text in one chunk and numbers in another is text in a whole-table read, with its cells as
    written ("02134", "1.50"); read as numbers, a chunk would write 2134. Such a file is scored a second time, with
    those columns read as text (`text_columns`).
    """
    from driftloop.parquet_parts import ParquetParts
    from driftloop.storage import write_file
    from driftloop.table import csv_chunks

    part, total, columns = scratch / f"scored.{kind}", 0, []
    parts = ParquetParts(scratch) if kind == "parquet" else None
    kinds: dict[str, set[str]] = {}  # column → the dtype kinds its chunks with a value in it had
    with part.open("wb") as sink:
        for chunk in csv_chunks(data, rows=chunk_rows, read=read, text_columns=text_columns):
            for name in chunk.columns:
                if chunk[name].notna().any():
                    kinds.setdefault(name, set()).add(chunk[name].dtype.kind)
            if not total:  # a table the model cannot take is its one line, nothing before it
                _check_columns(model, chunk, data)
                console.info(f"scoring {data} with {model_name} v{version}, {chunk_rows} rows at a time")
            added = predictions_frame(model, chunk)
            columns = list(added.columns)
            scored = _going_out(chunk, added, kind)
            if parts is not None:
                parts.add(scored)
            else:
                _write_rows(scored, sink, kind, header=not total)
            total += len(chunk)
            if total >= chunk_rows:
                console.info(f"  {total} rows")
    mixed = tuple(name for name, seen in kinds.items() if "O" in seen and len(seen) > 1)
    if mixed and not text_columns:
        console.info(f"  {', '.join(map(repr, mixed[:5]))}{', ...' if len(mixed) > 5 else ''}: text in some chunks, "
                     "numbers in others; scoring again with them read as text, as a whole-table read has them")
        if parts is not None:
            parts.discard()
        return _score_streamed(model, model_name, version, data=data, output=output, kind=kind, read=read,
                               chunk_rows=chunk_rows, console=console, scratch=scratch, text_columns=mixed)
    if parts is not None:
        parts.write(part)
    write_file(output, part)
    _wrote(console, total, columns, output)
    return Prediction(model_name, str(version), total, output, columns)


def _wrote(console: Console, total: int, columns: list[str], output: str) -> None:
    console.info(f"wrote {total} rows with {', '.join(columns[:3])}{', ...' if len(columns) > 3 else ''} to {output}")


def _check_float32(canonical: pd.DataFrame, numeric: list[str]) -> None:
    """Numbers the model's float32 inputs can hold, as serving asks of them: cast, a larger one becomes an
    infinity, and its row is scored as whatever that makes of it (with numpy's overflow warning, and exit 0).

    Raises:
        DataError: the first such value, naming the column, the value and the row, in serving's words.
    """
    from driftloop.canonical import FLOAT32_MAX, beyond_float32, row_number

    for column in numeric:
        huge = beyond_float32(canonical[column])
        if huge:
            raise DataError(f"column {column!r}: {canonical[column].iloc[huge[0]]:.10g} at row "
                            f"{row_number(canonical.index, huge[0])} is out of range for the model's float32 input "
                            f"(at most ±{FLOAT32_MAX:.4g})")


def _check_dates(texts: pd.Series, column: str, fmt: str) -> None:
    """Date text in the format training read, as serving asks of it: the model file reads any other text as a
    missing date and imputes it, so a table whose dates were rewritten (ISO where training had MM/DD/YYYY) would be
    scored as if it had none. Blank and missing are missing dates. Distinct texts are parsed once.

    Raises:
        DataError: the first row whose date is not one, naming the column, the text, the row and the format.
    """
    from driftloop.canonical import row_number
    from driftloop.dates import parse, unreadable

    bad = {text for text in texts.dropna().unique() if text and parse(text, fmt) is None}
    if bad:
        position = next(i for i, text in enumerate(texts.tolist()) if text in bad)
        text = texts.iloc[position]
        raise DataError(f"column {column!r}: {text!r} at row {row_number(texts.index, position)} "
                        f"{unreadable(text, fmt)}")


def _check_columns(model: OnnxModel, table: pd.DataFrame, source: str) -> None:
    from driftloop.suggest import nearest
    from driftloop.table import READ_FLAG_HINT, header_hint, padding_hint

    missing = [c for c in model.columns if c not in table.columns]
    if missing and (misread := padding_hint(list(table.columns), missing)
                    or header_hint(list(table.columns), missing, READ_FLAG_HINT)):
        raise DataError(f"{source}: {len(missing)} input(s) of the model are missing, {', '.join(map(repr, missing[:5]))}"
                        f"{', ...' if len(missing) > 5 else ''}; {misread}")
    if len(missing) == 1:
        close = nearest(missing[0], [str(c) for c in table.columns])
        hint = f"; did you mean {close!r}?" if close else f"; the model's input columns are: {', '.join(model.columns)}"
        raise DataError(f"{source}: column {missing[0]!r}, an input of the model, is missing{hint}")
    if missing:  # all of them at once: fixing one, running again, and learning of the next helps nobody
        raise DataError(f"{source}: {len(missing)} inputs of the model are missing: {', '.join(map(repr, missing))} "
                        f"(the model's input columns are: {', '.join(model.columns)})")
    clash = [c for c in table.columns if c == PREDICTION_COLUMN or str(c).startswith(PROBABILITY_PREFIX)]
    if clash:
        raise DataError(f"{source}: column {clash[0]!r} would be overwritten by the predictions; rename it")


def _write(frame: pd.DataFrame, output: str, kind: str) -> None:
    """The scored table to a local file or an s3:// object."""
    import io

    from driftloop.storage import write_bytes

    buffer = io.BytesIO()
    _write_rows(frame, buffer, kind)
    write_bytes(output, buffer.getvalue())


def _going_out(rows: pd.DataFrame, added: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The input rows and their scores as they are written: whole numbers in float columns as integers, the prediction
    too (a 0.0/1.0 label, arch's `admit`, is written 0/1 as the input's own column is), the probabilities as they are."""
    prediction = _whole_numbers_plain(added[[PREDICTION_COLUMN]], kind)
    return _whole_numbers_plain(rows, kind).join(prediction).join(added.drop(columns=[PREDICTION_COLUMN]))


def _whole_numbers_plain(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The input columns as they go back out: in CSV and JSON Lines, a whole number in a float column is written as
    the integer it is. pandas reads an integer column with a blank as float, so a streamed chunk with a blank wrote
    its ids `0.0` where the chunks before wrote `0` (a join on them downstream broke), and a whole table wrote 2090
    as `2090.0`. Per value, so every chunk writes a value alike; Parquet keeps its column types."""
    import numpy as np
    import pandas as pd

    if kind == "parquet":
        return frame
    changed = {}
    for column in frame.columns:
        series = frame[column]
        if series.dtype.kind != "f":
            continue
        values = series.to_numpy(dtype="float64")
        whole = np.isfinite(values) & (np.floor(values) == values) & (np.abs(values) < 2.0 ** 53)
        if not whole.any():
            continue
        if kind == "jsonl":  # JSON keeps numbers numbers: 2090, not "2090", and 2090.5 beside it, in every chunk
            numbers = values.astype(object)
            numbers[whole] = values[whole].astype("int64").astype(object)
            changed[column] = pd.Series(numbers, index=series.index, dtype=object)
            continue
        text = series.astype(object)  # CSV: each value as text, the integers plain, the rest as pandas writes them
        fraction = ~whole & ~np.isnan(values)
        text[whole] = values[whole].astype("int64").astype(str)
        text[fraction] = [repr(float(v)) for v in values[fraction]]
        changed[column] = pd.Series(text, index=series.index, dtype=object)
    return frame.assign(**changed) if changed else frame


def _write_rows(frame: pd.DataFrame, sink: BinaryIO, kind: str, *, header: bool = True) -> None:
    """Scored rows into `sink` as `kind`; `header=False` appends them under a CSV's earlier rows."""
    if kind == "parquet":
        frame.to_parquet(sink, index=False)
    elif kind == "jsonl":  # one object per line, as read (a prediction log scored again)
        _write_json_lines(frame, sink)
    else:
        frame.to_csv(sink, index=False, header=header)


def _nested_as_json(frame: pd.DataFrame) -> pd.DataFrame:
    """A Parquet list column passed through, as JSON text in a CSV cell (`["A New Hope", "Return of the Jedi"]`),
    not numpy's `['A New Hope' 'Return of the Jedi']`."""
    import orjson

    from driftloop.table import nested_cells

    rewritten = {}
    for column in frame.columns:
        nested = nested_cells(frame[column])
        if nested.any():
            as_json = frame[column][nested].map(lambda v: orjson.dumps(_json_ready(v), default=_json_default).decode())
            rewritten[column] = frame[column].where(~nested, as_json)
    return frame.assign(**rewritten) if rewritten else frame


def _json_ready(value: Any) -> Any:
    """A nested Parquet value (lists of lists, structs of lists: numpy arrays of objects inside) as plain JSON
    values, at every depth; NaN as null."""
    import math

    import numpy as np

    if isinstance(value, np.ndarray):
        return [_json_ready(v) for v in value.tolist()]
    if isinstance(value, (list, tuple, set)):
        return [_json_ready(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        value = value.item()
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _write_json_lines(frame: pd.DataFrame, sink: BinaryIO) -> None:
    """One JSON object per row, each float written as the shortest text that reads back as itself (orjson, as
    `driftloop serve` writes its log): pandas' `to_json` keeps 10 decimals, so 0.12345678901234567 came back as
    0.123456789, and a probability lost its last digits. Missing values are null; dates ISO 8601."""
    import orjson

    names = [str(c) for c in frame.columns]
    # NaN is missing (JSON has no infinity either: training and serving refuse one); nested values as plain JSON
    columns = [[_json_ready(v) for v in frame[c].tolist()] if frame[c].dtype.kind in "fO" else frame[c].tolist()
               for c in frame.columns]
    for row in zip(*columns, strict=True):
        sink.write(orjson.dumps(dict(zip(names, row, strict=True)),
                                option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY, default=_json_default))


def _json_default(value: Any) -> Any:
    """What orjson does not know: pandas' missing markers as null, anything else as its text."""
    import pandas as pd

    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)
