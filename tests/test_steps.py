"""The steps as plain functions on tmp_path: no servers, real GE, sklearn, torch and ONNX Runtime."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from driftloop.components import evaluate, feature, train, validate
from driftloop.components.columns import ColumnRoles
from driftloop.errors import ValidationFailed
from driftloop.example import customers
from driftloop.onnx_model import OnnxModel
from driftloop.spec import FeatureSpec, TrainSpec, ValidationSpec


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("steps")
    table = customers(rows=1500)
    checked = validate.run(table, source="customers.csv", target="churned", validation=ValidationSpec(),
                           feature=FeatureSpec(), out_dir=out / "validation")
    feature.run(table, source="customers.csv", roles=ColumnRoles.load(checked.roles_path), spec=FeatureSpec(),
                task="auto", out_dir=out / "features")
    train.run(out / "features", spec=TrainSpec(epochs=10), out_dir=out / "train")
    return out


def test_split_is_deterministic_and_stratified(trained: Path, tmp_path: Path) -> None:
    import pandas as pd

    table = customers(rows=1500)
    roles = ColumnRoles.load(trained / "validation" / "columns.json")
    feature.run(table, source="x", roles=roles, spec=FeatureSpec(), task="auto", out_dir=tmp_path)
    for split in ("train", "val", "test"):
        again = pd.read_parquet(tmp_path / f"{split}.parquet")
        first = pd.read_parquet(trained / "features" / f"{split}.parquet")
        assert again.equals(first)
        assert abs(first["churned"].mean() - table["churned"].mean()) < 0.02


def test_onnx_takes_raw_rows_and_handles_unknowns(trained: Path) -> None:
    import pandas as pd

    model = OnnxModel(trained / "train" / "model.onnx")
    assert model.task == "classification" and model.classes == [0, 1]
    rows = pd.read_parquet(trained / "features" / "test.parquet").head(3).copy()
    rows.loc[rows.index[0], "plan"] = "platinum"  # never seen in training
    rows.loc[rows.index[1], "monthly_charges"] = None  # imputed with the training median
    rows.loc[rows.index[2], "region"] = None
    probabilities = model.run(rows)
    assert probabilities.shape == (3, 2) and np.isfinite(probabilities).all()
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)


def test_checkpoints_and_parity_are_recorded(trained: Path) -> None:
    import json

    record = json.loads((trained / "train" / "train.json").read_text())
    assert record["onnx_max_abs_diff"] <= 1e-4
    assert (trained / "train" / "checkpoints" / "best.pt").exists()
    assert 1 <= record["best_epoch"] <= len(record["history"]) <= 10


def test_evaluate_rescoring_the_same_model_matches(trained: Path, tmp_path: Path) -> None:
    model_path = trained / "train" / "model.onnx"
    result = evaluate.run(model_path, trained / "features", out_dir=tmp_path, onnx_max_abs_diff=0.0,
                          onnx_output_scale=1.0, latency_samples=20, champion_model_path=model_path,
                          champion_version="7")
    assert result.champion["version"] == "7"
    for name, value in result.champion["metrics"].items():
        assert math.isclose(value, result.metrics[name], rel_tol=1e-9)
    assert result.metrics["latency_p99_ms"] >= result.metrics["latency_p50_ms"] > 0
    assert result.baseline["accuracy"] == pytest.approx(1 - customers(rows=1500)["churned"].mean(), abs=0.03)


def test_declared_rules_fail_with_column_expectation_and_value(tmp_path: Path) -> None:
    spec = ValidationSpec.model_validate({"columns": {"customer_age": {"type": "numeric", "min": 18, "max": 60}}})
    with pytest.raises(ValidationFailed) as raised:
        validate.run(customers(rows=300), source="c.csv", target="churned", validation=spec, feature=FeatureSpec(),
                     out_dir=tmp_path)
    message = str(raised.value)
    assert message.startswith("c.csv: column 'customer_age': expect_column_values_to_be_between(")
    assert "unexpected values" in message and (tmp_path / "report.md").exists()


def test_the_step_table_names_each_steps_executor_in_order() -> None:
    import inspect

    from driftloop.components.steps import STEP_NAMES, STEPS, step

    assert STEP_NAMES == ("validate", "feature", "train", "evaluate", "gate", "deploy")
    for entry in STEPS:
        parameters = list(inspect.signature(entry.execute).parameters)
        assert parameters[0] == "ctx", entry.name
        assert step(entry.name) is entry
    with pytest.raises(KeyError, match="no step 'trian'"):
        step("trian")


def test_a_step_module_imports_no_runner_and_no_serving() -> None:
    """Steps sit below the runners: the deploy step registers; rolling serving out is the runners' business."""
    import ast

    from driftloop.components.steps import STEPS
    from tests.conftest import REPO

    for path in sorted((REPO / "driftloop" / "components").glob("*.py")):
        imported = {node.module for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                    if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {alias.name for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                     if isinstance(node, ast.Import) for alias in node.names}
        upward = {m for m in imported if m.split(".")[:2] in (["driftloop", "runner"], ["driftloop", "pipelines"],
                                                             ["driftloop", "operator"], ["driftloop", "serve"])}
        assert upward == set(), path.name
    assert {entry.module.rsplit(".", 1)[1] for entry in STEPS} <= {p.stem for p in (REPO / "driftloop" /
                                                                                   "components").glob("*.py")}


def test_param_is_sugar_over_set() -> None:
    from driftloop.pipelines.parameters import apply_params, params_as_overrides
    from driftloop.spec import load_spec

    assert params_as_overrides(['train={"epochs": 30, "lr": 1e-05}', 'gate={"min": {"roc_auc": 0.7}}', "output=o"]) \
        == ["train.epochs=30", "train.lr=1.0e-05", "gate.min={roc_auc: 0.7}", "output=o"]
    base = load_spec(None, data="t.csv", target="y")
    via_param = apply_params(base, ['train={"epochs": 30, "lr": 1e-05}', 'gate={"min": {"roc_auc": 0.7}}'])
    via_set = load_spec(None, data="t.csv", target="y",
                        overrides=["train.epochs=30", "train.lr=1.0e-05", "gate.min={roc_auc: 0.7}"])
    assert via_param == via_set


def test_onnx_input_names_are_safe_unique_and_mapped(tmp_path: Path) -> None:
    from driftloop.onnx_model import safe_input_names

    names = safe_input_names(["mean radius", "Culmen Length (mm)", "1st", "mean_radius", "größe", "class", ""])
    assert names == {"mean radius": "mean_radius", "Culmen Length (mm)": "Culmen_Length__mm_", "1st": "c_1st",
                     "mean_radius": "mean_radius_2", "größe": "gr__e", "class": "class", "": "c"}


def test_a_repeated_csv_header_is_refused_at_read_time(tmp_path: Path) -> None:
    from driftloop.errors import DataError
    from driftloop.table import load_table

    (tmp_path / "dup.csv").write_text("a,b,a,y\n1,2,3,x\n4,5,6,y\n")
    with pytest.raises(DataError, match="column name 'a' appears more than once"):
        load_table(str(tmp_path / "dup.csv"))
    (tmp_path / "ok.csv").write_text("a,a.1,y\n1,2,x\n")  # a real `a.1` column is no duplicate
    assert load_table(str(tmp_path / "ok.csv")).frame.columns.tolist() == ["a", "a.1", "y"]


def test_a_table_too_small_to_split_is_one_line_naming_the_minimum(tmp_path: Path) -> None:
    import pandas as pd

    from driftloop.errors import DataError

    nine = pd.DataFrame({"x": [float(i) for i in range(9)], "y": ["a", "b", "c"] * 3})  # 3 per class, 3 classes
    roles = ColumnRoles(target="y", numeric=["x"], categorical=[])
    with pytest.raises(DataError) as caught:
        feature.run(nine, source="t.csv", roles=roles, spec=FeatureSpec(), task="classification", out_dir=tmp_path)
    assert str(caught.value) == ("t.csv: too few rows to split: 3 classes of target 'y' have fewer than 5 rows: "
                                 "'a' (3), 'b' (3), 'c' (3); with 3 classes, train, validation and test need at least 5 "
                                 "rows per class; larger holdouts split it (--set feature.test_size=0.3 --set "
                                 "feature.val_size=0.3), or merge the rare classes into others")
    # the way it names splits the table (Orange's zoo: 4 amphibians in 101 animals)
    done = feature.run(nine, source="t.csv", roles=roles, spec=FeatureSpec(test_size=0.3, val_size=0.3),
                       task="classification", out_dir=tmp_path / "larger")
    assert done.task == "classification"
    one = pd.DataFrame({"x": [float(i) for i in range(13)], "y": ["a"] * 5 + ["b"] * 5 + ["c"] * 3})
    with pytest.raises(DataError) as caught:
        feature.run(one, source="t.csv", roles=roles, spec=FeatureSpec(), task="classification", out_dir=tmp_path)
    assert str(caught.value).startswith("t.csv: too few rows to split: class 'c' of target 'y' has 3 rows; with 3 "
                                        "classes, train, validation and test need at least 5 rows per class; larger ")
    two = pd.DataFrame({"x": [float(i) for i in range(12)], "y": ["a"] * 5 + ["b"] * 5 + ["c"] * 2})
    with pytest.raises(DataError, match="per class; merge the rare classes into others, or leave their rows out$"):
        feature.run(two, source="t.csv", roles=roles, spec=FeatureSpec(), task="classification", out_dir=tmp_path)
    assert feature.min_rows_per_class(2, FeatureSpec()) == 4
    eight = pd.DataFrame({"x": [float(i) for i in range(8)], "y": ["a", "b"] * 4})  # exactly the minimum splits
    done = feature.run(eight, source="t.csv", roles=roles, spec=FeatureSpec(), task="classification",
                       out_dir=tmp_path / "ok")
    assert done.task == "classification"
    tiny = pd.DataFrame({"x": [1.0, 2.0], "y": [0.5, 1.5]})
    with pytest.raises(DataError, match="2 rows are too few to split into train, validation and test; at least 8"):
        feature.run(tiny, source="t.csv", roles=roles, spec=FeatureSpec(), task="regression", out_dir=tmp_path)
    # plotly's 3-row medals table split 1/1/1: a 1-row holdout has no r2, and the gate judged on it
    medals = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0.5, 1.5, 2.0]})
    with pytest.raises(DataError, match="3 rows are too few to split"):
        feature.run(medals, source="t.csv", roles=roles, spec=FeatureSpec(), task="regression", out_dir=tmp_path)
    eight = pd.DataFrame({"x": [float(i) for i in range(8)], "y": [i * 0.5 for i in range(8)]})
    split = feature.run(eight, source="t.csv", roles=roles, spec=FeatureSpec(), task="regression", out_dir=tmp_path / "8")
    assert split.task == "regression"
    assert min(len(pd.read_parquet(tmp_path / "8" / f"{part}.parquet")) for part in ("train", "val", "test")) == 2


def test_an_evaluation_window_skips_unlabelled_rows_and_names_a_class_the_model_never_saw(trained: Path,
                                                                                          tmp_path: Path) -> None:
    """A fresh window often holds rows not yet labelled, or a label new since training: the first are left out and
    counted, the second is one line naming the label (it was a raw sklearn ValueError, reported as a retryable
    internal error, which a Kubernetes Job retried)."""
    import pandas as pd

    from driftloop.errors import DataError

    model = OnnxModel(trained / "train" / "model.onnx")
    rows = pd.read_parquet(trained / "features" / "test.parquet").head(40).copy()
    rows["churned"] = rows["churned"].astype(object)
    rows.loc[rows.index[:5], "churned"] = None
    rows.to_csv(tmp_path / "window.csv", index=False)
    window = evaluate.score_window(str(tmp_path / "window.csv"), model, None)
    assert window["rows"] == 35 and window["unlabelled_rows"] == 5
    assert window["metrics"] == evaluate.score(model, rows.iloc[5:].astype({"churned": int}))
    rows.loc[rows.index[7], "churned"] = 2
    rows.to_csv(tmp_path / "new-class.csv", index=False)
    with pytest.raises(DataError, match=r"1 rows labelled with a class the model never saw: 2 \(its classes: 0, 1\)"):
        evaluate.score_window(str(tmp_path / "new-class.csv"), model, None)
    rows.assign(churned=None).to_csv(tmp_path / "unlabelled.csv", index=False)
    with pytest.raises(DataError, match="no labelled row"):
        evaluate.score_window(str(tmp_path / "unlabelled.csv"), model, None)


@pytest.mark.parametrize("feature_spec", [FeatureSpec(drop=["notes"]), FeatureSpec(roles={"notes": "drop"})],
                         ids=["feature.drop", "feature.roles"])
def test_an_empty_column_the_spec_drops_does_not_stop_validation(feature_spec: FeatureSpec, tmp_path: Path) -> None:
    """The error says "drop it": dropping it in the spec must be enough, without editing the file."""
    from driftloop.errors import DataError

    table = customers(rows=300).assign(notes=None)
    with pytest.raises(DataError, match="column 'notes' is entirely null"):
        validate.run(table, source="t.csv", target="churned", validation=ValidationSpec(), feature=FeatureSpec(),
                     out_dir=tmp_path / "plain")
    # every empty column in the one line, with the option that drops them all (one rerun, not one per column)
    with pytest.raises(DataError, match=r"^t.csv: 2 columns are entirely null \(300 rows\): 'notes', 'Temp: \(C\)'; "
                                        r"drop them \(--set 'feature.drop=\[\"notes\", \"Temp: \(C\)\"\]'\) or fill "
                                        r"them$"):
        validate.run(table.assign(**{"Temp: (C)": None}), source="t.csv", target="churned",
                     validation=ValidationSpec(), feature=FeatureSpec(), out_dir=tmp_path / "two")
    from driftloop.spec import load_spec

    dropped = load_spec(data="t.csv", target="churned", overrides=['feature.drop=["notes", "Temp: (C)"]'])
    assert dropped.feature.drop == ["notes", "Temp: (C)"]
    # the spec's own drops stay in the option, which replaces the list; a name with an apostrophe is shell-quoted
    with pytest.raises(DataError, match=r"drop them \(--set 'feature.drop=\[\"region\", \"notes\", \"driver'\"'\"'s "
                                        r"age\"\]'\) or fill them$"):
        validate.run(table.assign(**{"driver's age": None}), source="t.csv", target="churned",
                     validation=ValidationSpec(), feature=FeatureSpec(drop=["region"]), out_dir=tmp_path / "three")
    checked = validate.run(table, source="t.csv", target="churned", validation=ValidationSpec(),
                           feature=feature_spec, out_dir=tmp_path / "dropped")
    roles = ColumnRoles.load(checked.roles_path)
    assert "notes" not in roles.features
    assert [r["role"] for r in roles.table if r["column"] == "notes"] == ["drop"]


def test_a_misread_header_in_predict_and_drift_names_the_read_option(trained: Path, tmp_path: Path) -> None:
    """A model trained with data.read.sep='\\s+' scores and checks a file of the same form only with --read; without
    it the header is one column, and the error says so instead of listing every input as missing."""
    import pandas as pd

    from driftloop.drift.detect import DriftParams, detect
    from driftloop.errors import DataError
    from driftloop.predict import _check_columns
    from driftloop.table import load_table

    aligned = tmp_path / "new.txt"
    aligned.write_text(customers(rows=40).drop(columns=["churned"]).to_string(index=False))
    misread = load_table(str(aligned)).frame
    assert len(misread.columns) == 1
    hint = r"the header was read as 1 column\(s\), ' +customer_age +tenure_months.*': set the read option sep to"
    with pytest.raises(DataError, match=r"new\.txt: 9 input\(s\) of the model are missing, 'customer_age', .*; " + hint):
        _check_columns(OnnxModel(trained / "train" / "model.onnx"), misread, "new.txt")
    roles = ColumnRoles.load(trained / "validation" / "columns.json")
    reference = pd.read_parquet(trained / "features" / "reference.parquet")
    with pytest.raises(DataError, match="current data lacks feature column 'customer_age' that the reference has; "
                                        + hint):
        detect(reference, misread, roles, DriftParams())
    read = load_table(str(aligned), read={"sep": "\\s+"}).frame
    _check_columns(OnnxModel(trained / "train" / "model.onnx"), read, "new.txt")  # read right: nothing to say


def test_batch_scoring_refuses_a_number_beyond_float32_as_serving_does(trained: Path) -> None:
    """Cast to the model's float32 input, 1.36e50 became inf and its row was scored (numpy's overflow warning,
    exit 0) while serving answered 400 for the same row."""
    from driftloop.errors import DataError
    from driftloop.predict import predictions_frame

    rows = customers(rows=5).drop(columns=["churned"])
    rows["monthly_charges"] = rows["monthly_charges"].astype("float64")
    rows.loc[3, "monthly_charges"] = 1.356392489e50
    with pytest.raises(DataError, match=r"^column 'monthly_charges': 1.356392489e\+50 at row 5 is out of range for "
                                        r"the model's float32 input \(at most ±3.403e\+38\)$"):
        predictions_frame(OnnxModel(trained / "train" / "model.onnx"), rows)
    rows.loc[3, "monthly_charges"] = 3e38  # within: scored
    assert len(predictions_frame(OnnxModel(trained / "train" / "model.onnx"), rows)) == 5


def test_a_parquet_tables_none_level_stays_a_category_and_batch_scoring_reads_missing_text(trained: Path,
                                                                                          tmp_path: Path) -> None:
    """A Parquet table is read without pandas' missing-value texts: its `Improved` level "None" is a category the
    model learns, so the model file must not say "None" is missing (serving would then score it as a blank). A CSV
    table's "NA" was missing in training, and batch scoring of a Parquet or JSON Lines file reads it so too."""
    import pandas as pd

    from driftloop.canonical import DEFAULT_MISSING_TEXTS

    rng = np.random.default_rng(2)
    table = pd.DataFrame({"age": rng.integers(20, 75, 200).astype(float),
                          "improved": rng.choice(["None", "Some", "Marked"], 200), "y": [0, 1] * 100})
    checked = validate.run(table, source="a.parquet", target="y", validation=ValidationSpec(), feature=FeatureSpec(),
                           out_dir=tmp_path / "validation")
    feature.run(table, source="a.parquet", roles=ColumnRoles.load(checked.roles_path), spec=FeatureSpec(),
                task="auto", out_dir=tmp_path / "features")
    kept = train.kept_missing_texts(tmp_path / "features", {})
    assert "None" not in kept and kept == DEFAULT_MISSING_TEXTS - {"None"}
    assert train.kept_missing_texts(trained / "features", {}) == DEFAULT_MISSING_TEXTS  # from CSV-like text

    model = OnnxModel(trained / "train" / "model.onnx")
    rows = pd.read_parquet(trained / "features" / "test.parquet").head(3).copy()
    rows["plan"] = ["NA", "None", rows["plan"].iloc[2]]
    assert model.feed(rows)["plan"][:, 0].tolist() == ["", "", rows["plan"].iloc[2]]


def test_json_lines_output_writes_each_float_exactly_and_whole_numbers_alike_in_every_chunk() -> None:
    """pandas' `to_json` kept 10 decimals (0.12345678901234567 came back 0.123456789), and a whole number was an
    integer only in a chunk whose column was whole throughout: `5` in one chunk, `5.0` in the next."""
    import io
    import json

    import numpy as np
    import pandas as pd

    from driftloop.predict import _going_out, _write_rows

    chunks = [pd.DataFrame({"x": [5.0, 7.0], "prediction": [0.0, 1.0], "p": [0.12345678901234567, 1 / 3],
                            "t": ["a", None]}),
              pd.DataFrame({"x": [5.0, np.nan, 2.5], "prediction": [1.0, 0.0, 1.0], "p": [1e-300, 0.1, 1.0],
                            "t": ["b", "c", np.nan]}, index=[2, 3, 4])]
    sink = io.BytesIO()
    for chunk in chunks:
        _write_rows(_going_out(chunk[["x", "t"]], chunk[["prediction", "p"]], "jsonl"), sink, "jsonl")
    lines = sink.getvalue().decode().splitlines()
    assert [line.split(",")[0] for line in lines] == ['{"x":5', '{"x":7', '{"x":5', '{"x":null', '{"x":2.5']
    rows = [json.loads(line) for line in lines]
    assert [r["p"] for r in rows] == [0.12345678901234567, 1 / 3, 1e-300, 0.1, 1.0]
    assert [r["t"] for r in rows] == ["a", None, "b", "c", None]
    # a float class label is written as the input's own whole numbers are (arch's admit: 0/1, not 0.0/1.0)
    assert ['"prediction":0,' in lines[0], '"prediction":1,' in lines[1]] == [True, True]
    csv = io.BytesIO()
    _write_rows(_going_out(chunks[0][["x", "t"]], chunks[0][["prediction", "p"]], "csv"), csv, "csv")
    assert csv.getvalue().decode().splitlines()[1].startswith("5,a,0,0.12345678901234566")


def test_a_streamed_table_keeps_a_column_whose_chunks_read_apart_as_a_whole_read_has_it(trained: Path,
                                                                                        tmp_path: Path) -> None:
    """A column of digits until a letter in a later chunk (a code '12134' .. 'A1234' .. '1.50') wrote 1.5 for '1.50'
    from the chunks that parsed it as numbers; an id beyond 2**53 with a blank in a later chunk crashed the Parquet
    writer. (Codes with leading zeros, '02134', are read as text from the start: `CsvDialect.codes`.)"""
    import io

    import pandas as pd

    from driftloop.console import Console
    from driftloop.predict import _score_streamed

    rows = customers(rows=9).drop(columns=["churned"])
    rows["zip"] = ["12134", "12135", "12136", "12137", "A1234", "12139", "1.50", "1e3", "12140"]
    rows["order"] = [str(2**53 + 1 + i) for i in range(9)]
    rows.loc[7, "order"] = ""
    rows.to_csv(tmp_path / "in.csv", index=False)
    whole = pd.read_csv(tmp_path / "in.csv", dtype=str, keep_default_na=False)
    model = OnnxModel(trained / "train" / "model.onnx")
    for kind in ("csv", "parquet", "jsonl"):
        said = io.StringIO()
        scratch = tmp_path / kind
        scratch.mkdir()
        _score_streamed(model, "m", 1, data=str(tmp_path / "in.csv"), output=str(tmp_path / f"out.{kind}"),
                        kind=kind, read={}, chunk_rows=3, console=Console(stream=said), scratch=scratch)
        assert "'zip': text in some chunks, numbers in others; scoring again" in said.getvalue()
        out = tmp_path / f"out.{kind}"
        got = (pd.read_csv(out, dtype=str) if kind == "csv" else pd.read_parquet(out) if kind == "parquet"
               else pd.read_json(out, lines=True, dtype=False))
        assert got["zip"].astype(str).tolist() == whole["zip"].tolist(), kind
        assert len(got) == 9 and pd.isna(got["order"][7]), kind


def test_nested_parquet_values_passed_through_are_plain_json_at_every_depth() -> None:
    """Lists of lists and structs of lists hold numpy arrays inside numpy arrays: JSON Lines wrote their Python
    text ("['a' 'b']") and CSV output failed ("unsupported datatype in numpy array")."""
    import io
    import json

    import pandas as pd

    from driftloop.predict import _nested_as_json, _write_rows

    frame = pd.DataFrame({"ll": [np.array([np.array(["a", "b"], dtype=object), np.array(["c"], dtype=object)],
                                          dtype=object), None],
                          "st": [{"k": np.array(["a", "b"], dtype=object)}, {"k": np.array([1.5, np.nan])}]})
    expected = [{"ll": [["a", "b"], ["c"]], "st": {"k": ["a", "b"]}}, {"ll": None, "st": {"k": [1.5, None]}}]
    sink = io.BytesIO()
    _write_rows(frame, sink, "jsonl")
    assert [json.loads(line) for line in sink.getvalue().decode().splitlines()] == expected
    as_csv = _nested_as_json(frame)
    assert [json.loads(v) if v is not None else None for v in as_csv["ll"]] == [e["ll"] for e in expected]
    assert [json.loads(v) for v in as_csv["st"]] == [e["st"] for e in expected]
