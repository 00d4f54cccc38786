"""The training pod's exactly-once registration (`driftloop run --once-by`), without a cluster.

The e2e tests show a re-created Job registering nothing after a whole run; this one shows the
case between the two halves: an attempt that registered its version and died before promoting it.
"""

from __future__ import annotations

from pathlib import Path

from driftloop.console import Console
from driftloop.operator.constants import TAG_GENERATION, TAG_UID

TAGS = {TAG_UID: "5b1e-uid", TAG_GENERATION: "3", "driftloop.k8s.name": "churn"}


def test_a_retry_after_a_registration_that_was_never_promoted_promotes_it_and_trains_nothing(tmp_path: Path) -> None:
    from driftloop.mlflow_gateway import connect
    from driftloop.runner import run_pipeline
    from driftloop.spec import load_spec

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    gateway = connect(uri)
    first = gateway.start_run("churn", run_name="churn-train", tags=TAGS)
    made = gateway.register_candidate("churn", first.run_id, tags=TAGS)  # … and the pod died here
    assert gateway.champion("churn") is None

    # No table at that path: a retry that trained would fail on it; this one must not even look.
    spec = load_spec(None, data=str(tmp_path / "absent.csv"), target="churned",
                     overrides=[f"tracking.uri={uri}", "registry.model_name=churn"])
    for _ in range(2):  # the retry, and one more: each reports the one version, promoted once
        result = run_pipeline(spec, console=Console(quiet=True), tags=TAGS, force=True, once_by=(TAG_UID, TAG_GENERATION))
        assert result.status == "completed" and result.deployed and result.already_registered, result
        assert result.model_version == str(made.version) and result.run_id == first.run_id
        assert result.gate["passed"] and "earlier attempt" in result.gate["reasons"][0]
        assert all(step.status == "skipped" for step in result.steps)
    assert str(gateway.champion("churn").version) == str(made.version)
    assert gateway.history("churn") == [str(made.version)]
    assert [v["version"] for v in gateway.versions("churn")] == [str(made.version)]
    experiment = gateway._client.get_experiment_by_name("churn")
    assert len(gateway._client.search_runs([experiment.experiment_id])) == 1  # no run opened by the retries


def test_another_generation_is_another_registration(tmp_path: Path) -> None:
    """The once-key is uid *and* generation: generation 4 of the same resource does not find generation 3's."""
    from driftloop.components.deploy import finish_registered
    from driftloop.mlflow_gateway import connect

    gateway = connect(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = gateway.start_run("churn", run_name="churn-train", tags=TAGS)
    gateway.register_candidate("churn", run.run_id, tags=TAGS)
    assert finish_registered(gateway, "churn", {TAG_UID: "5b1e-uid", TAG_GENERATION: "4"}) is None
    assert finish_registered(gateway, "churn", {TAG_UID: "other-uid", TAG_GENERATION: "3"}) is None
    assert finish_registered(gateway, "churn", {TAG_UID: "5b1e-uid", TAG_GENERATION: "3"}) is not None
