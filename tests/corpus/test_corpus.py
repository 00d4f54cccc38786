"""The corpus of real tables: default `driftloop run` deploys each one, and the serving contract holds on it.

The serving contract (issue 12, item 5): rows of the training table, sent to `driftloop serve`
as pandas' `to_json(orient="records")` and as the CSV's own text (with its `NA`/empty cells),
are all accepted, and the answers equal `driftloop predict`'s batch predictions of the same rows.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from driftloop.errors import DataError

from ..conftest import S3, Server, grpc_client
from .conftest import CorpusRun
from .tables import TABLES

SAMPLE_ROWS = 200


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TABLES))
def test_default_run_deploys_with_the_inferred_task(corpus_run: Callable[[str], CorpusRun], name: str) -> None:
    run = corpus_run(name)
    assert run.result["status"] == "completed" and run.result["deployed"] is True, run.result["gate"]
    task_line = next(line for line in run.stderr.splitlines() if line.startswith("task: "))
    assert task_line.startswith(f"task: {run.table.task} ("), task_line
    if run.table.positive_class is not None:
        assert task_line.endswith(f"positive class {run.table.positive_class!r}"), task_line
    metrics = run.result["metrics"]
    expected = {"balanced_accuracy", "pr_auc", "roc_auc", "f1"} if run.table.task == "classification" else {"rmse", "r2"}
    assert expected <= set(metrics), metrics


def _sample(run: CorpusRun) -> tuple[list[str], list[list[str]]]:
    """The CSV's header and up to SAMPLE_ROWS of its lines (seeded), cell text untouched."""
    lines = list(csv.reader(io.StringIO(run.csv.read_text(encoding="utf-8"))))
    header, data = lines[0], lines[1:]
    picked = sorted(random.Random(0).sample(range(len(data)), min(SAMPLE_ROWS, len(data))))
    return header, [data[i] for i in picked]


def _csv_text(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _assert_same_answers(served: dict, batch: pd.DataFrame, task: str, how: str) -> None:
    if task == "classification":
        assert served["predictions"] == batch["prediction"].tolist(), how
        probabilities = batch[[f"probability_{c}" for c in served["classes"]]].to_numpy()
        np.testing.assert_allclose(np.asarray(served["probabilities"]), probabilities, atol=1e-6, err_msg=how)
    else:
        np.testing.assert_allclose(np.asarray(served["predictions"]), batch["prediction"].to_numpy(), rtol=1e-6,
                                   err_msg=how)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TABLES))
def test_serving_answers_every_training_row_as_batch_predict_does(
        corpus_run: Callable[[str], CorpusRun], serve_model: Callable[[str], Server], tmp_path: Path,
        name: str) -> None:
    run = corpus_run(name)
    header, rows = _sample(run)
    sample = tmp_path / "sample.csv"
    sample.write_text(_csv_text(header, rows), encoding="utf-8")
    predicted = run.cli("predict", "--model", run.model, "--data", str(sample), "-o", str(tmp_path / "batch.parquet"))
    assert predicted.returncode == 0, predicted.stderr
    batch = pd.read_parquet(tmp_path / "batch.parquet")
    assert len(batch) == len(rows)

    server = serve_model(run.model)
    target = header.index(run.table.target)
    records = pd.read_csv(sample).drop(columns=[run.table.target]).to_json(orient="records")
    as_json = httpx.post(f"{server.url}/invocations", content='{"dataframe_records": ' + records + "}",
                         headers={"Content-Type": "application/json"}, timeout=60)
    assert as_json.status_code == 200, as_json.text
    _assert_same_answers(as_json.json(), batch, run.table.task, "JSON records")

    without_target = [[cell for i, cell in enumerate(row) if i != target] for row in [header, *rows]]
    as_csv = httpx.post(f"{server.url}/invocations", content=_csv_text(without_target[0], without_target[1:]),
                        headers={"Content-Type": "text/csv"}, timeout=60)
    assert as_csv.status_code == 200, as_csv.text
    _assert_same_answers(as_csv.json(), batch, run.table.task, "CSV text")

    # the same rows over gRPC, as tritonclient.grpc sends them: one typed tensor per column, as the metadata says
    over_grpc = grpc_client("infer", server, run.model, json.loads(records), tmp_path)
    if run.table.task == "classification":
        over_grpc["classes"] = as_json.json()["classes"]
    _assert_same_answers(over_grpc, batch, run.table.task, "gRPC tensors")


@pytest.mark.slow
def test_missing_values_are_what_the_contract_exercises() -> None:
    # the contract above means something only if the corpus has the cells it is about
    text = io.StringIO()
    TABLES["penguins"].frame().to_csv(text, index=False, na_rep=TABLES["penguins"].na_rep)
    cells = [cell for row in csv.reader(io.StringIO(text.getvalue())) for cell in row]
    assert cells.count("NA") >= 10


@pytest.mark.slow
def test_predict_reads_and_writes_s3(corpus_run: Callable[[str], CorpusRun], s3: S3) -> None:
    run = corpus_run("penguins")
    client = s3.client()
    client.create_bucket(Bucket="scoring")
    client.put_object(Bucket="scoring", Key="in/penguins.csv", Body=run.csv.read_bytes())
    proc = run.cli("predict", "--model", run.model, "--data", "s3://scoring/in/penguins.csv",
                   "-o", "s3://scoring/out/scored.csv")
    assert proc.returncode == 0, proc.stderr
    scored = pd.read_csv(io.BytesIO(client.get_object(Bucket="scoring", Key="out/scored.csv")["Body"].read()))
    assert len(scored) == len(pd.read_csv(run.csv))
    assert set(scored["prediction"]) <= {"Adelie", "Chinstrap", "Gentoo"}
    # the champion predicts its own training table well: a broken column mapping would not
    assert (scored["prediction"] == scored["species"]).mean() > 0.9
    assert json.loads(json.dumps(list(scored.columns)))[-3:] == [f"probability_{c}" for c in
                                                                ("Adelie", "Chinstrap", "Gentoo")]


@pytest.mark.slow
@pytest.mark.parametrize("args, code, words", [
    (["-o", "out.txt"], 2, ["out.txt", ".csv, .parquet or .jsonl"]),
    (["-o", "out.csv", "--version", "99"], 1, ["no version 99"]),
    (["-o", "out.csv", "--alias", "nowhere"], 1, ["no @nowhere version"]),
    (["-o", "out.csv", "--version", "1", "--alias", "champion"], 2, ["not both"]),
    (["-o", "out.csv", "--read", "sep=;;"], 2, ["sep", "single character"]),
    (["-o", "{data}"], 2, ["is the --data table itself"]),  # the rows would be gone, replaced by their scores
    (["-o", "out.csv", "--model", "pengiuns"], 1, ["registered model 'pengiuns' not found", "did you mean"]),
], ids=["suffix", "version", "alias", "both", "read option", "onto its input", "misspelt model"])
def test_predict_bad_arguments_get_one_line(corpus_run: Callable[[str], CorpusRun], args: list[str], code: int,
                                            words: list[str]) -> None:
    run = corpus_run("penguins")
    before = run.csv.read_bytes()
    proc = run.cli("predict", "--model", run.model, "--data", run.csv.name,
                   *[a.replace("{data}", run.csv.name) for a in args])
    assert proc.returncode == code, proc.stderr
    assert run.csv.read_bytes() == before
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and all(w in lines[0] for w in words), proc.stderr
    assert not (run.cwd / "out.csv").exists()


@pytest.mark.slow
def test_predict_names_a_missing_model_column(corpus_run: Callable[[str], CorpusRun]) -> None:
    run = corpus_run("penguins")
    pd.read_csv(run.csv).rename(columns={"bill_length_mm": "bill_length"}).to_csv(run.cwd / "renamed.csv", index=False)
    proc = run.cli("predict", "--model", run.model, "--data", "renamed.csv", "-o", "out.csv")
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("error: renamed.csv: column 'bill_length_mm', an input of the model, is missing; "
                                   "did you mean 'bill_length'?")
    # two missing: both named in the one line, not one per run
    pd.read_csv(run.csv).drop(columns=["bill_length_mm", "island"]).to_csv(run.cwd / "fewer.csv", index=False)
    proc = run.cli("predict", "--model", run.model, "--data", "fewer.csv", "-o", "out.csv")
    assert proc.returncode == 1 and proc.stderr.strip().startswith(
        "error: fewer.csv: 2 inputs of the model are missing: 'bill_length_mm', 'island' (the model's input columns")
    # JSON Lines in, JSON Lines out; `--alias @champion` as `models` shows it
    pd.read_csv(run.csv).head(20).to_json(run.cwd / "rows.jsonl", orient="records", lines=True)
    proc = run.cli("predict", "--model", run.model, "--alias", "@champion", "--data", "rows.jsonl", "-o", "out.jsonl")
    assert proc.returncode == 0, proc.stderr
    scored = pd.read_json(run.cwd / "out.jsonl", lines=True)
    assert len(scored) == 20 and "prediction" in scored.columns and "island" in scored.columns


@pytest.mark.slow
def test_large_tables_are_scored_in_chunks_with_progress(corpus_run: Callable[[str], CorpusRun], mlflow_uri: str,
                                                        tmp_path: Path) -> None:
    from driftloop.console import Console
    from driftloop.mlflow_gateway import connect
    from driftloop.predict import predict_table

    run = corpus_run("penguins")
    rows = len(pd.read_csv(run.csv))
    # a Parquet table is read whole and scored in chunks, with a progress line each
    pd.read_csv(run.csv).to_parquet(tmp_path / "penguins.parquet")
    said = io.StringIO()
    done = predict_table(gateway=connect(mlflow_uri), model_name=run.model, data=str(tmp_path / "penguins.parquet"),
                         output=str(tmp_path / "from_parquet.parquet"), console=Console(stream=said), chunk_rows=100)
    assert done.rows == rows
    progress = [line.strip() for line in said.getvalue().splitlines() if line.strip().endswith(f"/{rows} rows")]
    assert progress == [f"{n}/{rows} rows" for n in (100, 200, 300, rows)]
    # CSV in, any format out: streamed, one chunk in memory at a time, the same rows and scores as one chunk of all
    whole = predict_table(gateway=connect(mlflow_uri), model_name=run.model, data=str(run.csv),
                          output=str(tmp_path / "whole.parquet"), console=Console(quiet=True))
    expected = pd.read_parquet(tmp_path / "whole.parquet")
    assert whole.rows == rows
    for suffix, reader in ((".parquet", pd.read_parquet),
                           (".csv", lambda path: pd.read_csv(path, float_precision="round_trip")),
                           (".jsonl", lambda path: pd.read_json(path, lines=True, precise_float=True))):
        said = io.StringIO()
        streamed = predict_table(gateway=connect(mlflow_uri), model_name=run.model, data=str(run.csv),
                                 output=str(tmp_path / f"streamed{suffix}"), console=Console(stream=said),
                                 chunk_rows=100)
        assert streamed.rows == rows and streamed.columns == whole.columns
        assert [line.strip() for line in said.getvalue().splitlines() if line.strip().endswith(" rows")][-1] == \
            f"{rows} rows"
        got = reader(tmp_path / f"streamed{suffix}")
        if suffix == ".parquet":  # the parts make one file with the types of one
            pd.testing.assert_frame_equal(got, expected)
        assert list(got.columns) == list(expected.columns) and len(got) == rows
        assert got["prediction"].astype(str).tolist() == expected["prediction"].astype(str).tolist()
        probabilities = [c for c in expected.columns if c.startswith("probability_")]
        # float32 scores from ONNX runs of 100 rows against one of all: the same to float32's precision
        np.testing.assert_allclose(got[probabilities].to_numpy(), expected[probabilities].to_numpy(), atol=1e-6)
    # a bad row in the last chunk: one line naming it, and no half-scored file
    raw = pd.read_csv(run.csv, dtype=str, keep_default_na=False)
    raw.loc[rows - 1, "bill_length_mm"] = "heavy"
    raw.to_csv(tmp_path / "bad_last.csv", index=False)
    with pytest.raises(DataError, match=f"'heavy' at row {rows + 1}"):
        predict_table(gateway=connect(mlflow_uri), model_name=run.model, data=str(tmp_path / "bad_last.csv"),
                      output=str(tmp_path / "bad_scored.csv"), console=Console(quiet=True), chunk_rows=100)
    assert not (tmp_path / "bad_scored.csv").exists()
    # an integer column with a blank in the last chunk only: pandas reads that chunk's as float, which wrote `2009.0`
    # there and `2007` before it; every chunk writes the column as the file has it
    raw = pd.read_csv(run.csv, dtype=str, keep_default_na=False)
    raw.loc[rows - 1, "year"] = ""
    raw.to_csv(tmp_path / "blank_year.csv", index=False)
    predict_table(gateway=connect(mlflow_uri), model_name=run.model, data=str(tmp_path / "blank_year.csv"),
                  output=str(tmp_path / "blank_scored.csv"), console=Console(quiet=True), chunk_rows=100)
    written = pd.read_csv(tmp_path / "blank_scored.csv", dtype=str, keep_default_na=False)
    assert written["year"].tolist() == raw["year"].tolist()
    # the same numbers in a float column (a whole one written as the integer it is: 42.0 as 42), blanks as missing
    pd.testing.assert_series_equal(pd.to_numeric(written["bill_length_mm"]),
                                   pd.to_numeric(raw["bill_length_mm"].replace("NA", "")))
    assert "42.0" in set(raw["bill_length_mm"]) and "42" in set(written["bill_length_mm"])


@pytest.mark.slow
def test_penguins_raw_roles_drop_the_id_and_read_the_date(corpus_run: Callable[[str], CorpusRun],
                                                         mlflow_uri: str) -> None:
    """The table that had 'Individual ID' and 'Date Egg' one-hot encoded: now an id (dropped) and a date
    (calendar features), 'Region' and 'Stage' constants, 'Clutch Completion' (Yes/No) a boolean."""
    import re

    from driftloop.onnx_model import OnnxModel

    from ..conftest import registry_for

    run = corpus_run("penguins_raw")
    shown = {}
    for line in run.stderr.splitlines():
        cells = re.split(r"\s{2,}", line)
        if len(cells) == 3 and cells[0] in TABLES["penguins_raw"].frame().columns:
            shown[cells[0]] = cells[1]
    assert {c: shown.get(c) for c in ("Individual ID", "Date Egg", "Region", "Stage", "Clutch Completion",
                                      "Culmen Length (mm)", "Island")} == {
        "Individual ID": "id", "Date Egg": "datetime", "Region": "constant", "Stage": "constant",
        "Clutch Completion": "boolean", "Culmen Length (mm)": "numeric", "Island": "categorical"}
    registry = registry_for(mlflow_uri)
    model = OnnxModel(registry.download_model(registry.champion(run.model), run.cwd / "roles-model"))
    assert "Individual ID" not in model.columns and "Individual ID" in model.ignored
    assert model.dates == {"Date Egg": ["year", "month", "weekday", "dayofyear"]}
    assert model.date_formats == {"Date Egg": "YYYY-MM-DD"} and model.datetime == {}  # the graph reads the text
