"""Roles end to end (issue 12, item 2): `driftloop run` shows the roles table and stores it in MLflow, the model
file takes raw rows (date text, "3,750", yes/no), and serving answers them as `driftloop predict` and
`OnnxModel` do, whatever spelling of a boolean or number the client sends."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable

import httpx
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest

from ..conftest import Cli, free_port, grpc_client, registry_for
from ..test_roles import shop_table
from .conftest import Server

pytestmark = pytest.mark.slow

MODEL = "roles_shop"


def test_roles_table_artifact_and_raw_rows_served_as_predicted(cli: Cli, mlflow_uri: str,
                                                               start_server: Callable[..., Server]) -> None:
    from driftloop.onnx_model import OnnxModel

    table = shop_table(400)
    table["signup"] = pd.to_datetime(table["signup"]).dt.strftime("%d/%m/%Y")  # day first, as much of the world writes
    table.to_csv(cli.cwd / "shop.csv", index=False)
    ran = cli("run", "--data", "shop.csv", "--target", "label", "--model", MODEL, "--set", "train.model=linear",
              "--set", "evaluate.latency_samples=20", "--set", "gate.on_no_champion=promote", "--json", "run.json")
    assert ran.returncode == 0, ran.stderr[-3000:]
    lines = ran.stderr.splitlines()
    header = lines.index(next(line for line in lines if line == "column roles"))
    assert re.match(r"column\s+role\s+why$", lines[header + 1])
    assert lines.index(next(line for line in lines if line.startswith("✓ validate"))) > header  # before training
    shown = {re.split(r"\s{2,}", line)[0]: re.split(r"\s{2,}", line)[1] for line in lines[header + 2:header + 11]}
    assert shown == {"customer id": "id", "row": "id", "country": "constant", "member": "boolean",
                     "income": "numeric", "discount": "numeric", "signup": "datetime", "city": "categorical",
                     "visits": "numeric"}
    assert "warning: column 'customer id' is left out of the model as id" in ran.stderr

    registry = registry_for(mlflow_uri)
    version = registry.champion(MODEL)
    stored = registry.client.download_artifacts(version.run_id, "validation/roles.md", str(cli.cwd))
    assert "| signup | datetime | dates as DD/MM/YYYY: year, month, day of week, day of year |" in \
        open(stored, encoding="utf-8").read()
    model = OnnxModel(registry.download_model(version, cli.cwd / "model"))
    assert model.columns == ["income", "discount", "visits", "signup", "city", "member"]
    assert model.dates == {"signup": ["year", "month", "weekday", "dayofyear"]} and model.boolean == ["member"]
    assert model.date_formats == {"signup": "DD/MM/YYYY"}  # stored in the file, which reads the text itself
    assert "signup__year" not in model.input_names and "signup" in model.input_names

    rows = table.drop(columns=["label"]).head(60).copy()
    rows.loc[0, "signup"] = None  # a missing date is imputed like a missing number
    rows.to_csv(cli.cwd / "score.csv", index=False)
    predicted = cli("predict", "--model", MODEL, "--data", "score.csv", "-o", "scored.csv")
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    batch = pd.read_csv(cli.cwd / "scored.csv")
    probability = batch[[f"probability_{c}" for c in model.classes]].to_numpy()
    np.testing.assert_allclose(model.run(rows), probability, atol=1e-6)

    grpc_port = free_port()
    server = start_server("--model", MODEL, "--poll-interval", "0", "--grpc-port", str(grpc_port))
    server.grpc = f"127.0.0.1:{grpc_port}"
    text = (cli.cwd / "score.csv").read_text(encoding="utf-8")
    as_csv = httpx.post(f"{server.url}/invocations", content=text, headers={"Content-Type": "text/csv"})
    assert as_csv.status_code == 200, as_csv.text
    records = json.loads(rows.to_json(orient="records"))
    respelled = [dict(r, member=r["member"] == "yes" if i % 2 else r["member"].upper(),
                      income=float(r["income"].replace(",", "")) if i % 3 == 0 else r["income"])
                 for i, r in enumerate(records)]  # JSON booleans, YES/NO, plain numbers beside "3,750"
    as_json = httpx.post(f"{server.url}/invocations", json={"dataframe_records": respelled})
    assert as_json.status_code == 200, as_json.text
    # a CSV's true/false, TRUE/False and 1/0 in the boolean column are the booleans JSON sends, not new categories
    spellings = [("true", "false"), ("TRUE", "False"), ("1", "0")]
    as_words = rows.assign(member=[spellings[i % 3][0] if v == "yes" else spellings[i % 3][1]
                                   for i, v in enumerate(rows["member"])])
    words_csv = httpx.post(f"{server.url}/invocations", content=as_words.to_csv(index=False),
                           headers={"Content-Type": "text/csv"})
    assert words_csv.status_code == 200, words_csv.text
    json_booleans = httpx.post(f"{server.url}/invocations",
                               json={"dataframe_records": [dict(r, member=r["member"] == "yes") for r in records]})
    assert json_booleans.status_code == 200, json_booleans.text
    assert words_csv.json()["predictions"] == json_booleans.json()["predictions"]
    np.testing.assert_allclose(words_csv.json()["probabilities"], json_booleans.json()["probabilities"], atol=1e-6)
    for answer in (as_csv.json(), as_json.json(), words_csv.json()):
        assert answer["predictions"] == batch["prediction"].tolist()
        np.testing.assert_allclose(np.asarray(answer["probabilities"]), probability, atol=1e-6)

    # a date in another format than the column's is refused, naming the format (the model file alone would read
    # it as a missing date); a missing date is imputed
    other, missing = (httpx.post(f"{server.url}/invocations", json={"dataframe_records": [dict(records[1], signup=v)]})
                      for v in ("2007-11-11", None))
    assert other.status_code == 400, other.text
    assert "column 'signup'" in other.text and "row 0 is not a date in the format" in other.text, other.text
    assert missing.status_code == 200, missing.text
    no_day = httpx.post(f"{server.url}/invocations", json={"dataframe_records": [dict(records[1], signup="30/02/2007")]})
    assert no_day.status_code == 400 and "'30/02/2007' at row 0 names no real day (read as DD/MM/YYYY" in no_day.text
    # `predict` refuses them as serving does (the model file would have scored them as rows without a date), and
    # takes the blank one; the row is the file's, under its header
    for written, words in (("2007-11-11", "is not a date in the format DD/MM/YYYY[ HH:MM[:SS]] the model was trained on"),
                           ("30/02/2007", "names no real day (read as DD/MM/YYYY")):
        rows.assign(signup=[written if i == 3 else v for i, v in enumerate(rows["signup"])]).to_csv(
            cli.cwd / "dates.csv", index=False)
        refused = cli("predict", "--model", MODEL, "--data", "dates.csv", "-o", "dates_scored.csv")
        assert refused.returncode == 1 and not (cli.cwd / "dates_scored.csv").exists(), refused.stderr[-2000:]
        assert f"error: column 'signup': '{written}' at row 5 {words}" in refused.stderr, refused.stderr[-2000:]
    v1_inputs = httpx.get(f"{server.url}/v1/models/{MODEL}").raise_for_status().json()["inputs"]
    assert {"name": "signup", "datatype": "BYTES", "kind": "datetime"} in v1_inputs, v1_inputs
    # what onnxruntime alone answers, fed the CSV's raw text (Triton, KServe): the same as driftloop
    session = ort.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
    raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    feed = {model.input_names[c]: raw[c].to_numpy(dtype=object).reshape(-1, 1) for c in model.dates}
    feed |= {name: array for name, array in model.feed(rows).items() if name not in feed}
    np.testing.assert_allclose(session.run(None, feed)[0], probability, atol=1e-6)
    # the id and constant columns come along in training rows and are ignored; a column training never saw is not
    assert "customer id" in text and "country" in text
    unknown = httpx.post(f"{server.url}/invocations", json={"dataframe_records": [dict(records[1], extra=1)]})
    assert unknown.status_code == 400 and "unknown column 'extra'" in unknown.text
    # a whole training row has its label too, as `driftloop predict` takes it (a 400 before)
    labelled = httpx.post(f"{server.url}/v1/models/{MODEL}:predict", json={"instances": [dict(records[1], label="high")]})
    assert labelled.status_code == 200, labelled.text
    assert labelled.json()["predictions"] == [batch["prediction"].tolist()[1]]
    metadata = httpx.get(f"{server.url}/v2/models/{MODEL}").raise_for_status().json()
    assert {"name": "signup", "datatype": "BYTES", "shape": [-1, 1]} in metadata["inputs"]
    # a role set after the champion wins over the champion's stored roles
    again = cli("run", "--data", "shop.csv", "--target", "label", "--model", MODEL, "--set", "train.model=linear",
                "--set", "evaluate.latency_samples=20", "--set", 'feature.roles={"signup": "drop", "row": "numeric"}',
                "--no-deploy", "--json", "again.json")
    assert again.returncode == 0, again.stderr[-3000:]
    # the champion used the date this run drops: the splits keep it, so v1 is re-scored on the same holdout
    reasons = json.loads((cli.cwd / "again.json").read_text())["gate"]["reasons"]
    assert any("vs champion v1" in r and "on the same holdout" in r for r in reasons), reasons
    assert re.search(r"^signup\s+drop\s+set in feature.roles$", again.stderr, re.MULTILINE), again.stderr[:3000]
    assert re.search(r"^row\s+numeric\s+set in feature.roles$", again.stderr, re.MULTILINE)

    # V2 tensors are typed: the numbers as FP32, the date and categories as text (the row without a date left out)
    frame = pd.read_csv(io.StringIO(text)).iloc[1:]
    numbers = {"income": lambda v: float(v.replace(",", "")), "discount": lambda v: float(v.rstrip("%")) / 100}
    tensors = [{"name": c, "shape": [len(frame), 1], "datatype": "FP32" if c in model.numeric else "BYTES",
                "data": [numbers.get(c, lambda v: v)(v) for v in frame[c].tolist()]} for c in model.columns]
    v2 = httpx.post(f"{server.url}/v2/models/{MODEL}/infer", json={"inputs": tensors})
    assert v2.status_code == 200, v2.text
    probabilities = next(o for o in v2.json()["outputs"] if o["name"] == "probabilities")
    np.testing.assert_allclose(np.asarray(probabilities["data"]).reshape(len(frame), -1), probability[1:], atol=1e-6)
    # the same rows over gRPC (tritonclient.grpc): the text labels come back as BYTES
    over_grpc = grpc_client("infer", server, MODEL, [{t["name"]: t["data"][i] for t in tensors}
                                                     for i in range(len(frame))], cli.cwd)
    assert over_grpc["datatypes"]["predictions"] == "BYTES"
    assert over_grpc["predictions"] == batch["prediction"].tolist()[1:]
    np.testing.assert_allclose(np.asarray(over_grpc["probabilities"]), probability[1:], atol=1e-6)
