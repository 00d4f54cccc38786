"""A CSV read in chunks and written as one Parquet file has the types a whole-table read gives it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from driftloop.parquet_parts import ParquetParts
from driftloop.table import csv_chunks, load_table

# chunks of 3 rows: each column's type changes between chunks, as a long file's do between 50,000-row chunks
CSV = """id,year,code,note,flag,score
1,2007,10,,True,0.5
2,2008,11,,False,1.5
3,2009,12,,True,2.5
4,,13,first note,False,3
5,2011,A7,,,4.25
6,2012,15,last,True,-1
7,2013,16,,False,1e3
"""


def _chunked_parquet(csv: Path, folder: Path, rows: int) -> pd.DataFrame:
    parts = ParquetParts(folder)
    for chunk in csv_chunks(str(csv), rows=rows):
        parts.add(chunk)
    parts.write(folder / "whole.parquet")
    assert [p.name for p in folder.iterdir()] == ["whole.parquet"]  # the parts are gone
    return pd.read_parquet(folder / "whole.parquet")


@pytest.mark.parametrize("rows", [1, 3, 100])
def test_chunks_written_as_one_parquet_file_read_back_as_the_whole_table_reads(tmp_path: Path, rows: int) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text(CSV)
    (tmp_path / "out").mkdir()
    got = _chunked_parquet(csv, tmp_path / "out", rows)
    whole = load_table(str(csv)).frame
    # year: int, then float with its blank -> float throughout; code: int, then text with A7 -> text "10", not
    # "10.0"; note: blank (float) until text -> text with missing cells; flag: bool with a blank -> what pandas has
    assert dict(whole.dtypes.astype(str)) == {"id": "int64", "year": "float64", "code": "object", "note": "object",
                                              "flag": "object", "score": "float64"}
    assert got["code"].tolist() == ["10", "11", "12", "13", "A7", "15", "16"]
    assert got["year"].tolist()[:3] == [2007.0, 2008.0, 2009.0] and pd.isna(got["year"][3])
    assert got["note"].isna().tolist() == whole["note"].isna().tolist()
    assert got["flag"].tolist()[:4] == [True, False, True, False] and pd.isna(got["flag"][4])
    pd.testing.assert_frame_equal(got.drop(columns=["flag"]), whole.drop(columns=["flag"]))


def test_an_integer_beyond_2_53_with_a_blank_in_another_chunk_is_a_float_as_a_whole_read_has_it(tmp_path: Path) -> None:
    """The safe cast refused 9007199254740993 as a float (an order id with a blank in a later chunk)."""
    csv = tmp_path / "ids.csv"
    csv.write_text("order,x\n9007199254740993,1\n9007199254740995,2\n,3\n")
    (tmp_path / "out").mkdir()
    got = _chunked_parquet(csv, tmp_path / "out", 2)
    pd.testing.assert_frame_equal(got, load_table(str(csv)).frame)
