"""What the operator makes of a training pod's termination message: all it reads, MLflow never."""

from __future__ import annotations

import json

from driftloop.operator.constants import TERMINATION_MESSAGE_BYTES
from driftloop.operator.outcome import failure_message, succeeded_outcome
from driftloop.runner import RunResult, brief_text


def _message(result: RunResult) -> str:
    return brief_text(result.to_brief_json(TERMINATION_MESSAGE_BYTES))


def test_a_registered_version_is_read_from_the_message() -> None:
    result = RunResult(status="completed", deployed=True, gate={"passed": True, "reasons": ["PASS roc_auc 0.81"]},
                       model_name="churn", model_version="3", run_id="r1", exit_code=0, already_registered=True)
    outcome = succeeded_outcome(_message(result), job="churn-g2")
    assert outcome.readable and outcome.succeeded and outcome.promoted and outcome.gate_passed
    assert outcome.model_version == "3" and outcome.run_id == "r1" and outcome.already_registered
    assert outcome.gate_reasons == ["PASS roc_auc 0.81"]


def test_a_declined_gate_is_no_version() -> None:
    result = RunResult(status="completed", gate={"passed": False, "reasons": ["FAIL roc_auc 0.6 < 0.7"]}, run_id="r2")
    outcome = succeeded_outcome(_message(result), job="churn-g1")
    assert not outcome.promoted and not outcome.gate_passed and outcome.model_version is None
    assert not outcome.already_registered


def test_a_missing_or_unparseable_message_says_so_in_one_line() -> None:
    for message, words in ((None, "no termination message"), ("", "no termination message"),
                           ('{"status": "completed", "gate": {"pas', "not driftloop's JSON"),
                           ("Traceback …\nKeyError: x", "not driftloop's JSON")):
        outcome = succeeded_outcome(message, job="churn-g1")
        assert not outcome.readable and outcome.succeeded and outcome.model_version is None
        assert words in (outcome.error or "") and "\n" not in (outcome.error or ""), outcome.error
        assert outcome.error.startswith("Job churn-g1 succeeded")


def test_a_failure_is_the_pods_own_line() -> None:
    failed = RunResult(status="failed", error="validate: column 'churned' is missing", run_id="r3")
    assert failure_message(_message(failed), job="j") == "validate: column 'churned' is missing"
    assert failure_message("loading spec\nerror: spec.yaml: data: Field required", job="j") == \
        "error: spec.yaml: data: Field required"  # FallbackToLogsOnError: the log's last line
    assert failure_message(None, job="churn-g1") == "Job churn-g1 failed and its pod left no termination message"


def test_the_message_stays_within_its_budget_and_stays_json() -> None:
    """Slices can make hundreds of gate reasons; the kubelet would cut the JSON at 4 KiB, unreadable."""
    reasons = [f"PASS slice region=r{i} accuracy 0.{i:04d} >= 0.5 on {100 + i} rows" for i in range(300)]
    result = RunResult(status="completed", deployed=True, gate={"passed": True, "reasons": reasons},
                       metrics={f"m{i}": 0.5 for i in range(40)}, model_name="churn", model_version="7",
                       run_id="r" * 32, exit_code=0)
    text = _message(result)
    assert len(text.encode()) <= TERMINATION_MESSAGE_BYTES < 4096
    shown = json.loads(text)
    assert shown["model_version"] == "7" and shown["deployed"] and shown["gate"]["passed"]
    assert shown["gate"]["reasons"][0] == reasons[0] and "more in the run's evaluation report" in shown["gate"]["reasons"][-1]
    assert succeeded_outcome(text, job="j").model_version == "7"
    small = RunResult(status="failed", error="x" * 10000, run_id="r")
    assert len(_message(small).encode()) <= TERMINATION_MESSAGE_BYTES and json.loads(_message(small))["error"]
