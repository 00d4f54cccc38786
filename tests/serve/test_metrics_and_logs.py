"""/metrics counts the traffic; the access log and the prediction log record it."""

from __future__ import annotations

import json
import re
import time

import httpx

from .conftest import Champion, Server


def sample(metrics: str, name: str, **labels: str) -> float:
    """One sample's value from Prometheus text, 0 when the series does not exist yet."""
    for line in metrics.splitlines():
        if line.startswith("#"):
            continue
        match = re.match(r"^([a-zA-Z_:]+)(\{([^}]*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(3) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(4))
    return 0.0


def test_metrics_reflect_traffic(served: Server, champion: Champion) -> None:
    before = httpx.get(f"{served.url}/metrics").text
    predict = f"{served.url}/v1/models/{champion.name}:predict"
    for _ in range(7):
        httpx.post(predict, json={"instances": champion.rows[:3]}).raise_for_status()
    for _ in range(2):
        assert httpx.post(predict, json={"instances": []}).status_code == 400
    after = httpx.get(f"{served.url}/metrics").text
    assert sample(after, "driftloop_requests_total", route="predict", status="200") - \
        sample(before, "driftloop_requests_total", route="predict", status="200") == 7
    assert sample(after, "driftloop_requests_total", route="predict", status="400") - \
        sample(before, "driftloop_requests_total", route="predict", status="400") == 2
    assert sample(after, "driftloop_predictions_total", model=champion.name) - \
        sample(before, "driftloop_predictions_total", model=champion.name) == 21
    assert sample(after, "driftloop_batch_rows_bucket", le="5.0") - sample(before, "driftloop_batch_rows_bucket", le="5.0") == 7
    assert sample(after, "driftloop_request_duration_seconds_count", route="predict") - \
        sample(before, "driftloop_request_duration_seconds_count", route="predict") == 9
    assert sample(after, "driftloop_requests_total", protocol="v1", route="predict", status="200") - \
        sample(before, "driftloop_requests_total", protocol="v1", route="predict", status="200") == 7
    assert sample(after, "request_predict_seconds_count", model_name=champion.name) - \
        sample(before, "request_predict_seconds_count", model_name=champion.name) == 7  # KServe's histogram
    versions = [line for line in after.splitlines() if line.startswith("driftloop_model_info{")]
    assert len(versions) == 2 and all('version="1"' in line and line.endswith(" 1.0") for line in versions)


def test_prediction_log_and_access_log(served: Server, champion: Champion) -> None:
    assert served.prediction_log is not None
    rows = champion.rows[180:185]  # rows no other test sends, so the log holds each once
    answer = httpx.post(f"{served.url}/invocations", json={"dataframe_records": rows}).raise_for_status().json()
    deadline = time.monotonic() + 10
    logged: list[dict] = []
    while time.monotonic() < deadline:  # workers flush their logs every half second
        text = served.prediction_log.read_text() if served.prediction_log.exists() else ""
        # a worker may be writing while we read: only lines that end in a newline are finished
        logged = [json.loads(line) for line in text.split("\n")[:-1]]
        mine = [r for r in logged if {k: v for k, v in r.items() if not k.startswith("_")} in rows]
        if len(mine) >= len(rows):
            break
        time.sleep(0.2)
    mine = [r for r in logged if {k: v for k, v in r.items() if not k.startswith("_")} in rows]
    assert len(mine) == len(rows)
    for record in mine:
        index = rows.index({k: v for k, v in record.items() if not k.startswith("_")})
        assert record["_model"] == champion.name and record["_version"] == "1"
        assert record["_prediction"] == answer["predictions"][index]
        assert set(record["_probabilities"]) == {"0", "1"}
        assert abs(record["_probabilities"]["1"] - answer["probabilities"][index][1]) < 1e-6
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$", record["_ts"])
    access = [json.loads(line) for line in served.log_text().splitlines() if line.startswith('{"ts"')]
    assert any(a["event"] == "access" and a["path"] == "/invocations" and a["status"] == 200 and a["rows"] == 5
               for a in access)
