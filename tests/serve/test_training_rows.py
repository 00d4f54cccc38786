"""Serving takes the rows training took (issue 12, item 5), at the schema level: no server needed.

The corpus tests (`tests/corpus/`) check the same contract end to end on real tables; these
pin each rule, including the JSON boolean that no corpus table has.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from driftloop.canonical import DEFAULT_MISSING_TEXTS
from driftloop.components.columns import ColumnRoles, canonical_frame
from driftloop.components.roles import infer as infer_roles
from driftloop.serve.errors import ClientError
from driftloop.serve.schema import InputSchema
from driftloop.spec import FeatureSpec

SCHEMA = InputSchema(numeric=("mass g",), categorical=("island", "clutch"), max_rows=100)


def test_json_null_and_nan_numbers_are_missing_values() -> None:
    columns, n = SCHEMA.columns_of({"dataframe_records": [
        {"mass g": None, "island": "Dream", "clutch": True},
        {"mass g": 3750, "island": None, "clutch": False},
        {"mass g": math.nan, "island": "Biscoe", "clutch": True}]})
    feed = SCHEMA.feed(columns)
    assert n == 3
    assert np.isnan(feed["mass g"][[0, 2], 0]).all() and feed["mass g"][1, 0] == 3750
    assert feed["island"][:, 0].tolist() == ["Dream", "", "Biscoe"]


def test_json_booleans_are_the_categories_training_made_of_them() -> None:
    # pandas reads a True/False column as bool; roles make it a category; canonical text is str(True)
    frame = pd.DataFrame({"mass g": [1.0, 2.0], "island": ["a", "b"], "clutch": [True, False], "y": [0, 1]})
    roles = infer_roles(frame, "y", FeatureSpec())
    assert "clutch" in roles.categorical
    trained = canonical_frame(frame, roles)["clutch"].tolist()
    columns, _ = SCHEMA.columns_of({"instances": frame.drop(columns="y").to_dict("records")})
    assert SCHEMA.feed(columns)["clutch"][:, 0].tolist() == trained == ["True", "False"]


@pytest.mark.parametrize("cell", sorted(DEFAULT_MISSING_TEXTS))
def test_csv_cells_pandas_reads_as_missing_are_missing(cell: str) -> None:
    text = f'mass g,island,clutch\n"{cell}","{cell}",Yes\n3750,Dream,No\n'
    columns, n = SCHEMA.columns_of_csv(text)
    feed = SCHEMA.feed(columns)
    assert n == 2 and np.isnan(feed["mass g"][0, 0]) and feed["island"][0, 0] == ""
    # and exactly what training made of the same text
    import io

    read = pd.read_csv(io.StringIO(text))
    roles = ColumnRoles(target="none", numeric=["mass g"], categorical=["island", "clutch"])
    canonical = canonical_frame(read, roles)
    assert np.isnan(canonical["mass g"].iloc[0]) and canonical["island"].iloc[0] is None


def test_what_the_model_cannot_take_is_still_refused() -> None:
    for body, words in [
        ({"instances": [{"mass g": float("inf"), "island": "a", "clutch": "x"}]}, ["'mass g'", "finite"]),
        ({"instances": [{"mass g": 1e39, "island": "a", "clutch": "x"}]}, ["'mass g'", "float32"]),
        ({"instances": [{"mass g": True, "island": "a", "clutch": "x"}]}, ["'mass g'", "not a number"]),
        ({"instances": [{"mass g": "heavy", "island": "a", "clutch": "x"}]}, ["'mass g'", "not a number"]),
        ({"instances": [{"mass g": 1.0, "island": [3], "clutch": "x"}]}, ["'island'", "not a category"]),
    ]:
        with pytest.raises(ClientError) as raised:
            SCHEMA.feed(SCHEMA.columns_of(body)[0])
        assert raised.value.status == 400 and all(w in str(raised.value) for w in words), str(raised.value)


def test_a_json_nan_in_a_category_or_date_column_is_missing_as_null_is() -> None:
    """MLflow's ScoringServerClient writes a pandas missing value as the JSON literal NaN (json.dumps), whatever the
    column: a penguins row with no Sex or Date Egg is a training row, not a 400."""
    dated = InputSchema(numeric=("mass g",), categorical=("egg", "island"), max_rows=100,
                        date_formats={"egg": "YYYY-MM-DD"})
    columns, _ = dated.columns_of({"dataframe_records": [{"mass g": 1.0, "island": math.nan, "egg": math.nan},
                                                         {"mass g": 2.0, "island": None, "egg": None}]})
    feed = dated.feed(columns)
    assert feed["island"][:, 0].tolist() == ["", ""] and feed["egg"][:, 0].tolist() == ["", ""]
    # a model file from before the graph read dates: the server computes the calendar features, NaN as null
    older = InputSchema(numeric=("mass g",), categorical=("island",), max_rows=100, datetime={"egg": ["year"]})
    columns, _ = older.columns_of({"dataframe_records": [{"mass g": 1.0, "island": "a", "egg": math.nan},
                                                         {"mass g": 2.0, "island": "b", "egg": None}]})
    assert np.isnan(older.feed(columns)["egg__year"][:, 0]).all()


def test_the_v2_clients_missing_values_are_missing() -> None:
    """KServe's client writes a float tensor's NaN as JSON null (orjson); tritonclient and KServe's client write a
    text tensor's NaN as b"nan" (str(np.nan)). Both are the missing value `driftloop predict` reads, not a 400 and
    not an unknown category."""
    import json as json_module
    from types import SimpleNamespace

    import tritonclient.http as triton

    from driftloop.serve import v2

    model = SimpleNamespace(schema=SCHEMA, classes=None)
    null_float = {"inputs": [{"name": "mass g", "datatype": "FP32", "shape": [2, 1], "data": [39.1, None]},
                             {"name": "island", "datatype": "BYTES", "shape": [2, 1], "data": ["Dream", "nan"]},
                             {"name": "clutch", "datatype": "BYTES", "shape": [2, 1], "data": ["Yes", "No"]}]}
    parsed = v2.parse_infer(json_module.dumps(null_float).encode(), None, model)  # type: ignore[arg-type]
    feed = SCHEMA.feed(parsed.columns)
    assert np.isnan(feed["mass g"][1, 0]) and feed["island"][:, 0].tolist() == ["Dream", ""]
    inputs = []
    for name, values, datatype in (("mass g", np.array([[39.1], [np.nan]], dtype=np.float32), "FP32"),
                                   ("island", np.array([["Dream"], [np.nan]], dtype=object), "BYTES"),
                                   ("clutch", np.array([[None], [pd.NA]], dtype=object), "BYTES")):
        tensor = triton.InferInput(name, list(values.shape), datatype)
        tensor.set_data_from_numpy(values, binary_data=True)
        inputs.append(tensor)
    body, length = triton.InferenceServerClient.generate_request_body(inputs)
    binary = SCHEMA.feed(v2.parse_infer(body, str(length), model).columns)  # type: ignore[arg-type]
    assert binary["island"][:, 0].tolist() == ["Dream", ""] and np.isnan(binary["mass g"][1, 0])
    assert binary["clutch"][:, 0].tolist() == ["", ""]  # None (from Parquet) and pd.NA (a string column): "None", "<NA>"


@pytest.mark.parametrize("keep_default_na", [True, False], ids=["pandas-missing", "keep_default_na=false"])
def test_every_route_reads_missing_text_as_training_did(keep_default_na: bool) -> None:
    """pydataset's vcd Arthritis has an `Improved` level spelled `None`. Read as pandas reads a CSV, "None", "NA" and
    "null" were missing in training, and are missing on every route (JSON rows, V2 BYTES, CSV) and in `predict`;
    trained with data.read.keep_default_na=false they are the categories they say, again on every route. JSON rows
    kept them as text and V2 read only three of them as missing, so one row scored three ways."""
    from driftloop.canonical import missing_read, missing_texts
    from driftloop.serve.v2 import tensor_columns
    from driftloop.table import load_table

    read = {} if keep_default_na else {"keep_default_na": False}
    schema = InputSchema(numeric=("x",), categorical=("improved",), max_rows=100, missing=missing_texts(read))
    words = ["None", "NA", "null", "Some", ""]
    expected = (["", "", "", "Some", ""] if keep_default_na else ["None", "NA", "null", "Some", ""])
    routes = {
        "records": schema.columns_of({"dataframe_records": [{"x": 1.0, "improved": w} for w in words]})[0],
        "v2": tensor_columns([{"name": "x", "datatype": "FP32", "shape": [5], "data": [1.0] * 5},
                              {"name": "improved", "datatype": "BYTES", "shape": [5], "data": words}], schema, b"")[0],
        "csv": schema.columns_of_csv("x,improved\n" + "".join(f"1,{w}\n" for w in words))[0],
    }
    for route, columns in routes.items():
        assert schema.feed(columns)["improved"][:, 0].tolist() == expected, route
    # batch scoring reads the file with the model's reading of missing (`missing_read` of its texts)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rows.csv"
        path.write_text("x,improved\n" + "".join(f"1,{w}\n" for w in words))
        frame = load_table(str(path), read=missing_read(schema.missing)).frame
    cells = ["" if isinstance(v, float) and math.isnan(v) else v for v in frame["improved"]]
    assert cells == expected


def test_missing_texts_and_missing_read_are_inverse() -> None:
    from driftloop.canonical import DEFAULT_MISSING_TEXTS, missing_read, missing_texts

    for read in ({}, {"na_values": ["-", "?"]}, {"keep_default_na": False}, {"keep_default_na": False, "na_values": ["-"]}):
        assert missing_texts(missing_read(missing_texts(read))) == missing_texts(read)
    assert missing_texts({}) == DEFAULT_MISSING_TEXTS and missing_read(DEFAULT_MISSING_TEXTS) == {}
    assert missing_texts({"keep_default_na": False, "na_values": ["-"]}) == {"", "-"}


def test_the_models_na_values_are_missing_in_number_columns_too() -> None:
    """A UCI table written with '?' for missing trains with data.read.na_values=['?']; a row of it sent as CSV or JSON
    text was a 400 ("'?' is not a number") while training and predict read it as missing."""
    from driftloop.canonical import missing_read, missing_texts, over_missing_read

    schema = InputSchema(numeric=("x",), categorical=("c",), max_rows=10, missing=missing_texts({"na_values": ["?"]}))
    for columns in (schema.columns_of_csv("x,c\n?,?\n1.5,a\n")[0],
                    schema.columns_of({"dataframe_records": [{"x": "?", "c": "?"}, {"x": 1.5, "c": "a"}]})[0]):
        feed = schema.feed(columns)
        assert np.isnan(feed["x"][0, 0]) and feed["x"][1, 0] == 1.5 and feed["c"][:, 0].tolist() == ["", "a"]
    with pytest.raises(ClientError, match="'mass g': text '\\?' at row 0 is not a number"):  # pandas' own only
        SCHEMA.feed(SCHEMA.columns_of({"dataframe_records": [{"mass g": "?", "island": "a", "clutch": "b"}]})[0])
    # `--read na_values=-` adds to the model's '?', the user's other keys win
    model = missing_read(schema.missing)
    assert over_missing_read(model, {"na_values": ["-"], "sep": ";"}) == {"na_values": ["?", "-"], "sep": ";"}
    assert over_missing_read({"keep_default_na": False, "na_values": []}, {"keep_default_na": True}) == {
        "keep_default_na": True, "na_values": []}


def test_a_csv_body_that_did_not_split_on_commas_says_so() -> None:
    """A spreadsheet's `;`-separated export posted as text/csv read as one column, and the answer named the first
    model column as missing; the header is said as read, with what the body must be."""
    rows = pd.DataFrame({"mass g": [3750.0, 4100.0], "island": ["Dream", "Biscoe"], "clutch": ["x", "y"]})
    with pytest.raises(ClientError) as raised:
        SCHEMA.columns_of_csv(rows.to_csv(sep=";", index=False))
    assert raised.value.status == 400
    assert str(raised.value) == ("csv: the header was read as 1 column(s), 'mass g;island;clutch': a text/csv body is "
                                 "comma-separated (MLflow's scoring format); write it with DataFrame.to_csv() or send "
                                 "JSON"), str(raised.value)
    columns, n = SCHEMA.columns_of_csv(rows.to_csv(index=False))  # the same rows, comma-separated
    assert n == 2 and list(columns["island"]) == ["Dream", "Biscoe"]
    with pytest.raises(ClientError, match="csv: column 'clutch' is missing"):  # other columns are still just missing
        SCHEMA.columns_of_csv(rows.drop(columns="clutch").to_csv(index=False))


def test_a_csv_body_padded_after_each_comma_reads_as_training_and_predict_read_it() -> None:
    """A padded file's own lines ('mass g, island, clutch') posted as text/csv: 400 "column 'island' is missing",
    where `run` and `predict` read the same text without the padding."""
    body = 'mass g, island, clutch\n3750, Dream, "x, y"\n4100, Biscoe, z\n'
    columns, n = SCHEMA.columns_of_csv(body)
    assert n == 2 and list(columns["island"]) == ["Dream", "Biscoe"] and list(columns["clutch"]) == ["x, y", "z"]
    assert list(columns["mass g"]) == [3750.0, 4100.0]


def test_names_with_spaces_are_no_unsplit_header_and_one_with_a_separator_is() -> None:
    """'Weight Change' beside 'island' is a header read right (only 'Weight' is missing); model names with spaces in
    a ';' body are still found inside the one name it was read as."""
    spaced = InputSchema(numeric=("Weight", "Weight Change"), categorical=("island",), max_rows=100)
    with pytest.raises(ClientError, match="^csv: column 'Weight' is missing"):
        spaced.columns_of_csv("Weight Change,island\n1.5,Dream\n")
    named = InputSchema(numeric=("mass g", "bill mm"), categorical=("home island",), max_rows=100)
    body = pd.DataFrame({"mass g": [1.0], "bill mm": [2.0], "home island": ["Dream"]}).to_csv(sep=";", index=False)
    with pytest.raises(ClientError, match="^csv: the header was read as 1 column"):
        named.columns_of_csv(body)
    huge = 10 ** 400  # a JSON integer no float holds: its text, as a category
    assert SCHEMA.feed(SCHEMA.columns_of({"dataframe_records": [{"mass g": 1.0, "island": huge, "clutch": "x"}]})[0]
                       )["island"][0, 0] == str(huge)
