"""Issue 12, items 3 and 4: tables read as they were written, and targets and tasks as a user means them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftloop.components.columns import explain_task
from driftloop.components.evaluate import classification_metrics
from driftloop.components.feature import order_classes
from driftloop.errors import DataError, InvalidSpec
from driftloop.spec import DataSpec, FeatureSpec, as_read_flags, load_spec, read_flags, validate_read
from driftloop.table import load_table, load_training_table, read_columns, sniff_csv

from .conftest import Cli, registry_for

PENGUINS = pd.DataFrame({
    "species": ["Adelie", "Gentoo", None, "Adelie"],
    "island": ["Dream", "Biscoe", "Dream", "Torgersen"],
    "mass": [3750.5, 5000.25, 4100.0, None],
})


# --- reading -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sep", [";", "\t", "|", ","])
def test_delimiter_is_sniffed(tmp_path: Path, sep: str) -> None:
    path = tmp_path / "t.csv"
    PENGUINS.to_csv(path, sep=sep, index=False)
    frame = load_table(str(path)).frame
    assert list(frame.columns) == ["species", "island", "mass"]
    assert frame["mass"].dtype == "float64" and frame["mass"].iloc[1] == 5000.25


def test_every_float_a_table_writes_reads_back_as_itself(tmp_path: Path) -> None:
    """`to_csv` writes floats with 17 digits (0.10099999999999999); pandas' default parser reads a third of them one
    unit in the last place off, which `predict` wrote back changed and a KS test on ties reads as a shift."""
    values = np.random.default_rng(3).random((2000, 3)) * [1, 100, 1e-3]
    frame = pd.DataFrame(values, columns=["a", "b", "c"]).assign(d=0.10099999999999999)
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_csv(tmp_path / "semi.csv", index=False, sep=";", decimal=",")
    for name in ("t.csv", "semi.csv"):
        read = load_table(str(tmp_path / name)).frame
        assert (read.to_numpy() == frame.to_numpy()).all(), name


def test_spreadsheet_export_reads_right_by_default(tmp_path: Path) -> None:
    # what a European spreadsheet writes: a BOM, ';' between cells, decimal commas
    path = tmp_path / "t.csv"
    path.write_bytes(PENGUINS.to_csv(sep=";", decimal=",", index=False).encode("utf-8-sig"))
    assert sniff_csv(path.read_bytes()).sep == ";" and sniff_csv(path.read_bytes()).decimal == ","
    frame = load_table(str(path)).frame
    assert list(frame.columns) == ["species", "island", "mass"]  # no '\ufeffspecies'
    assert frame["mass"].tolist()[:3] == [3750.5, 5000.25, 4100.0]


def test_a_german_export_with_thousands_dots_reads_as_numbers(tmp_path: Path) -> None:
    """Excel in a German locale writes 4.229,89 and 1.234: the dot separates thousands there. Read with a decimal
    comma only, the column stayed text (and was dropped as an id), or 1.234 was read as one point two."""
    path = tmp_path / "umsatz.csv"
    path.write_text("kunde;umsatz;menge;datum\nk0;4.229,89;1.234;31.12.2023\nk1;250,40;7;01.02.2024\n"
                    "k2;2.000;;15.03.2024\nk3;12,5;3;30.04.2024\n")
    dialect = sniff_csv(path.read_bytes())
    assert (dialect.sep, dialect.decimal) == (";", ",")
    frame = load_table(str(path)).frame
    assert frame["umsatz"].tolist() == [4229.89, 250.4, 2000.0, 12.5]
    assert frame["menge"].tolist()[:2] == [1234, 7] and frame["menge"].isna().tolist() == [False, False, True, False]
    # German dates are no numbers: pandas' own thousands="." would read 31.12.2023 as 31122023
    assert frame["datum"].tolist() == ["31.12.2023", "01.02.2024", "15.03.2024", "30.04.2024"]
    dots = tmp_path / "dots.csv"  # a dot decimal anywhere: dots are decimals, nothing is a thousands separator
    dots.write_text("a;b\n1.234;0.5\n2.5;7\n")
    assert sniff_csv(dots.read_bytes()).decimal == "." and load_table(str(dots)).frame["a"].tolist() == [1.234, 2.5]
    small = tmp_path / "small.csv"  # 0.125 is a dot decimal, never 125
    small.write_text("a;b\n0.125;x\n0.5;3,5\n")
    assert load_table(str(small)).frame["a"].tolist() == [0.125, 0.5]


def test_percent_and_currency_cells_of_a_decimal_comma_export_are_numbers(tmp_path: Path) -> None:
    """"12,5 %" and "1.234,50 €" were categories (every new value a "new category"); as "12.5%" and "$3" are."""
    from driftloop.components.columns import canonical_frame
    from driftloop.components.roles import infer
    from driftloop.spec import FeatureSpec

    path = tmp_path / "preise.csv"
    rows = ["kunde;rate;preis;y"] + [f"k{i};{i},5 %;{i}.234,50\u00a0€;{i % 2}" for i in range(1, 31)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert sniff_csv(path.read_bytes()).decimal == ","
    frame = load_table(str(path)).frame
    roles = {r["column"]: (r["role"], r["why"]) for r in infer(frame, "y", FeatureSpec()).table}
    assert roles["rate"] == ("numeric", "parsed from text: percent sign")
    assert roles["preis"] == ("numeric", "parsed from text: currency sign")
    read = canonical_frame(frame, infer(frame, "y", FeatureSpec()))
    assert read["rate"].tolist()[:2] == [0.015, 0.025] and read["preis"].tolist()[:2] == [1234.5, 2234.5]
    # a sign before the number is US or UK grouping: $1,200 is twelve hundred, in a semicolon file too
    dollars = tmp_path / "dollars.csv"
    dollars.write_text("price;qty\n$1,200;3\n$12,500;4\n$3,000;5\n")
    assert sniff_csv(dollars.read_bytes()).decimal == "."
    frame = load_table(str(dollars)).frame
    from driftloop.canonical import as_numbers

    assert as_numbers(frame["price"], "price").tolist() == [1200.0, 12500.0, 3000.0]


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2]], ids=["struct", "list"])
def test_a_parquet_column_of_nested_values_is_one_line(tmp_path: Path, value: object) -> None:
    """It was an internal error (retryable: a Job spent its retries on it) in training, a traceback in drift,
    and the text of a dict, scored as an unknown category, in predict. (JSON lines are not checked: a prediction
    log's own `_probabilities` are objects.)"""
    path = tmp_path / "nested.parquet"
    pd.DataFrame({"x": [1.0, 2.0], "tags": [None, value], "y": [0, 1]}).to_parquet(path)
    with pytest.raises(DataError, match=r"column 'tags' holds nested values \((dict|ndarray) at row 3\); expected one "
                                        r".*; a model leaves it out with --set 'feature.drop=\[\"tags\"\]'$"):
        load_table(str(path))
    # the spec leaving it out (as the error says): it is read, and the roles leave it out
    spec = FeatureSpec(drop=["tags"])
    table, _ = load_training_table(DataSpec(path=str(path), target="y"), left_out=spec.leaves_out)
    assert list(table.frame.columns) == ["x", "tags", "y"]


@pytest.mark.slow
def test_a_parquet_list_column_left_out_trains_and_passes_through_predict_and_drift(cli: Cli) -> None:
    """starwars' `films`: refused however the spec left it out, so the table could not be used at all."""
    from sklearn.datasets import load_wine

    wine = load_wine(as_frame=True).frame
    wine["films"] = [["A New Hope", "Return of the Jedi"] if i % 2 else ["The Force Awakens"] for i in range(len(wine))]
    wine.to_parquet(cli.cwd / "wine.parquet")
    proc = cli("run", "--data", "wine.parquet", "--target", "target", "--model", "wine_films",
               "--set", "feature.drop=[films]", "--set", "train.model=linear")
    assert proc.returncode == 0 and "deployed wine_films v1" in proc.stderr, proc.stderr[-2000:]
    for out in ("scored.parquet", "scored.jsonl", "scored.csv"):
        proc = cli("predict", "--model", "wine_films", "--data", "wine.parquet", "-o", out)
        assert proc.returncode == 0, proc.stderr
    assert pd.read_parquet(cli.cwd / "scored.parquet")["films"].map(list).tolist() == wine["films"].tolist()
    assert [json.loads(line)["films"] for line in (cli.cwd / "scored.jsonl").read_text().splitlines()] == \
        wine["films"].tolist()
    assert pd.read_csv(cli.cwd / "scored.csv")["films"].map(json.loads).tolist() == wine["films"].tolist()
    for reference in ([], ["--reference", "wine.parquet"]):  # the stored sample, or a given table with the column
        proc = cli("drift", "--model", "wine_films", "--current", "wine.parquet", *reference)
        assert proc.returncode == 0, (reference, proc.stderr)


def test_json_lines_read_while_serve_writes_them(tmp_path: Path) -> None:
    """A drift check may read the prediction log while a worker appends to it: the read ends inside a line.
    That unfinished line is left for the next check; a file saved without a final newline keeps its last row."""
    live = tmp_path / "predictions.jsonl"
    live.write_bytes(b'{"a": 1.5, "b": "x"}\n{"a": 2.5, "b": "y"}\n{"a": 3.5, "b": "no')
    assert load_table(str(live)).frame["a"].tolist() == [1.5, 2.5]
    saved = tmp_path / "saved.jsonl"
    saved.write_bytes(b'{"a": 1.5}\n{"a": 2.5}')
    assert load_table(str(saved)).frame["a"].tolist() == [1.5, 2.5]
    broken = tmp_path / "broken.jsonl"  # a bad line that has its newline is the file's fault, not a write in progress
    broken.write_bytes(b'{"a": 1.5}\n{"a": 2.\n{"a": 3.5}\n')
    with pytest.raises(DataError, match=r"broken.jsonl: cannot parse as JSON Lines"):
        load_table(str(broken))
    only = tmp_path / "only.jsonl"  # one unfinished line and nothing else: no rows yet
    only.write_bytes(b'{"a": 1.')
    with pytest.raises(DataError, match=r"only.jsonl: cannot parse as JSON Lines"):
        load_table(str(only))


def test_orange_type_and_flag_rows_under_the_header_are_named(tmp_path: Path) -> None:
    """Orange's .tab files and its annotated CSV carry two rows under the names: each column's type (or its values)
    and its flags. Read as data, a table of numbers failed on 'continuous' at row 2, a table of categories on a class
    named 'class', and `predict` scored the two rows as data."""
    from driftloop.table import csv_chunks

    housing = tmp_path / "housing.csv"  # as `Orange.data.Table.save('housing.csv')` writes it
    housing.write_text("MEDV,CRIM,CHAS\ncontinuous,continuous,continuous\nclass,,\n24,0.006,0\n21.6,0.027,0\n")
    titanic = tmp_path / "titanic.tab"
    titanic.write_text("survived\tstatus\tsex\nno yes\tcrew first second third\td\nclass\t\t\n"
                       "yes\tfirst\tmale\nno\tcrew\tfemale\n")
    for path, rows in ((housing, "'continuous'; 'class'"), (titanic, "'no yes, crew first second third, d'; 'class'")):
        expected = (f"^{path}: lines 2 and 3 are Orange's type and flag rows \\({rows}\\), not data: save the table "
                    "without them")
        for read in (lambda p: load_table(str(p)), lambda p: next(csv_chunks(str(p), rows=10)),
                     lambda p: read_columns(str(p))):
            with pytest.raises(DataError, match=expected):
                read(path)
    # a table whose own rows hold such words is a table: letter grades, shirt sizes, logfmt pairs, a word in one row
    for text in ("kind,role\nd,class\ncontinuous,meta\n", "maths,physics\nc,d\nc,c\nb,a\n",
                 "shirt,trousers\ns,s\nm,m\nl,l\n", "attrs,extra\nlevel=info msg=ok,a=1 b=2\nlevel=warn code=3,c=4\n"):
        plain = tmp_path / "plain.csv"
        plain.write_text(text)
        assert len(load_table(str(plain)).frame) == text.count("\n") - 1
    short = tmp_path / "iris.tab"  # Orange's short forms count in its own .tab
    short.write_text("sepal length\tiris\nc\td\n\tc\n5.1\tIris-setosa\n")
    with pytest.raises(DataError, match="lines 2 and 3 are Orange's type and flag rows"):
        load_table(str(short))


def test_a_spreadsheet_workbook_is_named_as_one(tmp_path: Path) -> None:
    """An .xls read as CSV said "not text in encoding 'cp1252'; set data.read.encoding" (which led on to a tokenizing
    error), and an .xlsx "a zip archive of 10 files"; the whole read and the streamed one both say what it is."""
    import zipfile

    from driftloop.table import csv_chunks

    xlsx = tmp_path / "t.xlsx"
    with zipfile.ZipFile(xlsx, "w") as archive:  # the parts every .xlsx has
        for name in ("[Content_Types].xml", "_rels/.rels", "xl/workbook.xml", "xl/worksheets/sheet1.xml"):
            archive.writestr(name, "<x/>")
    xls = tmp_path / "t.xls"
    xls.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 8)
    for path, kind in ((xlsx, r"an Excel workbook \(\.xlsx\)"), (xls, r"an Excel 97-2003 workbook \(\.xls\) or another Office 97-2003 file")):
        expected = f"^{path}: {kind}, not a table file; save the sheet as CSV \\(or Parquet\\) and give that$"
        with pytest.raises(DataError, match=expected):
            load_table(str(path))
        with pytest.raises(DataError, match=expected):
            next(csv_chunks(str(path), rows=10))


def test_a_compressed_table_reads_as_its_plain_text(tmp_path: Path) -> None:
    """gzip, bz2, xz or a one-file zip, as pandas reads them (scikit-learn ships its digits table as .csv.gz);
    lineage hashes the file as it is. A damaged archive is one line, not "not text in encoding …"."""
    import bz2
    import gzip
    import lzma
    import zipfile

    from sklearn.datasets import data as shipped

    # its first row is pixel values, not names: read as its text reads (pandas would rename the repeats "0.1" …)
    digits = Path(shipped.__file__).parent / "digits.csv.gz"
    (tmp_path / "digits.csv").write_bytes(gzip.decompress(digits.read_bytes()))
    for path in (digits, tmp_path / "digits.csv"):
        with pytest.raises(DataError, match=r"digits\.csv(\.gz)?: column name '0' appears more than once"):
            load_table(str(path))
    plain = tmp_path / "penguins.csv"
    PENGUINS.to_csv(plain, index=False)
    expected = load_table(str(plain)).frame
    packed = {"p.csv.gz": gzip.compress, "p.csv.bz2": bz2.compress, "p.csv.xz": lzma.compress}
    for name, compress in packed.items():
        (tmp_path / name).write_bytes(compress(plain.read_bytes()))
    with zipfile.ZipFile(tmp_path / "p.zip", "w") as archive:
        archive.write(plain, "penguins.csv")
    for name in (*packed, "p.zip"):
        loaded = load_table(str(tmp_path / name))
        assert loaded.frame.equals(expected), name
        assert loaded.sha256 != load_table(str(plain)).sha256  # the file's own bytes
    (tmp_path / "cut.csv.gz").write_bytes(gzip.compress(plain.read_bytes())[:-12])
    with pytest.raises(DataError, match=r"cut\.csv\.gz: a damaged or unreadable gzip file"):
        load_table(str(tmp_path / "cut.csv.gz"))
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as archive:
        archive.write(plain, "a.csv")
        archive.write(plain, "b.csv")
        archive.writestr("__MACOSX/._a.csv", b"\x00\x05\x16\x07")  # what macOS's Finder adds: not a table
    with pytest.raises(DataError, match=r"a zip archive of 2 files \(a\.csv, b\.csv\); expected one table"):
        load_table(str(tmp_path / "two.zip"))
    import tarfile

    for name, mode in (("p.tar.gz", "w:gz"), ("p.tar", "w")):  # a .tar.gz, or a plain tar, of one table
        with tarfile.open(tmp_path / name, mode) as archive:
            archive.add(plain, "penguins.csv")
        assert load_table(str(tmp_path / name)).frame.equals(expected), name
    (tmp_path / "twice.csv.gz").write_bytes(gzip.compress(gzip.compress(plain.read_bytes())))
    with pytest.raises(DataError, match="a gzip file inside the gzip file; unpack it to one level"):
        load_table(str(tmp_path / "twice.csv.gz"))
    broken = bytearray(gzip.compress(plain.read_bytes()))
    broken[30:40] = b"\xff" * 10  # damaged mid-stream: zlib's own error, still one line
    (tmp_path / "broken.csv.gz").write_bytes(bytes(broken))
    with pytest.raises(DataError, match="broken.csv.gz: a damaged or unreadable gzip file"):
        load_table(str(tmp_path / "broken.csv.gz"))
    assert load_spec(data=str(tmp_path / "p.csv.gz"), target="species").model_name == "p"  # as p.csv's


def test_a_header_that_did_not_split_or_a_comment_above_it_is_named(tmp_path: Path) -> None:
    """scikit-learn's linnerud tables are separated by spaces; matplotlib's Stocks.csv starts with a comment line."""
    from sklearn.datasets import data as shipped

    from driftloop.table import check_target, read_columns

    linnerud = str(Path(shipped.__file__).parent / "linnerud_physiological.csv")
    with pytest.raises(DataError, match=r"the header was read as 1 column\(s\), 'Weight Waist Pulse': set "
                                        r"data\.read\.sep to the file's separator \(for one or more spaces: --set"):
        check_target(read_columns(linnerud), "Weight", linnerud)
    # a target not in the one column's text (a typo, or a header of data: matplotlib's data_x_x2_x3.csv) says so too
    with pytest.raises(DataError, match=r"target column 'y' not found; the header was read as 1 column\(s\), "
                                        r"'Weight Waist Pulse': set data\.read\.sep"):
        check_target(read_columns(linnerud), "y", linnerud)
    assert read_columns(linnerud, read={"sep": " "}) == ["Weight", "Waist", "Pulse"]
    # as R's write.table writes it, aligned with runs of spaces: the separator the hint names reads it
    aligned = tmp_path / "r.csv"
    aligned.write_text('"Weight"  "Waist" "Pulse"\n191   36  50\n189   37  52\n')
    with pytest.raises(DataError, match="the header was read as 1 column"):
        check_target(read_columns(str(aligned)), "Pulse", str(aligned))
    read = load_spec(data=str(aligned), target="Pulse", overrides=["data.read.sep='\\s+'"]).data.read.options()
    assert load_table(str(aligned), read=read).frame.to_dict("list") == {"Weight": [191, 189], "Waist": [36, 37],
                                                                           "Pulse": [50, 52]}
    commented = tmp_path / "stocks.csv"
    commented.write_text("# Data source: https://finance.yahoo.com, daily\nDate,^GSPC\n1990-01-02,359.69\n")
    with pytest.raises(DataError, match=r"the first line, '# Data source: https://finance\.yahoo\.com, daily', was "
                                        "read as the header: remove the comment lines above the header"):
        check_target(read_columns(str(commented)), "^GSPC", str(commented))


def test_a_csv_padded_after_each_delimiter_reads_without_the_padding(tmp_path: Path) -> None:
    """`id, age, city` (R's `write.table(sep=", ")`, hand-written files): pandas kept " Paris" as the category, named the
    column " city", and split `1, "Paris, FR"` into two cells, shifting the row onto the id as index."""
    padded = tmp_path / "padded.csv"
    padded.write_text('id, age, city, income, churn\n1, 34, "Paris, FR", 1200.5, Yes\n2, 40, Lyon, 900, No\n'
                      '3, 41, "Nice", NA, No\n')
    assert sniff_csv(padded.read_bytes()).padded
    assert read_columns(str(padded)) == ["id", "age", "city", "income", "churn"]
    frame = load_table(str(padded)).frame
    assert frame["city"].tolist() == ["Paris, FR", "Lyon", "Nice"] and frame["churn"].tolist() == ["Yes", "No", "No"]
    assert frame["id"].tolist() == [1, 2, 3] and frame["income"].isna().tolist() == [False, False, True]
    # a space that is data stays: only a header of padded names says the file is padded; and data.read can say no
    plain = tmp_path / "plain.csv"
    plain.write_text("id,city\n1, Paris\n")
    assert not sniff_csv(plain.read_bytes()).padded and load_table(str(plain)).frame["city"].tolist() == [" Paris"]
    assert load_table(str(padded), read=validate_read({"skipinitialspace": False})).frame.columns[1] == " age"
    # a model trained on such a file before (its columns " age", " city") is told how to read it as it was
    from driftloop.table import padding_hint

    assert padding_hint(read_columns(str(padded)), [" age", " city"]) == (
        "the model's columns were read with the space after each delimiter (' age'): read this file so too, with "
        "the read option skipinitialspace=false")
    assert padding_hint(read_columns(str(padded)), ["weight"]) is None


def test_codes_with_leading_zeros_read_as_written_in_every_reader(tmp_path: Path) -> None:
    """pandas read a column of ZIP codes that are all digits as integers: '00501' trained as 501 (a number, or the
    category '501'), while a streamed chunk with a Canadian 'K1A0B1' in it read '00501', unseen by the model."""
    from driftloop.components.roles import infer
    from driftloop.table import csv_chunks

    zips = tmp_path / "zips.csv"
    zips.write_text("zip,fips,n,y\n" + "".join(f"{z},{f},{i},{i % 2}\n" for i, (z, f) in enumerate(
        [("00501", "01001"), ("02134", "06037"), ("94105", "36061"), ("10001", "48201")] * 10)))
    whole = load_table(str(zips)).frame
    assert whole["zip"].tolist()[:3] == ["00501", "02134", "94105"] and whole["fips"].tolist()[0] == "01001"
    assert whole["n"].dtype.kind == "i"  # numbers are numbers
    assert next(csv_chunks(str(zips), rows=3))["zip"].tolist() == ["00501", "02134", "94105"]
    shown = {r["column"]: r["why"] for r in infer(whole, "y", FeatureSpec()).table}
    assert shown["zip"] == "text, 4 distinct values, codes with leading zeros"


def test_a_header_of_single_quoted_names_reads_as_the_names(tmp_path: Path) -> None:
    """As statsmodels ships anes96.csv (tab-separated) and spector.csv (spaces): 'popul'\t'TVnews' …; a value with
    an apostrophe inside stays as written."""
    anes = tmp_path / "anes96.csv"
    anes.write_text("'popul'\t'TVnews'\t'vote'\n0\t7\t1\n190\t1\t0\n")
    assert read_columns(str(anes)) == ["popul", "TVnews", "vote"]
    assert load_table(str(anes)).frame.to_dict("list") == {"popul": [0, 190], "TVnews": [7, 1], "vote": [1, 0]}
    spector = tmp_path / "spector.csv"
    spector.write_text("'OBS' 'GPA' 'GRADE'\n1 2.66 0\n2 2.89 1\n")
    assert read_columns(str(spector), read={"sep": "\\s+"}) == ["OBS", "GPA", "GRADE"]
    names = tmp_path / "names.csv"  # the quotes are the header's: the rows read as pandas reads any CSV
    names.write_text("'name','city','y'\nO'Brien,\"Cork, Ireland\",1\n'90s fan,Oslo,0\n\"Smith, John\",Paris,1\n")
    assert load_table(str(names)).frame.to_dict("list") == {"name": ["O'Brien", "'90s fan", "Smith, John"],
                                                             "city": ["Cork, Ireland", "Oslo", "Paris"], "y": [1, 0, 1]}
    spaced = tmp_path / "spaced.csv"
    spaced.write_text("'first name' 'y'\nAda 1\nBo 0\n")
    assert read_columns(str(spaced), read={"sep": "\\s+"}) == ["first name", "y"]
    twice = tmp_path / "twice.csv"
    twice.write_text("'a','a'\n1,2\n")
    with pytest.raises(DataError, match="column name 'a' appears more than once"):
        load_table(str(twice))
    plain = tmp_path / "plain.csv"
    plain.write_text("note,y\n'quoted' here,1\nit's,0\n")  # a header without quotes: values are as written
    assert load_table(str(plain)).frame["note"].tolist() == ["'quoted' here", "it's"]


def test_windows_encoding_without_bom(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes("città;n\nRoma;1\nMünchen;2\n".encode("cp1252"))
    frame = load_table(str(path)).frame
    assert list(frame.columns) == ["città", "n"] and frame["città"].tolist() == ["Roma", "München"]


def test_a_local_csv_read_in_chunks_from_disk_is_the_table_load_table_reads(tmp_path: Path) -> None:
    """`csv_chunks` reads a local file from disk (only the head for sniffing, the encoding in one pass of blocks):
    the frames it yields are the table `load_table` reads from the whole bytes, for each encoding and dialect."""
    import gzip

    from driftloop.table import csv_chunks

    rows = [f"{i};r{i};{i},5;{1 + i % 9}.{i % 1000:03d},25" for i in range(6000)]  # ~150 KB: more than the 64 KiB head
    text = "id;name;x;y\n" + "\n".join(rows) + "\n6000;Zürich;1,5;4.229,89\n"  # a non-ASCII byte past the head
    files = {
        "cp1252.csv": text.encode("cp1252"),   # utf-8 until the last line: the whole file decides the encoding
        "utf8.csv": text.encode("utf-8"),
        "bom.csv": b"\xef\xbb\xbf" + text.encode("utf-8"),
        "packed.csv.gz": gzip.compress(text.encode("utf-8")),  # read whole, as before
    }
    for name, data in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        whole = load_table(str(path)).frame
        chunked = pd.concat(list(csv_chunks(str(path), rows=1000)))
        pd.testing.assert_frame_equal(chunked, whole, obj=name, check_index_type=False)  # a RangeIndex, whole
        assert chunked["name"].iloc[-1] == "Zürich" and chunked["y"].iloc[-1] == 4229.89, name
        assert list(chunked.columns) == ["id", "name", "x", "y"], name
    with pytest.raises(Exception, match="file not found"):
        list(csv_chunks(str(tmp_path / "absent.csv"), rows=10))
    # the one cp1252 byte is the file's second-to-last: both readers take the file as cp1252 (utf-8 failed before)
    last = "id;x;name\n" + "\n".join(f"{i};{i},5;r{i}" for i in range(6000)) + "\n6000;1,5;Café\n"
    (tmp_path / "last.csv").write_bytes(last.encode("cp1252"))
    for frame in (load_table(str(tmp_path / "last.csv")).frame, pd.concat(csv_chunks(str(tmp_path / "last.csv"), rows=999))):
        assert frame["name"].iloc[-1] == "Café" and len(frame) == 6001
    # a header longer than the sniffed head is read whole: its repeated name, 120 KB in, is still refused
    names = [f"measurement_with_a_long_name_{i:05d}" for i in range(4000)] + ["measurement_with_a_long_name_00001"]
    (tmp_path / "wide.csv").write_text(",".join(names) + "\n" + ",".join(["1"] * len(names)) + "\n")
    with pytest.raises(DataError, match="'measurement_with_a_long_name_00001' appears more than once"):
        list(csv_chunks(str(tmp_path / "wide.csv"), rows=10))


def test_read_options_override_the_sniffing(tmp_path: Path) -> None:
    # a comma CSV whose numbers use '.' as thousands separator and '-' for missing: no sniffing can know
    path = tmp_path / "t.csv"
    path.write_text('city,people\nRoma,"2.761.632"\nNowhere,-\n', encoding="utf-8")
    frame = load_table(str(path), read={"thousands": ".", "na_values": ["-"]}).frame
    assert frame["people"].iloc[0] == 2761632 and pd.isna(frame["people"].iloc[1])


def test_read_options_are_checked() -> None:
    with pytest.raises(InvalidSpec, match=r"data\.read\.sep: .*single character"):
        load_spec(None, data="t.csv", target="y", overrides=["data.read.sep=;;"])
    with pytest.raises(InvalidSpec, match=r"encoding.*unknown text encoding 'klingon'"):
        validate_read({"encoding": "klingon"})
    with pytest.raises(InvalidSpec, match=r"--set data\.read\.decimals: unknown key; did you mean 'decimal'"):
        load_spec(None, data="t.csv", target="y", overrides=["data.read.decimals=,"])
    # the operator's drift CronJob writes the spec's options as --read flags, which the drift command reads back
    options = load_spec(None, data="t.csv", target="y", overrides=["data.read.keep_default_na=false",
                                                                   "data.read.na_values=['-']"]).data.read.options()
    assert options == {"na_values": ["-"], "keep_default_na": False}
    assert as_read_flags(options) == ["na_values=-", "keep_default_na=false"]
    assert read_flags(as_read_flags(options)) == options


# --- missing targets -----------------------------------------------------------------------------------------

def test_rows_without_a_target_are_dropped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    PENGUINS.to_csv(path, index=False)
    spec = load_spec(None, data=str(path), target="species")
    table, dropped = load_training_table(spec.data)
    assert dropped == 1 and table.frame["species"].tolist() == ["Adelie", "Gentoo", "Adelie"]
    kept, none = load_training_table(spec.data.model_copy(update={"drop_missing_target": False}))
    assert none == 0 and len(kept.frame) == 4


def test_a_zero_one_target_with_blanks_keeps_integer_labels(tmp_path: Path) -> None:
    """pandas reads a 0/1 column with blank cells as float: once those rows go, its labels are 0 and 1 again, so the
    classes, the model's metadata and `data.positive_class: 1` all say 1, not 1.0."""
    path = tmp_path / "t.csv"
    path.write_text("x,churned\n0.5,1\n0.7,\n0.1,0\n0.9,1\n0.3,\n")
    table, dropped = load_training_table(load_spec(None, data=str(path), target="churned").data)
    assert dropped == 2 and table.frame["churned"].dtype == "int64" and table.frame["churned"].tolist() == [1, 0, 1]
    assert order_classes([0, 1], table.frame["churned"], 1, "t.csv") == [0, 1]  # `positive_class: 1` is a class
    path.write_text("x,price\n0.5,1.5\n0.7,\n0.1,2.0\n")  # not integral: stays a float (a regression target)
    table, _ = load_training_table(load_spec(None, data=str(path), target="price").data)
    assert table.frame["price"].dtype == "float64"


def test_a_target_missing_everywhere_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    PENGUINS.assign(species=None).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"target column 'species' is missing in every row \(4 rows\)"):
        load_training_table(load_spec(None, data=str(path), target="species").data)


# --- tasks ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("values, task, why", [
    (list(range(10)), "regression", "10 distinct integers in 10 rows (fewer than 10 rows per value)"),
    ([3, 4, 5, 6, 7, 8] * 50, "classification", "6 distinct integers in 300 rows"),
    (list(range(100)) * 3, "regression", "100 distinct integers in 300 rows (over 20)"),
    ([0.5, 1.25, 2.0] * 10, "regression", "non-integral"),
    (["cat", "dog"] * 5, "classification", "text (2 distinct labels)"),
    ([True, False] * 5, "classification", "boolean"),
    ([0, 1] * 3, "classification", "2 distinct values"),
])
def test_task_inference_says_why(values: list, task: str, why: str) -> None:
    chosen, reason = explain_task(pd.Series(values, name="y"))
    assert chosen == task and why in reason


# --- positive class ------------------------------------------------------------------------------------------

def test_positive_class_is_the_training_minority_and_goes_second() -> None:
    train = pd.Series(["yes"] * 9 + ["no"], name="benign")
    assert order_classes(["no", "yes"], train, None, "t.csv") == ["yes", "no"]
    assert order_classes(["no", "yes"], train, "yes", "t.csv") == ["no", "yes"]
    assert order_classes([0, 1], pd.Series([0, 1, 1], name="y"), "0", "t.csv") == [1, 0]  # YAML text, int classes
    assert order_classes(["no", "yes"], train, True, "t.csv") == ["no", "yes"]  # YAML's `positive_class: yes`
    assert order_classes([False, True], pd.Series([True, False], name="y"), False, "t.csv") == [True, False]


def test_positive_class_that_is_not_a_class_is_one_line() -> None:
    with pytest.raises(DataError, match=r"data.positive_class 'maybe' is not a class of target 'benign'; "
                                        r"classes are: 'no', 'yes'"):
        order_classes(["no", "yes"], pd.Series(["yes", "no"], name="benign"), "maybe", "t.csv")
    with pytest.raises(DataError, match="for binary targets"):
        order_classes(["a", "b", "c"], pd.Series(["a", "b", "c"], name="y"), "a", "t.csv")


def test_new_metrics_follow_the_positive_class() -> None:
    # 9 negatives, 1 positive (class index 1); the model finds the positive but also flags one negative
    truth = ["no"] * 9 + ["yes"]
    probabilities = np.array([[0.9, 0.1]] * 8 + [[0.4, 0.6], [0.2, 0.8]])
    metrics = classification_metrics(truth, probabilities, ["no", "yes"])
    assert metrics["recall"] == 1.0 and metrics["precision"] == 0.5
    assert metrics["balanced_accuracy"] == pytest.approx((8 / 9 + 1) / 2)
    assert metrics["pr_auc"] == pytest.approx(1.0)  # the positive has the highest score
    swapped = classification_metrics(truth, probabilities[:, ::-1], ["yes", "no"])
    assert swapped["recall"] == pytest.approx(8 / 9)  # now about 'no'


# --- end to end ----------------------------------------------------------------------------------------------

def _imbalanced(rows: int = 400, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    rare = x[:, 0] + 0.5 * x[:, 1] > 1.3  # about 10%
    frame = pd.DataFrame({"x 1": x[:, 0], "x.2": x[:, 1], "x(3)": x[:, 2],
                          "benign": np.where(rare, "no", "yes")})
    frame.loc[[5, 17, 40], "benign"] = None
    return frame


def _run_param(probe, run_id: str) -> dict:
    run = probe.client.get_run(run_id)
    return {"params": run.data.params, "tags": run.data.tags, "metrics": run.data.metrics}


@pytest.mark.slow
def test_semicolon_table_with_missing_targets_trains_and_says_so(cli: Cli, mlflow_uri: str) -> None:
    table = _imbalanced()
    (cli.cwd / "rare.csv").write_bytes(table.to_csv(sep=";", decimal=",", index=False).encode("utf-8-sig"))
    proc = cli("run", "--data", "rare.csv", "--target", "benign", "--model", "rare_semicolon", "--json", "run.json",
               "--set", "train.epochs=15", "--set", "evaluate.latency_samples=10")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "dropped 3 rows with a missing target 'benign'" in proc.stderr
    assert "task: classification (the target is text (2 distinct labels)); positive class 'no'" in proc.stderr
    result = json.loads((cli.cwd / "run.json").read_text())
    recorded = _run_param(registry_for(mlflow_uri), result["run_id"])
    assert recorded["params"]["data.dropped_missing_target"] == "3"
    assert recorded["params"]["data.positive_class"] == "no"
    assert recorded["tags"]["driftloop.task"] == "classification"
    assert "text" in recorded["tags"]["driftloop.task_reason"]
    assert {"balanced_accuracy", "pr_auc"} <= set(recorded["metrics"])


@pytest.mark.slow
def test_missing_targets_refused_when_asked_registers_nothing(cli: Cli, mlflow_uri: str) -> None:
    _imbalanced().to_csv(cli.cwd / "rare.csv", index=False)
    proc = cli("run", "--data", "rare.csv", "--target", "benign", "--model", "rare_refused",
               "--set", "data.drop_missing_target=false")
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == ["error: rare.csv: target column 'benign' has 3 null values (data.drop_missing_target is false)"]
    assert registry_for(mlflow_uri).champion("rare_refused") is None


@pytest.mark.slow
def test_positive_class_not_a_class_registers_nothing(cli: Cli, mlflow_uri: str) -> None:
    _imbalanced().to_csv(cli.cwd / "rare.csv", index=False)
    proc = cli("run", "--data", "rare.csv", "--target", "benign", "--model", "rare_bad_positive",
               "--set", "data.positive_class=maybe")
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == ["error: rare.csv: data.positive_class 'maybe' is not a class of target 'benign'; "
                      "classes are: 'no', 'yes'"]
    assert registry_for(mlflow_uri).champion("rare_bad_positive") is None


@pytest.mark.slow
def test_champion_is_rescored_about_the_candidates_positive_class(cli: Cli, mlflow_uri: str) -> None:
    from sklearn.metrics import precision_score, recall_score

    from driftloop.onnx_model import OnnxModel

    _imbalanced().to_csv(cli.cwd / "rare.csv", index=False)
    common = ["--data", "rare.csv", "--target", "benign", "--model", "rare_rescore", "--set", "train.epochs=30",
              "--set", "train.lr=0.01", "--set", "evaluate.latency_samples=10"]
    first = cli("run", *common, "--set", "data.positive_class=yes", "--json", "first.json")  # the majority, on purpose
    assert first.returncode == 0, first.stderr[-2000:]
    assert json.loads((cli.cwd / "first.json").read_text())["deployed"], first.stderr[-2000:]
    second = cli("run", *common, "--set", "data.positive_class=no", "--json", "second.json")  # the minority
    assert second.returncode == 0, second.stderr[-2000:]
    probe = registry_for(mlflow_uri)
    champion_v1 = probe.gateway.model_version("rare_rescore", "1")
    v1 = OnnxModel(probe.download_model(champion_v1, cli.cwd / "v1"))
    assert v1.positive_class == "yes"
    run_id = json.loads((cli.cwd / "second.json").read_text())["run_id"]
    test = pd.read_parquet(cli.cwd / ".driftloop" / "runs" / run_id / "features" / "test.parquet")
    predicted = pd.Series(v1.predict(test)) == "no"
    truth = test["benign"].reset_index(drop=True) == "no"
    logged = _run_param(probe, run_id)["metrics"]
    assert logged["champion_recall"] == pytest.approx(recall_score(truth, predicted))
    assert logged["champion_precision"] == pytest.approx(precision_score(truth, predicted, zero_division=0))


@pytest.mark.slow
def test_a_retrain_keeps_the_champions_positive_class_when_the_minority_turns_round(cli: Cli, mlflow_uri: str) -> None:
    """nannyml's car loans: trained on the reference (repaid 1.0 the minority), then on the labelled analysis data
    (0.0 the minority), the default "positive = minority" swapped `probabilities` and `probability_*` columns from v1
    to v2, so a client reading column 1 read the other class after a retrain. A new version keeps the champion's
    positive class unless the spec names one; a model without a champion still takes its minority."""
    from driftloop.onnx_model import OnnxModel

    common = ["--target", "benign", "--model", "rare_flipped", "--set", "train.model=linear",
              "--set", "evaluate.latency_samples=10", "--set", "gate.vs_champion={roc_auc: -1}"]
    _imbalanced().to_csv(cli.cwd / "rare.csv", index=False)
    first = cli("run", "--data", "rare.csv", *common)
    assert first.returncode == 0 and "positive class 'no'\n" in first.stderr, first.stderr[-2000:]
    flipped = _imbalanced(seed=4).assign(benign=lambda t: t["benign"].map({"no": "yes", "yes": "no"}))
    flipped.to_csv(cli.cwd / "flipped.csv", index=False)  # now 'yes' is the minority
    second = cli("run", "--data", "flipped.csv", *common, "--json", "second.json")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "positive class 'no' (the champion's, kept although this table's minority is the other class)" in \
        second.stderr
    assert json.loads((cli.cwd / "second.json").read_text())["model_version"] == "2"
    probe = registry_for(mlflow_uri)
    versions = [OnnxModel(probe.download_model(probe.gateway.model_version("rare_flipped", v), cli.cwd / f"v{v}"))
                for v in ("1", "2")]
    assert [list(m.classes) for m in versions] == [["yes", "no"], ["yes", "no"]]
    # named in the spec, the other class wins
    third = cli("run", "--data", "flipped.csv", *common, "--set", "data.positive_class=yes", "--force")
    assert third.returncode == 0 and "positive class 'yes'\n" in third.stderr, third.stderr[-2000:]


def test_a_second_target_on_the_same_file_is_refused_not_trained_as_the_first(cli: Cli, mlflow_uri: str) -> None:
    """The model name is the file's stem, so `--target` B on the file that trained A's champion lands on A's name.
    The champion's stored roles name A as the target: the run trained A again (with B as a feature) and promoted it
    as v2, while its MLflow run recorded B. One line instead, and nothing registered."""
    assert cli("example", "-o", "accounts.csv", "--rows", "300").returncode == 0
    fast = ["--set", "train.model=linear", "--set", "evaluate.latency_samples=10"]
    first = cli("run", "--data", "accounts.csv", "--target", "churned", *fast)
    assert first.returncode == 0, first.stderr[-2000:]
    second = cli("run", "--data", "accounts.csv", "--target", "tenure_months", *fast, "--json", "second.json")
    assert second.returncode == 1, second.stderr[-2000:]
    assert ("error: accounts.csv: the target is 'tenure_months', but @champion v1 of 'accounts' predicts 'churned'; "
            "a registered model predicts one target: give this one its own name (--model, registry.model_name)"
            ) in second.stderr, second.stderr[-2000:]
    probe = registry_for(mlflow_uri)
    assert probe.champion("accounts").version == "1" and probe.gateway.model_version("accounts", "2") is None
    # under a name of its own it trains what was asked
    own = cli("run", "--data", "accounts.csv", "--target", "tenure_months", "--model", "accounts_tenure", *fast,
              "--json", "own.json")
    assert own.returncode == 0, own.stderr[-2000:]
    assert "r2" in json.loads((cli.cwd / "own.json").read_text())["metrics"]


def test_a_champion_that_learned_a_copy_of_the_target_is_named_when_a_run_leaves_the_copy_out(cli: Cli,
                                                                                             mlflow_uri: str) -> None:
    """gbsg2 with `event` beside `cens`: the warning says to drop `event`; the run that does is then declined against
    the champion's 0.98, a score the copy made. That run names it, and how to let its own merit decide."""
    rng = np.random.default_rng(7)
    cens = rng.integers(0, 2, 300)
    frame = pd.DataFrame({"age": rng.normal(50, 10, 300) + cens * 8, "event": np.where(cens == 1, "yes", "no"),
                          "cens": cens})
    frame.to_csv(cli.cwd / "gbsg.csv", index=False)
    fast = ["--set", "train.model=linear", "--set", "evaluate.latency_samples=10", "--model", "gbsg_copy"]
    first = cli("run", "--data", "gbsg.csv", "--target", "cens", *fast)
    assert first.returncode == 0 and "column 'event' matches the target 'cens' in every row" in first.stderr
    dropped = ["--set", "feature.roles={event: drop}"]
    second = cli("run", "--data", "gbsg.csv", "--target", "cens", *fast, *dropped, "--json", "second.json")
    assert second.returncode == 0, second.stderr[-2000:]
    assert ("warning: gbsg.csv: @champion learned column 'event', a copy of the target 'cens', which this run leaves "
            "out: the gate compares with a score that copy made; --set 'gate.vs_champion={roc_auc: .inf}' lets this "
            "run's own merit decide") in second.stderr, second.stderr[-2000:]
    assert json.loads((cli.cwd / "second.json").read_text())["deployed"] is False
    third = cli("run", "--data", "gbsg.csv", "--target", "cens", *fast, *dropped, "--force",
                "--set", "gate.vs_champion={roc_auc: .inf}", "--json", "third.json")
    assert third.returncode == 0, third.stderr[-2000:]
    promoted = json.loads((cli.cwd / "third.json").read_text())
    assert promoted["deployed"] is True
    assert registry_for(mlflow_uri).champion("gbsg_copy").run_id == promoted["run_id"]


@pytest.mark.slow
def test_an_evaluation_window_is_read_with_the_tables_own_read_options(cli: Cli, mlflow_uri: str) -> None:
    """A column-aligned table (R's write.table) trains with data.read.sep='\\s+'; its labelled window, a file of the
    same form, is read with the same options, not sniffed into one column ("lacks the target column")."""
    table = _imbalanced(rows=500).rename(columns={"x 1": "x1", "x.2": "x2", "x(3)": "x3"}).dropna()
    (cli.cwd / "aligned.txt").write_text(table.iloc[:400].to_string(index=False))
    (cli.cwd / "window.txt").write_text(table.iloc[400:].to_string(index=False))
    proc = cli("run", "--data", "aligned.txt", "--target", "benign", "--model", "aligned_window", "--json", "run.json",
               "--set", "data.read.sep='\\s+'", "--set", "evaluate.window=window.txt", "--set", "train.epochs=5",
               "--set", "evaluate.latency_samples=10")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((cli.cwd / "run.json").read_text())
    assert result["status"] == "completed", result
    logged = _run_param(registry_for(mlflow_uri), result["run_id"])["metrics"]
    assert {"window_accuracy", "window_roc_auc"} <= set(logged), sorted(logged)


@pytest.mark.slow
def test_a_level_spelled_none_is_a_class_with_keep_default_na_false_in_training_predict_and_drift(
        cli: Cli, mlflow_uri: str) -> None:
    """vcd's Arthritis: `Improved` is None / Some / Marked. pandas reads "None" as missing, so the run dropped a third
    of the rows and trained two classes. keep_default_na=false keeps it a class, and the model file keeps that
    reading: predict and drift read the same file the same way without being told."""
    from driftloop.onnx_model import OnnxModel

    rng = np.random.default_rng(5)
    age = rng.integers(20, 75, 300)
    improved = np.where(age < 40, "None", np.where(age < 58, "Some", "Marked"))
    frame = pd.DataFrame({"Age": age, "Treatment": rng.choice(["Placebo", "Treated", "NA"], 300),
                          "Improved": improved})
    frame.loc[[3, 9], "Treatment"] = ""
    (cli.cwd / "arthritis.csv").write_text(frame.to_csv(index=False))
    plain = cli("run", "--data", "arthritis.csv", "--target", "Improved", "--model", "arthritis_default",
                "--set", "train.epochs=2", "--set", "evaluate.latency_samples=10")
    dropped = int((improved == "None").sum())
    assert f"dropped {dropped} rows with a missing target 'Improved'" in plain.stderr, plain.stderr[-2000:]
    proc = cli("run", "--data", "arthritis.csv", "--target", "Improved", "--model", "arthritis", "--json", "run.json",
               "--set", "data.read.keep_default_na=false", "--set", "train.epochs=20",
               "--set", "evaluate.latency_samples=10")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "missing target" not in proc.stderr and "3 distinct labels" in proc.stderr
    probe = registry_for(mlflow_uri)
    version = probe.gateway.model_version("arthritis", "1")
    model = OnnxModel(probe.download_model(version, cli.cwd / "v1"))
    assert sorted(model.classes) == ["Marked", "None", "Some"] and model.missing_texts == frozenset({""})
    scored = cli("predict", "--model", "arthritis", "--version", "1", "--data", "arthritis.csv", "-o", "scored.csv")
    assert scored.returncode == 0, scored.stderr[-2000:]
    back = pd.read_csv(cli.cwd / "scored.csv", keep_default_na=False)
    assert back["Treatment"].tolist() == frame["Treatment"].tolist()  # "NA" stayed a treatment, as in training
    assert set(back["prediction"]) <= {"None", "Some", "Marked"} and "None" in set(back["prediction"])
    same = cli("drift", "--model", "arthritis", "--current", "arthritis.csv", "--min-samples", "50")
    assert same.returncode == 0, same.stdout[-2000:] + same.stderr[-2000:]


def test_a_number_columns_missing_word_reads_back_from_json_lines_and_parquet(cli: Cli) -> None:
    """bokeh's CGM glucose trained with `data.read.na_values: [nil]`: serving took `"isig": "nil"` and logged it as
    sent, and then `predict` and `drift` refused the server's own log ("text in a numeric column: 'nil'"), as they
    refused a Parquet copy of the CSV they had scored."""
    rng = np.random.default_rng(8)
    isig = rng.normal(20, 5, 300).round(2).astype(object)
    isig[[4, 50, 120]] = "nil"
    frame = pd.DataFrame({"isig": isig, "site": rng.choice(["arm", "belly"], 300)})
    frame["glucose"] = [150.0 if v == "nil" else 6 * v + 20 for v in isig] + rng.normal(0, 3, 300)
    frame.to_csv(cli.cwd / "cgm.csv", index=False)
    trained = cli("run", "--data", "cgm.csv", "--target", "glucose", "--model", "cgm_nil", "--set",
                  "data.read={na_values: [nil]}", "--set", "train.model=linear", "--set", "evaluate.latency_samples=10")
    assert trained.returncode == 0, trained.stderr[-2000:]
    rows = frame.drop(columns=["glucose"])
    rows.to_json(cli.cwd / "log.jsonl", orient="records", lines=True)  # the prediction log's form: cells as sent
    rows.astype({"isig": str}).to_parquet(cli.cwd / "cgm.parquet")  # a text column: "nil" beside numbers
    scored = {}
    for name in ("cgm.csv", "log.jsonl", "cgm.parquet"):
        out = name.replace(".", "_") + ".csv"
        proc = cli("predict", "--model", "cgm_nil", "--data", name, "-o", out)
        assert proc.returncode == 0, (name, proc.stderr[-2000:])
        scored[name] = pd.read_csv(cli.cwd / out)["prediction"].tolist()
        drift = cli("drift", "--model", "cgm_nil", "--current", name, "--min-samples", "50")
        assert drift.returncode == 0, (name, drift.stdout[-2000:] + drift.stderr[-2000:])
    assert scored["log.jsonl"] == scored["cgm.parquet"] == scored["cgm.csv"]


def test_kfp_validate_task_reads_and_drops_as_the_in_process_runner(tmp_path: Path, mlflow_uri: str) -> None:
    # the KFP validate task's table loading, on a real MLflow run; its Dataset is KFP's shape: .path + .metadata
    from types import SimpleNamespace

    from driftloop.components.context import finish_run, start_run
    from driftloop.pipelines.runtime import save_table

    source = tmp_path / "penguins.csv"
    source.write_bytes(PENGUINS.to_csv(sep=";", decimal=",", index=False).encode("utf-8-sig"))
    spec = load_spec(None, data=str(source), target="species", overrides=[f"tracking.uri={mlflow_uri}",
                                                                          "registry.model_name=kfp_table"])
    ctx = start_run(spec)
    dataset = SimpleNamespace(path=str(tmp_path / "artifact" / "table"), metadata={})
    loaded = save_table(ctx, dataset)
    finish_run(ctx, None)
    assert Path(dataset.path).read_bytes() == source.read_bytes()  # the artifact is the input, byte for byte
    assert list(loaded.frame.columns) == ["species", "island", "mass"] and len(loaded.frame) == 3
    assert dataset.metadata["dropped_missing_target"] == 1 and dataset.metadata["rows"] == 3
    assert _run_param(registry_for(mlflow_uri), ctx.run_id)["params"]["data.dropped_missing_target"] == "1"
