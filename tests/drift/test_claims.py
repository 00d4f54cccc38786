"""Retrain claims against the real MLflow server: dedupe, in flight, cooldown, retry after failure."""

from __future__ import annotations

from driftloop.drift.claims import COMPLETED, FAILED, RetrainClaims, dedupe_key

from ..conftest import registry_for


def test_dedupe_in_flight_cooldown_and_retry(mlflow_uri: str) -> None:
    claims = RetrainClaims(registry_for(mlflow_uri).gateway, "claims_unit")
    key_a = dedupe_key("claims_unit", "1", ["age", "plan"], "w1")
    assert key_a == dedupe_key("claims_unit", "1", ["plan", "age"], "w1")  # order of features does not matter
    key_b, key_c, key_d = (dedupe_key("claims_unit", "1", ["age"], w) for w in ("w2", "w3", "w4"))
    first = claims.try_claim(key_a, cooldown_s=3600, trigger="local")
    assert first.claimed and first.claim.sequence == 1

    busy = claims.try_claim(key_b, cooldown_s=0, trigger="local")
    assert not busy.claimed and busy.reason.startswith("in flight: retrain #1")
    claims.finish(first.claim, COMPLETED, "retrained")

    again = claims.try_claim(key_a, cooldown_s=0, trigger="local")
    assert not again.claimed and again.reason.startswith("duplicate: retrain #1 (completed)")
    cooling = claims.try_claim(key_b, cooldown_s=3600, trigger="local")
    assert not cooling.claimed and cooling.reason.startswith("cooldown: retrain #1") and "(cooldown 1h)" in cooling.reason

    later = first.claim.created_s + 3601
    second = claims.try_claim(key_b, cooldown_s=3600, trigger="local", now=later)
    assert second.claimed and second.claim.sequence == 2
    claims.finish(second.claim, FAILED, "boom")
    retry = claims.try_claim(key_b, cooldown_s=0, trigger="local", now=later)  # a failed retrain may be retried
    assert retry.claimed and retry.claim.sequence == 3
    claims.finish(retry.claim, COMPLETED, "ok")
    assert [(c.sequence, c.state) for c in claims.claims()] == [(1, COMPLETED), (2, FAILED), (3, COMPLETED)]
    assert claims.claims()[0].tags["driftloop.claim.outcome"] == "retrained"
    # a model whose name differs only where LIKE has a wildcard does not see these claims
    assert RetrainClaims(registry_for(mlflow_uri).gateway, "claimsXunit").claims() == []
    fourth = claims.try_claim(key_c, cooldown_s=0, trigger="local", now=later)
    assert fourth.claimed and fourth.claim.sequence == 4
    assert claims.try_claim(key_d, cooldown_s=0, trigger="local", now=later).reason.startswith("in flight: retrain #4")


def test_a_retrain_that_failed_before_training_frees_the_cooldown(mlflow_uri: str) -> None:
    claims = RetrainClaims(registry_for(mlflow_uri).gateway, "claims_cooldown")
    key_a, key_b, key_c = (dedupe_key("claims_cooldown", "1", ["plan"], w) for w in ("w1", "w2", "w3"))
    first = claims.try_claim(key_a, cooldown_s=3600, trigger="local")
    assert first.claimed
    claims.finish(first.claim, FAILED, "live.csv: column 'plan': expect_column_values_to_be_in_set(…) failed",
                  holds_cooldown=False)
    assert claims.claims()[0].summary()["holds_cooldown"] is False
    # same drift, inside the hour: neither the dedupe key nor the cooldown holds it back
    retry = claims.try_claim(key_a, cooldown_s=3600, trigger="local")
    assert retry.claimed and retry.claim.sequence == 2, retry.reason
    claims.finish(retry.claim, FAILED, "training diverged")  # failed after training: it used the cooldown up
    cooling = claims.try_claim(key_b, cooldown_s=3600, trigger="local")
    assert not cooling.claimed and cooling.reason.startswith("cooldown: retrain #2")
    later = retry.claim.created_s + 3601
    third = claims.try_claim(key_b, cooldown_s=3600, trigger="local", now=later)
    assert third.claimed
    claims.finish(third.claim, COMPLETED, "retrained")
    # a later failure before training does not hide the completed retrain's cooldown
    # (the store dates claims by its own clock: #3 was made just now, whatever `now` it was asked at)
    fourth = claims.try_claim(key_c, cooldown_s=0, trigger="local")
    claims.finish(fourth.claim, FAILED, "bad data", holds_cooldown=False)
    blocked = claims.try_claim(key_c, cooldown_s=3600, trigger="local")
    assert not blocked.claimed and blocked.reason.startswith("cooldown: retrain #3")


def test_a_retrain_that_died_in_flight_frees_its_drift_after_the_timeout(mlflow_uri: str) -> None:
    """A local retrain killed outright (SIGKILL, OOM) never finishes its claim: past the in-flight timeout it blocks
    neither other drifts (as before) nor its own drift's key, which it held for ever."""
    from driftloop.drift.claims import IN_FLIGHT_TIMEOUT_S

    claims = RetrainClaims(registry_for(mlflow_uri).gateway, "claims_dead")
    key = dedupe_key("claims_dead", "1", ["plan"], "w1")
    dead = claims.try_claim(key, cooldown_s=0, trigger="local")
    assert dead.claimed
    soon = claims.try_claim(key, cooldown_s=0, trigger="local", now=dead.claim.created_s + 60)
    assert not soon.claimed and soon.reason.startswith("duplicate: retrain #1 (in_flight)")
    later = claims.try_claim(key, cooldown_s=0, trigger="local", now=dead.claim.created_s + IN_FLIGHT_TIMEOUT_S + 1)
    assert later.claimed and later.claim.sequence == 2, later.reason
