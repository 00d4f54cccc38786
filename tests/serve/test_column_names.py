"""Any column name works end to end: a real public table (scikit-learn's breast cancer set, whose columns are
named like "mean radius"), given awkward names besides, through `driftloop run`, the model file, serving in every
protocol (clients send the original names), the drift report and the MLflow artifacts."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

import httpx
import numpy as np
import pytest

from ..conftest import Cli, registry_for
from .conftest import Server

pytestmark = pytest.mark.slow

MODEL = "odd_names"
# beside the set's own "mean radius" etc.: brackets, dots, unicode, a leading digit, Python keywords, a clash
RENAMES = {"mean texture": "Culmen Length (mm)", "mean perimeter": "a.b", "mean area": "1st",
           "mean smoothness": "class", "mean compactness": "größe (µm)", "mean concavity": "mean_radius"}


def odd_table():
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame = frame[["mean radius", *RENAMES, "worst concave points", "target"]].rename(columns=RENAMES)
    frame.insert(3, "lambda", np.where(frame["mean radius"] > 14, "big (>14)", "small.one"))  # a category column
    return frame


def test_awkward_column_names_train_serve_and_drift(cli: Cli, mlflow_uri: str,
                                                   start_server: Callable[..., Server]) -> None:
    from driftloop.onnx_model import OnnxModel

    table = odd_table()
    table.to_csv(cli.cwd / "cancer.csv", index=False)
    ran = cli("run", "--data", "cancer.csv", "--target", "target", "--model", MODEL, "--set", "train.epochs=10",
              "--set", "evaluate.latency_samples=20", "--json", "run.json")
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert json.loads((cli.cwd / "run.json").read_text())["deployed"] is True

    registry = registry_for(mlflow_uri)
    path = registry.download_model(registry.champion(MODEL), cli.cwd / "model")
    model = OnnxModel(path)
    features = [c for c in table.columns if c != "target"]
    assert sorted(model.columns) == sorted(features)
    graph_inputs = [i.name for i in model.session.get_inputs()]
    assert sorted(graph_inputs) == sorted(model.input_names.values()) and "mean radius" not in graph_inputs
    rows = table.drop(columns=["target"]).head(25)
    expected = model.predict(rows)

    server = start_server("--model", MODEL, "--poll-interval", "0")
    records = json.loads(rows.to_json(orient="records"))
    kserve = httpx.post(f"{server.url}/v1/models/{MODEL}:predict", json={"instances": records}).raise_for_status()
    assert kserve.json()["predictions"] == expected
    split = json.loads(rows.to_json(orient="split", index=False))
    for body in ({"dataframe_split": split}, {"dataframe_records": records}):
        answer = httpx.post(f"{server.url}/invocations", json=body).raise_for_status().json()
        assert answer["predictions"] == expected
    text = io.StringIO()
    rows.to_csv(text, index=False, quoting=csv.QUOTE_MINIMAL)
    answer = httpx.post(f"{server.url}/invocations", content=text.getvalue(),
                        headers={"Content-Type": "text/csv"}).raise_for_status().json()
    assert answer["predictions"] == expected
    metadata = httpx.get(f"{server.url}/v2/models/{MODEL}").raise_for_status().json()
    assert sorted(i["name"] for i in metadata["inputs"]) == sorted(features)
    tensors = [{"name": c, "shape": [len(rows), 1], "datatype": "BYTES" if c == "lambda" else "FP32",
                "data": rows[c].tolist()} for c in features]
    v2 = httpx.post(f"{server.url}/v2/models/{MODEL}/infer", json={"inputs": tensors}).raise_for_status().json()
    probabilities = next(o for o in v2["outputs"] if o["name"] == "probabilities")
    assert np.allclose(np.asarray(probabilities["data"]).reshape(len(rows), -1), model.run(rows), atol=1e-6)

    shifted = table.copy()
    shifted["Culmen Length (mm)"] = shifted["Culmen Length (mm)"] + 5 * shifted["Culmen Length (mm)"].std()
    shifted.to_csv(cli.cwd / "current.csv", index=False)
    drift = cli("drift", "--model", MODEL, "--current", "current.csv", "--json", "drift.json")
    assert drift.returncode in (0, 3), drift.stderr[-3000:]
    report = json.loads((cli.cwd / "drift.json").read_text(encoding="utf-8"))
    assert report["drifted_features"] == ["Culmen Length (mm)"]  # the reference came from the champion's artifacts
    assert "größe (µm)" in json.dumps(report, ensure_ascii=False)
