"""Acting on drift: claim the retrain (dedupe, in flight, cooldown), then ask a trigger to run it.

This sits above the runners (a local trigger runs the whole pipeline) and above
`driftloop.drift.check`, which hands a check that found drift to `retrain_on_drift`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftloop.constants import EXIT_DRIFT, EXIT_NO_DRIFT, RUN_TAG_DRIFTED_FEATURES
from driftloop.errors import DriftloopError

if TYPE_CHECKING:
    from driftloop.console import Console
    from driftloop.drift.check import DriftCheck, DriftOutcome, DriftRequest
    from driftloop.drift.claims import Claim, RetrainClaims
    from driftloop.drift.triggers import Trigger


def check_and_retrain(request: DriftRequest, *, console: Console) -> DriftOutcome:
    """`driftloop drift`: the check, and with `--retrain` a retrain when it finds drift.

    Example:
        >>> check_and_retrain(DriftRequest(current="live.csv", model_name="customers", retrain="local"),
        ...                   console=Console()).data["retrain"]["status"]
        'completed'
    """
    from driftloop.drift.check import check_drift

    return check_drift(request, console=console, on_drift=retrain_on_drift if request.retrain else None)


def trigger_for(request: DriftRequest) -> Trigger:
    """The trigger `--retrain` names."""
    from driftloop.drift.triggers import K8sTrigger, KfpTrigger, LocalTrigger

    if request.retrain == "k8s":
        return K8sTrigger(request.k8s_job or "", request.namespace)
    if request.retrain == "kfp":
        return KfpTrigger(request.kfp_host or "", request.kfp_experiment, request.kfp_namespace)
    return LocalTrigger()


def retrain_on_drift(check: DriftCheck, console: Console) -> int:
    """Claim and start one retrain for the drift `check` found; returns the exit code.

    The outcome (claimed or why not, the trigger's result) goes into `check.data["retrain"]`.
    A failed retrain releases its dedupe key, so the same drift may be retried; one that failed
    before training (staging, validation) also frees the cooldown, having used nothing up.
    """
    from driftloop.drift.claims import COMPLETED, FAILED, RetrainClaims, dedupe_key
    from driftloop.drift.triggers import RetrainRequest
    from driftloop.durations import parse_duration
    from driftloop.mlflow_gateway import local_artifact_root

    request, report, data, champion = check.request, check.report, check.data, check.champion
    assert check.mlflow is not None  # --retrain requires tracking (check_flags)
    model = request.model_name or f"k8s.{request.namespace}.{request.k8s_job}"
    key = dedupe_key(model, champion.version if champion else None, report.drifted_features, check.window)
    retrain = data["retrain"]
    retrain.update({"dedupe_key": key, "window": check.window, "cooldown": check.policy.cooldown})
    trigger = trigger_for(request)
    busy = trigger.preflight()  # before claiming: a trigger that cannot act must not use up the cooldown
    if busy:
        retrain.update({"status": "suppressed", "reason": f"in flight: {busy}"})
        console.info(f"retrain suppressed: {retrain['reason']}")
        return EXIT_DRIFT
    claims = RetrainClaims(check.mlflow, model, artifact_root=local_artifact_root(check.tracking_uri))
    for failed in claims.fail_submitted(key, trigger.failed_where):  # else its drift would never be retried
        console.info(f"retrain #{failed.sequence} of this drift failed where it ran; it no longer holds the drift")
    decision = claims.try_claim(key, cooldown_s=parse_duration(check.policy.cooldown), trigger=trigger.name,
                                details={RUN_TAG_DRIFTED_FEATURES: ",".join(report.drifted_features)[:4000],
                                         "driftloop.drift_run_id": data.get("run_id") or ""})
    retrain["claim"] = decision.to_json()["claim"]
    if not decision.claimed:
        retrain.update({"status": "suppressed", "reason": decision.reason})
        console.info(f"retrain suppressed: {decision.reason}")
        return EXIT_DRIFT
    assert decision.claim is not None
    console.info(f"retrain {decision.reason} (dedupe key {key}); trigger {trigger.name}")
    retrain.update({"status": "started", "reason": decision.reason})
    retrain_request = RetrainRequest(
        model_name=model, key=key, reference=check.reference.frame, current=check.current,
        target=check.reference.target, champion_run_id=champion.run_id if champion else None,
        tracking_uri=check.tracking_uri, out_dir=check.report_dir, retrain_data=check.policy.retrain_data,
        window_holdout=check.policy.window_holdout, overrides=list(request.overrides),
        drift_run_id=data.get("run_id"), claim=decision.claim.sequence, mlflow=check.mlflow)
    try:
        result = trigger.retrain(retrain_request, console)
    except BaseException as e:
        message = str(e) if isinstance(e, DriftloopError) else f"internal error: {type(e).__name__}: {e}"
        line = message.splitlines()[0] if message else type(e).__name__
        # a failed retrain does not hold its dedupe key; raised before the pipeline ran, it trained nothing
        unrecorded = _finish_or_say(claims, decision.claim, line, console)
        retrain["claim"].update({"state": FAILED, "outcome": line, "holds_cooldown": False} if unrecorded is None
                                else {"state": "in_flight", "outcome": line, "note": unrecorded})
        retrain.update({"status": "failed", "reason": line})
        if not isinstance(e, DriftloopError):
            raise
        data["error"] = line  # the report is still written; the exit code says the retrain failed
        return e.exit_code
    holds_cooldown = result.state != FAILED or result.trained
    claims.finish(decision.claim, result.state if result.state != "completed" else COMPLETED, result.outcome,
                  holds_cooldown=holds_cooldown, remote=result.remote)
    retrain.update({"status": result.state, "reason": result.outcome, "result": result.detail})
    retrain["claim"].update({"state": result.state, "outcome": result.outcome, "holds_cooldown": holds_cooldown})
    if not holds_cooldown:
        console.info("the retrain failed before training, so it frees the cooldown: the next check may retrain")
    if result.exit_code not in (EXIT_DRIFT, EXIT_NO_DRIFT):
        data["error"] = result.outcome
    console.info(result.outcome)
    for reason in (result.detail.get("gate") or {}).get("reasons") or []:  # why it was (not) promoted, as `run` says
        console.info(f"  {reason}")
    return result.exit_code


def _finish_or_say(claims: RetrainClaims, claim: Claim, line: str, console: Console) -> str | None:
    """Mark the claim failed; if MLflow cannot be told (it went down with the retrain), say how long the claim
    left in flight blocks the model's retrains (returned too, for the JSON), and let the retrain's own error be the
    one reported."""
    import time

    from driftloop.drift.claims import FAILED, IN_FLIGHT_TIMEOUT_S

    try:
        claims.finish(claim, FAILED, line, holds_cooldown=False)
    except Exception as e:  # noqa: BLE001 - any failure to record must not hide the failure being recorded
        until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claim.created_s + IN_FLIGHT_TIMEOUT_S))
        note = (f"retrain #{claim.sequence} could not be marked failed in MLflow ({type(e).__name__}: "
                f"{(str(e).splitlines() or [''])[0][:200]}); it blocks this model's retrains until {until}")
        console.warning(note)
        return note
    return None
