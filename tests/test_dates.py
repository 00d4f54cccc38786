"""Dates in the model file (issue 12, item 2: "the ONNX file still takes raw rows, including raw date strings"):
the graph's calendar features equal training's Python ones on every format, leap years and unreadable text
included; a format is found from the data; and a bare onnxruntime session given the file and the raw date
text answers as driftloop's own feed does."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from driftloop.canonical import calendar_parts
from driftloop.dates import FORMATS, detect, parse, written

PARTS = ["year", "month", "weekday", "dayofyear", "hour"]
EDGES = [date(1900, 2, 28), date(1900, 3, 1), date(2000, 2, 29), date(2000, 3, 1), date(2023, 12, 31),
         date(2024, 12, 31), date(2025, 1, 1), date(1, 1, 1), date(9999, 12, 31)]
UNREADABLE = ["", "garbage", "2026-02-30", "1900-02-29", "31/04/2026", "13/13/2026", "0000-01-01", "Feb 29, 2023",
              "2026-11-28 24:00", "11/28/26", "28\t11 2026"]


def calendar_session(fmt: str):  # type: ignore[no-untyped-def]
    """The graph `onnx_calendar` builds for one column, alone, under a bare onnxruntime session."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from driftloop.onnx_calendar import DATES_OPSET, calendar_graph

    outputs = {p: f"out_{p}" for p in PARTS}
    nodes, constants = calendar_graph("text", fmt, PARTS, outputs, "d_")
    graph = helper.make_graph(nodes, "calendar", [helper.make_tensor_value_info("text", TensorProto.STRING, [None, 1])],
                              [helper.make_tensor_value_info(outputs[p], TensorProto.FLOAT, [None, 1]) for p in PARTS],
                              constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", DATES_OPSET)])
    model.ir_version = 9
    onnx.checker.check_model(model, full_check=True)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def graph_and_python(fmt: str, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    got = np.hstack(calendar_session(fmt).run(None, {"text": np.array(texts, dtype=object).reshape(-1, 1)}))
    return got, np.array([calendar_parts(t, tuple(PARTS), fmt) for t in texts], dtype=np.float32)


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_graph_computes_the_calendar_features_training_computes(fmt: str) -> None:
    rng = random.Random(fmt)
    days = EDGES + [date(1, 1, 1) + timedelta(days=rng.randrange(3_652_058)) for _ in range(400)]
    texts = [written(d, fmt) for d in days]
    texts += [f"{written(d, fmt)} {rng.randrange(24):02d}:{rng.randrange(60):02d}" for d in days[:100]]
    texts += [f"  {texts[2]}  ", f"{texts[3]} 7:05:09"] + UNREADABLE
    if fmt.startswith("YYYY-"):
        texts += ["2000-02-29T23:59:59.5+01:00", "2000-02-29T00:00Z"]
    got, want = graph_and_python(fmt, texts)
    assert np.isnan(want).any(axis=1).sum() >= len(UNREADABLE) - 1  # "28 11 2026"-like text is no date here
    np.testing.assert_array_equal(got, want)  # NaN where NaN: max abs diff 0
    for batch in (texts[:1], UNREADABLE[:2], texts[:3]):  # StringSplit is only as wide as the batch needs
        np.testing.assert_array_equal(*graph_and_python(fmt, batch))


def test_known_days() -> None:
    assert calendar_parts("2000-02-29", ("weekday", "dayofyear")) == [1.0, 60.0]  # a Tuesday, the 60th day
    assert calendar_parts("28/11/2026 13:45", ("month", "weekday", "hour"), "DD/MM/YYYY") == [11.0, 5.0, 13.0]
    assert calendar_parts("Sept 3, 2020", ("month",), "Mon DD, YYYY") == [9.0]
    assert calendar_parts(datetime(2024, 12, 31, 23), ("dayofyear", "hour"), "MM/DD/YYYY") == [366.0, 23.0]
    assert parse("1900-02-29") is None and parse("2026-11-28T07:05") == (2026, 11, 28, 7)


@pytest.mark.parametrize(("values", "fmt", "noted"), [
    (["2026-11-28", "2026-01-02"], "YYYY-MM-DD", False),
    (["11/28/2026", "01/02/2026"], "MM/DD/YYYY", False),
    (["28/11/2026", "01/02/2026"], "DD/MM/YYYY", False),
    (["28.11.2026", "1.2.2026 08:30"], "DD.MM.YYYY", False),
    (["28-11-2026"], "DD-MM-YYYY", False),
    (["2026/11/28"], "YYYY/MM/DD", False),
    (["Nov 28, 2026", "Jan 2, 2026"], "Mon DD, YYYY", False),
    (["28 Nov 2026", "2 January 2026"], "DD Mon YYYY", False),
    (["19-Sep-2003", "2-jan-2026"], "DD-Mon-YYYY", False),
    (["19-Sep-03", "18-SEP-03 16:00"], "DD-Mon-YY", False),  # Excel's and Oracle's export form
    (["01/02/2026", "03/04/2026"], "MM/DD/YYYY", True),  # every field ≤ 12: month first, and the roles table says so
    (["1949-01", "1949-12", "2026-3"], "YYYY-MM", False),  # a monthly series' index, as pandas writes a Period
])
def test_the_format_is_found_from_the_data(values: list[str], fmt: str, noted: bool) -> None:
    found = detect(values)
    assert found is not None and found[0] == fmt and bool(found[1]) == noted


@pytest.mark.parametrize("values", [["28/11/2026", "11/28/2026"], ["2026-11-28", "28/11/2026"], ["11/28/26"],
                                    ["3.750"], ["Nov 2026"], ["19-Sep-03", "19-Sep-2003"], ["19-Sep-003"],
                                    ["2020-21", "2021-22"], ["1949-01", "1949-01-15"],  # seasons; months and days
                                    ["4521-07", "1001-01"],  # codes, not months of this era
                                    ["2009-10", "2010-11", "2011-12"], ["0000-05", "2000-01"]])  # seasons; year 0
def test_mixed_or_partial_dates_are_not_a_format(values: list[str]) -> None:
    assert detect(values) is None


def test_a_two_digit_year_is_1969_to_2068_in_training_and_in_the_model_file() -> None:
    """As POSIX strptime's %y: fixed, so "03" is 2003 in every year the model serves."""
    fmt = "DD-Mon-YY"
    assert [parse(t, fmt)[0] for t in ("01-Jan-69", "31-Dec-99", "01-Jan-00", "31-Dec-68")] == [1969, 1999, 2000, 2068]
    assert parse("29-Feb-00", fmt) == (2000, 2, 29, 0) and parse("29-Feb-70", fmt) is None  # leap years by century
    assert written(date(2003, 9, 19), fmt) == "19-Sep-03" and written(date(1968, 12, 31), fmt) == ""  # not 2068
    days = [date(1969, 1, 1) + timedelta(days=d) for d in range(0, 36524, 97)] + [date(1972, 2, 29), date(2000, 2, 29)]
    texts = [written(d, fmt) for d in days] + ["19-SEP-03 23:59", "19-Sep-03", "1-sept-03", "19-Sep-3", "32-Jan-03"]
    got, want = graph_and_python(fmt, texts)
    assert not np.isnan(want[:-2]).any() and np.isnan(want[-2:]).all()
    np.testing.assert_array_equal(got, want)
    assert want[0].tolist() == [1969.0, 1.0, 2.0, 1.0, 0.0]  # 1 Jan 1969 was a Wednesday


def test_a_spreadsheet_export_of_dates_is_a_date_column_not_an_id() -> None:
    """matplotlib's msft.csv, as shipped: "19-Sep-03", one per row, which read as an id before."""
    from pathlib import Path

    import matplotlib

    from driftloop.components.roles import infer
    from driftloop.spec import FeatureSpec

    msft = pd.read_csv(Path(matplotlib.get_data_path()) / "sample_data" / "msft.csv")
    roles = infer(msft, "Adj. Close*", FeatureSpec())
    assert roles.date_formats == {"Date": "DD-Mon-YY"} and "Date" in roles.datetime
    assert next(r for r in roles.table if r["column"] == "Date")["role"] == "datetime"


def test_an_ambiguous_column_says_how_it_was_read_in_the_roles_table() -> None:
    from driftloop.components.roles import infer
    from driftloop.spec import FeatureSpec

    frame = pd.DataFrame({"day": [f"{m:02d}/{d:02d}/2026" for m in range(1, 13) for d in range(1, 13)],
                          "y": [0, 1] * 72})
    roles = infer(frame, "y", FeatureSpec())
    assert roles.date_formats == {"day": "MM/DD/YYYY"}
    assert roles.table[0]["why"] == ("dates as MM/DD/YYYY: year, month, day of week, day of year "
                                     "(every day and month ≤ 12: read as MM/DD/YYYY)")


def small_model(frame: pd.DataFrame, target: str):  # type: ignore[no-untyped-def]
    """A real model file from the steps' own functions (no MLflow): roles, transform, ONNX, merge."""
    from sklearn.linear_model import LogisticRegression

    from driftloop.components.columns import canonical_frame
    from driftloop.components.feature import build_transform, transform_input
    from driftloop.components.roles import infer
    from driftloop.onnx_model import estimator_to_onnx, merge, transform_rows, transform_to_onnx
    from driftloop.spec import FeatureSpec

    roles = infer(frame, target, FeatureSpec())
    rows = canonical_frame(frame, roles)
    fitted = build_transform(roles, FeatureSpec(), transform_input(rows, roles)).fit(transform_input(rows, roles))
    graph = transform_to_onnx(fitted, roles)
    features = transform_rows(graph, rows, roles)
    expected = fitted.transform(transform_input(rows, roles))  # sklearn on the Python calendar features
    estimator = LogisticRegression(max_iter=200).fit(features, frame[target])
    model = merge(graph, estimator_to_onnx(estimator, features.shape[1], "probabilities"), task="classification",
                  classes=sorted(set(frame[target])), roles=roles)
    return roles, model, features, np.asarray(expected, dtype=np.float64)


def dated_table(rows: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    days = pd.Timestamp("1999-12-20") + pd.to_timedelta(rng.integers(0, 800, rows), unit="D")
    hours = rng.integers(0, 24, rows)
    frame = pd.DataFrame({
        "when": [f"{d:%d/%m/%Y} {h:02d}:15" for d, h in zip(days, hours, strict=True)],
        "iso": days.strftime("%Y-%m-%d"),
        "size": rng.normal(size=rows),
        "y": np.where((days.month > 6) ^ (hours > 11), "a", "b"),
    })
    frame.loc[[3, 7], "when"] = None  # missing dates: imputed in the graph as in training
    frame.loc[5, "iso"] = ""
    return frame


def test_a_bare_onnxruntime_session_scores_raw_date_text_as_driftloop_does(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    import onnx
    import onnxruntime as ort

    from driftloop.onnx_model import OnnxModel

    frame = dated_table()
    roles, model, features, expected = small_model(frame, "y")
    assert roles.date_formats == {"when": "DD/MM/YYYY", "iso": "YYYY-MM-DD"}
    assert roles.datetime["when"][-1] == "hour"
    onnx.checker.check_model(model, full_check=True)
    assert {e.domain: e.version for e in model.opset_import}[""] == 20
    # the preprocessing graph, dates parsed inside it, equals scikit-learn on training's Python features, up to
    # float32 scaling: a year near 2000 with a spread under 1 keeps about 1e-4 after standardising
    assert float(np.abs(features - expected).max()) < 5e-4
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))

    raw = frame.drop(columns="y")
    ours = OnnxModel(path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])  # what Triton or KServe holds
    names = json.loads(session.get_modelmeta().custom_metadata_map["driftloop.inputs"])
    assert {i.name for i in session.get_inputs()} == set(names.values())
    texts = {i.name: i.type for i in session.get_inputs()}
    assert texts[names["when"]] == texts[names["iso"]] == "tensor(string)"
    feed = {names[c]: (raw[c].fillna("").to_numpy(dtype=object) if raw[c].dtype == object
                       else raw[c].to_numpy(dtype=np.float32)).reshape(-1, 1) for c in names}
    bare = session.run(None, feed)[0]
    np.testing.assert_array_equal(bare, ours.run(raw))
    assert ours.columns == ["size", "when", "iso"] and ours.datetime == {}  # no feature computed outside the graph
    assert ours.date_formats == {"when": "DD/MM/YYYY", "iso": "YYYY-MM-DD"}
    # a Timestamp reaches the graph written in the column's format
    stamped = raw.assign(iso=pd.to_datetime(raw["iso"]))
    np.testing.assert_array_equal(ours.run(stamped), bare)


def test_a_model_without_dates_stays_at_opset_17() -> None:
    frame = dated_table().drop(columns=["when", "iso"])
    frame["size2"] = frame["size"] * 2 + 1
    _, model, _, _ = small_model(frame, "y")
    assert {e.domain: e.version for e in model.opset_import}[""] == 17 and model.ir_version == 8


def test_a_monthly_column_is_its_year_and_month_in_training_the_model_file_and_serving(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """sktime's airline series and every billing-month export write '1949-01': it was an id (one value per row) and
    dropped, or with datetime set, an error. The month's first day; its features are the year and the month."""
    import onnx

    from driftloop.onnx_model import OnnxModel
    from driftloop.serve.errors import ClientError
    from driftloop.serve.schema import InputSchema

    assert parse("1949-03", "YYYY-MM") == (1949, 3, 1, 0) and parse("1949-13", "YYYY-MM") is None
    assert parse("0000-05", "YYYY-MM") is None  # no year 0, as in every other format
    assert written(datetime(1949, 3, 17, 8), "YYYY-MM") == "1949-03"
    months = pd.period_range("1949-01", periods=96, freq="M").astype(str)
    frame = pd.DataFrame({"Period": months, "size": np.arange(96.0) % 7,
                          "y": np.where(np.arange(96) % 12 < 6, "first half", "second half")})
    roles, model, features, expected = small_model(frame, "y")
    assert roles.datetime == {"Period": ["year", "month"]} and roles.date_formats == {"Period": "YYYY-MM"}
    assert next(r for r in roles.table if r["column"] == "Period")["why"] == "months as YYYY-MM: year, month"
    assert float(np.abs(features - expected).max()) < 5e-4  # the graph reads the text as training's Python did
    onnx.save(model, str(tmp_path / "model.onnx"))
    ours = OnnxModel(tmp_path / "model.onnx")
    raw = frame.drop(columns="y")
    as_stamps = raw.assign(Period=pd.to_datetime(raw["Period"]))  # a Parquet datetime column: written as its month
    np.testing.assert_array_equal(ours.run(as_stamps), ours.run(raw))
    assert (ours.predict(raw) == frame["y"].to_numpy()).mean() > 0.9  # the month is what the classes follow
    schema = InputSchema(numeric=("size",), categorical=("Period",), max_rows=10, date_formats={"Period": "YYYY-MM"})
    with pytest.raises(ClientError, match=r"'1949-13' at row 0 names no real month \(read as YYYY-MM"):
        schema.feed(schema.columns_of({"dataframe_records": [{"size": 1.0, "Period": "1949-13"}]})[0])
