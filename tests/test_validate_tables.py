"""The validate step on tables as users bring them: public datasets with the cells real exports hold (infinities,
blank labels, 0/1 labels, half-empty columns, years, ZIP codes), each refused or read as a data scientist expects."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_wine

from driftloop.components import validate
from driftloop.components.roles import infer
from driftloop.errors import DataError, ValidationFailed
from driftloop.spec import DataSpec, FeatureSpec, ValidationSpec
from driftloop.table import load_training_table


def checked(frame: pd.DataFrame, out: Path, *, target: str = "target", validation: ValidationSpec | None = None,
            stored_suite: Path | None = None) -> validate.ValidationResult:
    return validate.run(frame, source="t.csv", target=target, validation=validation or ValidationSpec(),
                        feature=FeatureSpec(), out_dir=out, stored_suite=stored_suite)


def test_an_infinity_in_training_is_one_line_with_its_row(tmp_path: Path) -> None:
    """"inf" in a CSV reads as infinity; the profiled range became -inf..inf, a check no later table could fail."""
    wine = load_wine(as_frame=True).frame
    wine.loc[[4, 9], "malic_acid"] = [np.inf, -np.inf]
    with pytest.raises(DataError, match=r"^t.csv: column 'malic_acid' holds 2 infinite values \(the first, inf, at "
                                        r"row 6\); expected finite numbers"):
        checked(wine, tmp_path)
    # finite, but beyond the model's float32 input (great_tables' constants, 1.36e50): "training diverged" before
    wine = load_wine(as_frame=True).frame
    wine.loc[[7, 8], "proline"] = [1.356392489e50, -4e38]
    with pytest.raises(DataError, match=r"^t.csv: column 'proline' holds 2 value\(s\) beyond the model's float32 "
                                        r"input \(the first, 1.356392489e\+50, at row 9; at most ±3.403e\+38\): "
                                        r"rescale the column \(a log, other units\) or leave it out "
                                        r"\(feature.roles=\{proline: drop\}\)$"):
        checked(wine, tmp_path)


def test_a_bad_cell_is_named_by_the_row_a_spreadsheet_shows_after_blank_labels_are_dropped(tmp_path: Path) -> None:
    lines = ["x,y", "1,0", "2,", "3,1", "4,", "abc,1"] + [f"{i},{i % 2}" for i in range(5, 25)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    table, dropped = load_training_table(DataSpec(path=str(tmp_path / "t.csv"), target="y"))
    assert dropped == 2
    with pytest.raises(DataError, match=r"column 'x': text in a numeric column: 'abc' at row 6 "):
        validate.run(table.frame, source="t.csv", target="y", validation=ValidationSpec(),
                     feature=FeatureSpec(roles={"x": "numeric"}), out_dir=tmp_path / "v")


@pytest.mark.parametrize("categories", [[0, 1], ["0", "1"]], ids=["numbers", "text"])
def test_declared_label_categories_match_a_0_1_target(tmp_path: Path, categories: list) -> None:
    """A 0/1 label with `categories: ["0", "1"]` failed on every row, and `[0, 1]` was not a valid spec."""
    cancer = load_breast_cancer(as_frame=True).frame[["mean radius", "mean texture", "target"]]
    rules = {"target": {"type": "categorical", "categories": categories},
             "mean radius": {"type": "numeric", "min": 0}}
    result = checked(cancer, tmp_path / "ok", validation=ValidationSpec(columns=rules))
    assert result.suite_source == "declared" and result.rows == len(cancer)
    narrow = {**rules, "target": {"type": "categorical", "categories": categories[:1]}}
    with pytest.raises(ValidationFailed, match=r"column 'target': expect_column_values_to_be_in_set"):
        checked(cancer, tmp_path / "narrow", validation=ValidationSpec(columns=narrow))


def test_a_half_empty_column_going_empty_is_still_seen(tmp_path: Path) -> None:
    """At a null share of 47.5% or more the profiled not-null check allowed every row to be null."""
    wine = load_wine(as_frame=True).frame
    wine.loc[wine.index % 2 == 0, "ash"] = np.nan  # half empty in training
    first = checked(wine, tmp_path / "first")
    suite = json.loads(first.suite_path.read_text())
    (rule,) = [e for e in suite["expectations"]
               if e["type"] == "expect_column_values_to_not_be_null" and e["kwargs"]["column"] == "ash"]
    assert rule["kwargs"]["mostly"] == pytest.approx(0.25)
    later = wine.assign(ash=np.where(wine.index % 10 == 0, 2.3, np.nan))  # 90% empty
    result = checked(later, tmp_path / "later", stored_suite=first.suite_path)
    assert any("null share changed: column 'ash'" in w for w in result.warnings), result.warnings
    same = checked(wine, tmp_path / "same", stored_suite=first.suite_path)
    assert not any("'ash'" in w for w in same.warnings)


def test_years_zip_codes_and_categorical_columns_get_the_roles_their_values_mean() -> None:
    rows = 30
    frame = pd.DataFrame({
        "year": np.arange(1994, 1994 + rows),  # one per year: a feature, not a row number
        "row": np.arange(1, rows + 1),  # a row number: dropped
        "zip": [f"0{2100 + i % 7}" for i in range(rows)],  # as Parquet or JSON keep them: leading zeros
        "grade": pd.Categorical([1, 2, 3] * (rows // 3)),  # a Parquet dictionary column
        "y": [0, 1] * (rows // 2),
    })
    roles = {r["column"]: (r["role"], r["why"]) for r in infer(frame, "y", FeatureSpec()).table}
    assert roles["year"] == ("numeric", "numbers")
    assert roles["row"][0] == "id"
    assert roles["zip"] == ("categorical", "text, 7 distinct values, codes with leading zeros")
    assert roles["grade"] == ("categorical", "a categorical column, 3 distinct values")
    # a categorical dtype keeps what the values say beyond that: an id is still dropped, a date still a date
    typed = frame.assign(row=frame["row"].astype("category"),
                         day=pd.Categorical([f"2024-01-{d:02d}" for d in range(1, rows + 1)]))
    roles = {r["column"]: r["role"] for r in infer(typed, "y", FeatureSpec()).table}
    assert roles["row"] == "id" and roles["day"] == "datetime"
    # and what the author typed as categories stays categories: integer codes with blanks, yes/no
    coded = frame.assign(grade=pd.Categorical([1, 2, None] * (rows // 3)),
                         member=pd.Categorical(["yes", "no"] * (rows // 2)))
    roles = {r["column"]: r["role"] for r in infer(coded, "y", FeatureSpec()).table}
    assert roles["grade"] == roles["member"] == "categorical"


def test_a_declared_column_the_table_lacks_and_a_parquet_file_s_own_index(tmp_path: Path) -> None:
    wine = load_wine(as_frame=True).frame
    rules = {"cultivar": {"type": "categorical", "categories": ["a", "b"]}}
    with pytest.raises(ValidationFailed, match=r"column 'cultivar' expected by the declared suite is missing"):
        checked(wine, tmp_path / "v", validation=ValidationSpec(columns=rules))
    # saved from a filtered frame, a Parquet file keeps that frame's index; its rows are still counted from 2
    kept = wine[wine.index >= 20].astype({"ash": str})
    kept.loc[23, "ash"] = "oops"  # the file's fourth row: row 5 under the header, as a spreadsheet shows it
    kept.to_parquet(tmp_path / "t.parquet")
    table, _ = load_training_table(DataSpec(path=str(tmp_path / "t.parquet"), target="target"))
    with pytest.raises(DataError, match=r"column 'ash': text in a numeric column: 'oops' at row 5 "):
        validate.run(table.frame, source="t.parquet", target="target", validation=ValidationSpec(),
                     feature=FeatureSpec(roles={"ash": "numeric"}), out_dir=tmp_path / "p")


def test_a_parquet_file_s_named_index_is_a_column_as_a_csv_s_is(tmp_path: Path) -> None:
    """`set_index("month").to_parquet()` (a time series, as sktime and river hand them out) keeps `month` in the
    file; read back it is the index, and was dropped with it: a model without its only date, a scored file without
    its key. A named index level is a column, as in the CSV the same frame writes; an unnamed one is row labels."""
    from driftloop.table import load_table, read_columns

    months = pd.date_range("1949-01-01", periods=6, freq="MS")
    frame = pd.DataFrame({"month": months, "region": list("abcabc"), "lag": range(6), "passengers": range(10, 16)})
    frame.set_index("month").to_parquet(tmp_path / "series.parquet")
    read = load_table(str(tmp_path / "series.parquet")).frame
    assert list(read.columns) == ["month", "region", "lag", "passengers"] and list(read["month"]) == list(months)
    assert list(read.index) == list(range(6))  # rows are still counted from the file's first row
    frame.set_index(["month", "region"]).to_parquet(tmp_path / "two.parquet")
    assert list(load_table(str(tmp_path / "two.parquet")).frame.columns) == ["month", "region", "lag", "passengers"]
    # an unnamed date index is when each row was: the `Unnamed: 0` column the CSV of the frame has (arch's vix lost
    # its dates, "no feature columns left"); unnamed numbers are row labels, left out as before
    frame.set_index("month").rename_axis(None).to_parquet(tmp_path / "unnamed.parquet")
    dated = load_table(str(tmp_path / "unnamed.parquet")).frame
    assert list(dated.columns) == ["Unnamed: 0", "region", "lag", "passengers"] and list(dated["Unnamed: 0"]) == \
        list(months)
    frame.set_index("month").rename_axis(None).to_period("M").to_parquet(tmp_path / "periods.parquet")
    assert load_table(str(tmp_path / "periods.parquet")).frame["Unnamed: 0"].tolist()[:2] == ["1949-01", "1949-02"]
    frame.set_index("lag").rename_axis(None).to_parquet(tmp_path / "labels.parquet")
    assert list(load_table(str(tmp_path / "labels.parquet")).frame.columns) == ["month", "region", "passengers"]
    # two levels of one name: the first is the column; a named RangeIndex is row positions, no column
    frame.set_index(["month", "region"]).rename_axis(["k", "k"]).to_parquet(tmp_path / "twice.parquet")
    assert list(load_table(str(tmp_path / "twice.parquet")).frame.columns) == ["k", "lag", "passengers"]
    frame.rename_axis("row").to_parquet(tmp_path / "ranged.parquet")
    assert list(load_table(str(tmp_path / "ranged.parquet")).frame.columns) == list(frame.columns)
    # the header check before a run reads the file's schema alone: the same columns
    for name in ("series", "two", "unnamed", "periods", "labels", "ranged", "twice"):
        path = str(tmp_path / f"{name}.parquet")
        assert read_columns(path) == list(load_table(path).frame.columns), name


def test_a_copy_of_the_target_under_another_name_is_a_warning(tmp_path: Path) -> None:
    """scikit-survival's gbsg2 with `event` beside `cens`, veterans' survival days also in weeks: the model learns the
    copy and the gate passes it, but rows scored later will not have it. Named before training, not dropped: it may
    be meant. A feature that only predicts the target well is not one."""
    rng = np.random.default_rng(0)
    cens = rng.integers(0, 2, 200)
    frame = pd.DataFrame({"age": rng.normal(50, 10, 200), "event": np.where(cens == 1, "yes", "no"),
                          "grade": rng.choice(["I", "II", "III"], 200),
                          "noisy": np.where(rng.random(200) < 0.95, cens, 1 - cens), "cens": cens})
    outcome = checked(frame, tmp_path / "c", target="cens")
    assert outcome.leaks == ("t.csv: column 'event' matches the target 'cens' in every row (a copy of it under another "
                             "name); rows scored later will not have it, and a model that learns it scores well only "
                             "on paper: feature.roles {'event': drop} leaves it out",)
    assert json.loads(outcome.result_path.read_text())["leaks"] == list(outcome.leaks)
    days = rng.gamma(2, 100, 200).round()
    survival = pd.DataFrame({"karnofsky": rng.integers(10, 100, 200), "weeks": days / 7,
                             "close": days + rng.normal(0, 5, 200), "days": days})
    leaks = checked(survival, tmp_path / "r", target="days").leaks
    assert [line.split("'")[1] for line in leaks] == ["weeks"]
    assert checked(frame.drop(columns="event"), tmp_path / "n", target="cens").leaks == ()
    # a running total and its lag lie close to a line (r over 0.99999) but miss it by whole units: no copy
    sold = np.cumsum(rng.poisson(500, 200)).astype(float)
    running = pd.DataFrame({"day": np.arange(200.0), "yesterday": np.r_[0.0, sold[:-1]], "sold": sold})
    assert checked(running, tmp_path / "s", target="sold").leaks == ()
    # a category whose few number-like texts happen to lie on a line with the target is no copy of it
    coded = pd.DataFrame({"code": ["a", "b"] * 18 + ["1", "1", "2", "a"], "size": rng.normal(0, 1, 40),
                          "price": np.r_[rng.integers(30, 90, 36), [10, 10, 20, 3]].astype(float)})
    assert checked(coded, tmp_path / "p", target="price").leaks == ()
    # a regression target of text is the feature step's one line to give, not a crash here
    worded = frame.assign(cens=np.where(cens == 1, "lo", "hi"))
    assert validate.run(worded, source="t.csv", target="cens", validation=ValidationSpec(), feature=FeatureSpec(),
                        out_dir=tmp_path / "w", task="regression").leaks == ()


def test_numbers_with_a_missing_mark_are_refused_with_the_na_values_that_read_it(tmp_path: Path) -> None:
    """UCI and Orange tables write a missing value '?' (imports-85's normalized-losses: 34 of 193 rows): pandas
    reads it as text, so the column became a category per number and the weaker model was deployed; under 10% it
    failed on '?' with no way forward; and a price target with 4 '?' became 196 classes."""
    wine = load_wine(as_frame=True).frame
    text = wine.astype({"proline": str, "magnesium": str})
    text.loc[::5, "proline"] = "?"  # 20%: read as a category before
    text.loc[[3, 7], "magnesium"] = "-"
    with pytest.raises(DataError) as raised:
        checked(text, tmp_path / "a")
    assert str(raised.value) == (
        "t.csv: 2 columns hold numbers and '-', '?', which is not read as missing: column 'magnesium' ('-' in 2 of 178 "
        "rows), column 'proline' ('?' in 36 of 178 rows); if '-', '?' means missing, say so (--set "
        "'data.read.na_values=[\"-\", \"?\"]'), else set the column's role (feature.roles)")
    # the target: the fix keeps the spec's own na_values
    price = wine[["alcohol", "proline"]].astype({"proline": str})
    price.loc[[5, 50], "proline"] = "?"
    with pytest.raises(DataError, match=r"^t.csv: the target 'proline' \('\?' in 2 of 178 rows\) holds numbers and "
                                        r"'\?', .*--set 'data.read.na_values=\[\"n/a\", \"\?\"\]'\), else say the "
                                        r"target is classes \(--set data.task=classification\)$"):
        validate.run(price, source="t.csv", target="proline", validation=ValidationSpec(), feature=FeatureSpec(),
                     out_dir=tmp_path / "b", na_values=["n/a"])
    # a column the spec gives a role, or words among the marks: not refused
    validate.run(text, source="t.csv", target="target", validation=ValidationSpec(), out_dir=tmp_path / "d",
                 feature=FeatureSpec(roles={"proline": "categorical", "magnesium": "drop"}))
    listed = [c for c in wine.columns if c not in ("proline", "magnesium", "target")]  # both lists: the rest left out
    validate.run(text, source="t.csv", target="target", validation=ValidationSpec(), out_dir=tmp_path / "f",
                 feature=FeatureSpec(numeric=listed, categorical=[]))
    worded = wine.astype({"proline": str})
    worded.loc[::5, "proline"] = "?"
    worded.loc[1, "proline"] = "unknown"
    assert infer(worded, "target", FeatureSpec()).numeric.count("proline") == 0
    checked(worded, tmp_path / "e")
