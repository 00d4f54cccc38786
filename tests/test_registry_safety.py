"""What a promotion may and may not leave behind when MLflow refuses a write or another run promotes meanwhile:
the previous champion stays, no half-written version remains, and a rollback starts from the real @champion.
Against the session's real MLflow server, through a proxy that refuses chosen REST calls (tests/mlflow_faults.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mlflow import MlflowClient

from driftloop.components import deploy
from driftloop.components.gate import Blessing
from driftloop.constants import CHAMPION_HISTORY_TAG
from driftloop.errors import ChampionMoved
from driftloop.mlflow_gateway import MLflowGateway, connect

from .mlflow_faults import MLflowFaults


@pytest.fixture(scope="module")
def faults(mlflow_uri: str) -> Iterator[MLflowFaults]:
    proxy = MLflowFaults(mlflow_uri)
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def gateway(faults: MLflowFaults) -> MLflowGateway:
    return connect(faults.uri)


def deploy_once(gateway: MLflowGateway, name: str, gated_against: str | None, **options: object) -> deploy.DeployResult:
    """A passing gate's deploy of a fresh run's model, gated against `gated_against` (None: no champion then)."""
    client = MlflowClient(gateway.tracking_uri)
    experiment = client.get_experiment_by_name("registry-safety") or client.get_experiment(
        client.create_experiment("registry-safety"))
    run_id = client.create_run(experiment.experiment_id).info.run_id
    return deploy.run(Blessing(True, [], gated_against), gateway=gateway, model_name=name, run_id=run_id,
                      data_uri="s3://lake/t.csv", data_sha256="f00d", spec_sha256="beef", task="classification",
                      **options)  # type: ignore[arg-type]


def state(gateway: MLflowGateway, name: str) -> tuple[str | None, list[str], list[str]]:
    champion = gateway.champion(name)
    versions = sorted(str(v.version) for v in MlflowClient(gateway.tracking_uri).search_model_versions(f"name='{name}'"))
    return (str(champion.version) if champion else None), versions, gateway.history(name)


@pytest.mark.parametrize(("path", "refused"), [
    ("/registered-models/set-tag", lambda body: body.get("key") == CHAMPION_HISTORY_TAG),
    ("/registered-models/alias", lambda body: body.get("alias") == "champion"),
], ids=["history write", "alias write"])
def test_a_refused_promotion_write_keeps_the_champion_and_leaves_no_version(gateway: MLflowGateway,
                                                                            faults: MLflowFaults, path, refused) -> None:
    name = f"safety-{path.rsplit('/', 1)[1]}"
    assert deploy_once(gateway, name, None).version == "1"
    faults.refuse(path, refused)
    with pytest.raises(Exception, match="injected refusal"):
        deploy_once(gateway, name, "1")
    champion, versions, history = state(gateway, name)
    assert champion == "1" and versions == ["1"], (champion, versions)  # was: no champion at all, v2 deleted
    assert history == ["1"]  # the withdrawn version is no champion a rollback could go back to


def test_a_run_gated_against_another_champion_is_not_promoted(gateway: MLflowGateway) -> None:
    """Two runs gated against v1: the second to deploy must not replace the first's v2, never compared with it."""
    name = "safety-moved"
    deploy_once(gateway, name, None)
    assert deploy_once(gateway, name, "1").version == "2"
    with pytest.raises(ChampionMoved, match=r"@champion is now v2, but this run was gated against v1"):
        deploy_once(gateway, name, "1")
    with pytest.raises(ChampionMoved, match="gated against no champion"):
        deploy_once(gateway, name, None)
    assert state(gateway, name)[:2] == ("2", ["1", "2"])  # nothing registered by the refused ones


def test_a_rollback_starts_from_the_real_champion(gateway: MLflowGateway) -> None:
    name = "safety-rollback"
    for gated in (None, "1", "2"):
        deploy_once(gateway, name, gated)
    client = MlflowClient(gateway.tracking_uri)
    client.set_registered_model_tag(name, CHAMPION_HISTORY_TAG, '["1", "2"]')  # v3's entry lost (two at once)
    assert gateway.rollback(name).version == "2" and state(gateway, name)[0] == "2"
    client.set_registered_model_tag(name, CHAMPION_HISTORY_TAG, '["1", "2", "9"]')  # one the alias never reached
    assert gateway.rollback(name).version == "1" and state(gateway, name)[0] == "1"


def test_a_retry_never_promotes_a_version_that_was_rolled_back(gateway: MLflowGateway) -> None:
    name = "safety-retry"
    deploy_once(gateway, name, None)
    tags = {"driftloop.k8s.uid": "5b1e", "driftloop.k8s.generation": "2"}
    first = deploy_once(gateway, name, "1", tags=tags, once_by=tuple(tags))
    assert first.deployed and first.version == "2"
    gateway.rollback(name)  # the user's word: v2 goes
    retry = deploy_once(gateway, name, "1", tags=tags, once_by=tuple(tags))  # its pod's retry, finding v2
    assert not retry.deployed and retry.already_registered and retry.version == "2"
    assert state(gateway, name)[:2] == ("1", ["1", "2"])


def test_the_history_is_bounded() -> None:
    from driftloop.constants import CHAMPION_HISTORY_MAX

    assert CHAMPION_HISTORY_MAX * len('"99999", ') < 5000  # within a registered model tag on every SQL store


def test_a_run_that_fails_after_its_promotion_still_says_it_deployed(faults: MLflowFaults, tmp_path) -> None:
    """Closing the MLflow run is refused after deploy moved @champion: the run fails, and its result (what the
    operator reads from the pod) must still say which version is champion, not "not deployed"."""
    from driftloop.console import Console
    from driftloop.example import customers
    from driftloop.runner import run_pipeline
    from driftloop.spec import validate_spec

    customers(rows=400).to_csv(tmp_path / "churn.csv", index=False)
    spec = validate_spec({"data": {"path": str(tmp_path / "churn.csv"), "target": "churned"},
                          "tracking": {"uri": faults.uri}, "registry": {"model_name": "safety-late-failure"},
                          "train": {"epochs": 2}, "evaluate": {"latency_samples": 10},
                          "gate": {"require_baseline": False}})
    faults.refuse("/runs/update", lambda body: body.get("status") == "FINISHED")
    result = run_pipeline(spec, console=Console(quiet=True))
    assert result.status == "failed" and "injected refusal" in (result.error or ""), result.error
    assert result.deployed and result.model_version == "1"
    assert connect(faults.uri).champion("safety-late-failure").version == "1"


IDENTITY = {"driftloop.k8s.uid": "7c2f", "driftloop.k8s.generation": "1"}


def half_promoted(gateway: MLflowGateway, faults: MLflowFaults, name: str) -> None:
    """v1 champion; then an attempt under IDENTITY registers v2 and dies between the history write and the alias
    move, leaving v2 behind (its withdrawal refused too): as a pod killed at that moment leaves it."""
    deploy_once(gateway, name, None)
    faults.refuse("/registered-models/alias", lambda body: body.get("alias") == "champion")
    faults.refuse("/model-versions/delete")
    with pytest.raises(Exception, match="injected refusal"):
        deploy_once(gateway, name, "1", tags=IDENTITY, once_by=tuple(IDENTITY))
    assert state(gateway, name) == ("1", ["1", "2"], ["1", "2"])


def test_a_retry_promotes_a_version_whose_alias_never_moved(gateway: MLflowGateway, faults: MLflowFaults) -> None:
    """The history is written before the alias: a version at its end is not thereby champion. Its retry must
    promote it, not report it deployed while @champion stayed on v1."""
    name = "safety-half"
    half_promoted(gateway, faults, name)
    retry = deploy_once(gateway, name, "1", tags=IDENTITY, once_by=tuple(IDENTITY))
    assert retry.deployed and retry.already_registered and retry.version == "2"
    assert state(gateway, name)[0] == "2"


def test_a_pod_retry_whose_champion_moved_fails_as_a_run_with_its_line(gateway: MLflowGateway, faults: MLflowFaults,
                                                                       tmp_path) -> None:
    """The operator's pod retries with --once-by: ChampionMoved must come back as the run's failure (its JSON,
    not retryable), not escape as an unexpected error."""
    from driftloop.console import Console
    from driftloop.runner import run_pipeline
    from driftloop.spec import validate_spec

    name = "safety-pod-retry"
    half_promoted(gateway, faults, name)
    deploy_once(gateway, name, "1")  # meanwhile another run promoted v3
    (tmp_path / "t.csv").write_text("x,y\n1,0\n2,1\n")
    spec = validate_spec({"data": {"path": str(tmp_path / "t.csv"), "target": "y"}, "tracking": {"uri": faults.uri},
                          "registry": {"model_name": name}})
    result = run_pipeline(spec, console=Console(quiet=True), tags=IDENTITY, once_by=tuple(IDENTITY))
    assert result.status == "failed" and not result.retryable and result.exit_code == 1
    assert "@champion is now v3, but v2, registered by an earlier attempt, was gated against v1" in result.error
    assert state(gateway, name)[0] == "3"
