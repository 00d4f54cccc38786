"""`driftloop drift`: resolve the reference, detect, record, and (once per cooldown) retrain.

Exit codes, which CI and alerting act on: 0 no drift, 3 drift found (whether a retrain
started or was suppressed is in the JSON), 1 failure, 2 usage error.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.constants import (
    DRIFT_ARTIFACT_DIR,
    DRIFT_EXPERIMENT,
    DRIFT_HTML_FILE,
    DRIFT_JSON_FILE,
    FEATURE_META_ARTIFACT,
    REFERENCE_ARTIFACT,
    RUN_TAG_CHAMPION_VERSION,
    RUN_TAG_DEDUPE_KEY,
    RUN_TAG_DRIFT,
    RUN_TAG_DRIFTED_FEATURES,
    RUN_TAG_MODEL,
    RUN_TAG_RETRAIN,
    SPEC_ARTIFACT,
    TAG_LAST_DRIFT,
    TAG_LAST_DRIFT_RUN,
)
from driftloop.errors import DataError, DriftloopError, ModelNotFound, UsageError

if TYPE_CHECKING:
    import pandas as pd

    from driftloop.console import Console
    from driftloop.drift.detect import DriftParams, DriftReport
    from driftloop.registry import Registry

EXIT_NO_DRIFT = 0
EXIT_DRIFT = 3


@dataclass
class DriftRequest:
    """A `driftloop drift` invocation, resolved from flags and the champion's stored drift policy."""

    current: str
    reference: str | None = None
    model_name: str | None = None
    target: str | None = None
    tracking_uri: str | None = None
    track: bool = True
    p_val: float | None = None
    correction: str | None = None
    min_samples: int | None = None
    cooldown: str | None = None
    retrain: str | None = None  # local | kfp | k8s
    retrain_data: str | None = None
    window: str | None = None
    window_holdout: float | None = None
    overrides: list[str] = field(default_factory=list)
    out_dir: Path = Path(".driftloop") / "drift"
    k8s_job: str | None = None
    namespace: str = "default"
    kfp_host: str | None = None
    kfp_experiment: str = "driftloop"
    kfp_namespace: str | None = None


@dataclass
class DriftOutcome:
    report: DriftReport
    data: dict[str, Any]  # the JSON document (report + model, run and retrain)
    exit_code: int


@dataclass
class _Reference:
    frame: pd.DataFrame
    uri: str
    numeric: list[str] | None = None
    categorical: list[str] | None = None
    target: str | None = None
    stored_policy: dict[str, Any] | None = None  # the champion spec's `drift` section


def check_drift(request: DriftRequest, *, console: Console) -> DriftOutcome:
    """Detect, record and maybe retrain. Raises DriftloopError for anything a user can fix."""
    from driftloop.drift.detect import DriftReport, detect, feature_roles, feature_table
    from driftloop.table import load_table

    _check_flags(request)
    registry, tracking_uri = _registry(request)
    champion = _champion(registry, request.model_name) if request.model_name else None
    # unique per invocation: an alert storm runs many of these at once in one working directory
    out_dir = request.out_dir / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    out_dir.mkdir(parents=True, exist_ok=True)
    reference = _reference(request, registry, champion, out_dir)
    params = _params(request, reference.stored_policy)
    current_table = load_table(request.current)
    current = feature_table(current_table.frame)
    if len(current) < params.min_samples:
        raise DataError(f"{request.current}: {len(current)} rows, fewer than min_samples={params.min_samples}; "
                        "a drift test on so few rows would not mean much")
    target = request.target or reference.target
    roles = feature_roles(feature_table(reference.frame), target=target, numeric=reference.numeric,
                          categorical=reference.categorical)
    with console.step("drift"):
        report = detect(feature_table(reference.frame), current, roles, params)
    report = DriftReport(**{**report.__dict__, "sources": {"reference": reference.uri, "current": request.current}})
    data: dict[str, Any] = report.to_json() | {
        "model_name": request.model_name, "champion_version": champion.version if champion else None,
        "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "run_id": None,
        "retrain": {"requested": request.retrain, "status": "not_requested" if request.retrain is None
                    else ("not_needed" if not report.is_drift else "pending")}}
    _show(console, report)
    run_id = _start_run(registry, request, champion, report, data) if registry is not None else None
    data["run_id"] = run_id
    exit_code = EXIT_DRIFT if report.is_drift else EXIT_NO_DRIFT
    try:
        if report.is_drift and request.retrain:
            window = request.window or current_table.sha256[:16]
            exit_code = _retrain(request, registry, tracking_uri, champion, reference, current, report, window,
                                 params, data, out_dir, console)
    finally:
        _write(report, data, out_dir)
        if registry is not None and run_id is not None:
            _finish_run(registry, run_id, data, out_dir, champion)
    data["_out_dir"] = str(out_dir)
    return DriftOutcome(report, data, exit_code)


def _check_flags(request: DriftRequest) -> None:
    if request.model_name is None and request.reference is None:
        raise UsageError("give --model (the reference is the data stored with its @champion) or --reference FILE")
    if request.retrain in ("local", "kfp") and request.model_name is None:
        raise UsageError(f"--retrain {request.retrain} retrains the @champion's recipe: give --model")
    if request.retrain == "k8s" and not request.k8s_job:
        raise UsageError("--retrain k8s needs --k8s-job NAME (the MLTrainingJob to retrain)")
    if request.retrain == "kfp" and not request.kfp_host:
        raise UsageError("--retrain kfp needs --kfp-host URL (or DRIFTLOOP_KFP_HOST)")
    if request.retrain and not request.track:
        raise UsageError("--retrain keeps its dedupe and cooldown records in MLflow; it cannot be used with --no-track")


def _registry(request: DriftRequest) -> tuple[Registry | None, str]:
    from driftloop.tracking import resolve_tracking_uri

    uri = resolve_tracking_uri(request.tracking_uri)
    if not request.track:
        return None, uri
    from driftloop.registry import Registry
    from driftloop.tracking import connect

    return Registry(connect(uri), uri), uri


def _champion(registry: Registry | None, model_name: str) -> Any:
    from driftloop.registry import validate_model_name

    validate_model_name(model_name)
    if registry is None:
        raise UsageError("--model reads the @champion from MLflow; it cannot be used with --no-track")
    champion = registry.champion(model_name)
    if champion is None:
        raise ModelNotFound(f"model {model_name!r} has no @champion at {registry.tracking_uri}; "
                            "train one with `driftloop run`, or pass --reference FILE")
    return champion


def _reference(request: DriftRequest, registry: Registry | None, champion: Any, out_dir: Path) -> _Reference:
    """`--reference`, else the sample stored with @champion, with the model's column roles and drift policy."""
    import json

    import yaml

    from driftloop.table import load_table

    stored: dict[str, Any] = {}
    roles: dict[str, Any] = {}
    if champion is not None and registry is not None:
        meta = _download(registry, champion, FEATURE_META_ARTIFACT, out_dir)
        if meta is not None:
            roles = json.loads(meta.read_text(encoding="utf-8"))
        spec_path = _download(registry, champion, SPEC_ARTIFACT, out_dir)
        if spec_path is not None:
            stored = yaml.safe_load(spec_path.read_text(encoding="utf-8")) or {}
    if request.reference is not None:
        frame, uri = load_table(request.reference).frame, request.reference
    else:
        path = _download(registry, champion, REFERENCE_ARTIFACT, out_dir)  # type: ignore[arg-type]
        if path is None:
            raise DataError(f"@champion v{champion.version} of {request.model_name!r} has no reference sample "
                            f"({REFERENCE_ARTIFACT}; feature.reference_sample_rows was 0?); pass --reference FILE")
        frame, uri = load_table(str(path)).frame, f"models:/{request.model_name}@champion ({REFERENCE_ARTIFACT})"
    target = roles.get("target") or (stored.get("data") or {}).get("target")
    # a given --reference may not have every column the model was trained on; its own columns decide then
    known = roles and request.reference is None
    return _Reference(frame, uri, roles.get("numeric") if known else None, roles.get("categorical") if known else None,
                      target, stored.get("drift"))


def _download(registry: Registry | None, champion: Any, artifact: str, out_dir: Path) -> Path | None:
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    assert registry is not None
    try:
        return Path(download_artifacts(artifact_uri=f"runs:/{champion.run_id}/{artifact}",
                                       dst_path=str(out_dir / "champion"), tracking_uri=registry.tracking_uri))
    except (MlflowException, OSError):
        return None


def _params(request: DriftRequest, stored: dict[str, Any] | None) -> DriftParams:
    """Flags win over the champion's stored policy, which wins over the defaults."""
    from driftloop.drift.detect import DriftParams
    from driftloop.spec import DriftSpec

    policy = DriftSpec.model_validate(stored or {})
    for name in ("p_val", "correction", "min_samples", "cooldown", "retrain_data", "window_holdout"):
        value = getattr(request, name)
        if value is not None:
            setattr(policy, name, value)
        else:
            setattr(request, name, getattr(policy, name))
    return DriftParams(p_val=policy.p_val, correction=policy.correction, min_samples=policy.min_samples)  # type: ignore[arg-type]


def _show(console: Console, report: DriftReport) -> None:
    rows = [(f.name, f.test, f.statistic, f.p_value, "yes" if f.drifted else ("no" if f.tested else "-"))
            for f in sorted(report.features, key=lambda f: (not f.drifted, f.p_value if f.p_value is not None else 2))]
    console.table("drift per feature", ["feature", "test", "statistic", "p-value", "drifted"], rows)
    verdict = (f"DRIFT in {len(report.drifted_features)} of {len(report.features)} features: "
               f"{', '.join(report.drifted_features)}" if report.is_drift else "no drift")
    console.info(f"{verdict} (p_val {report.params.p_val:g}, {report.params.correction}, per-feature bound "
                 f"{report.threshold:.3g})")


def _retrain(request: DriftRequest, registry: Registry | None, tracking_uri: str, champion: Any,
             reference: _Reference, current: pd.DataFrame, report: DriftReport, window: str, params: DriftParams,
             data: dict[str, Any], out_dir: Path, console: Console) -> int:
    from driftloop.drift.claims import COMPLETED, FAILED, RetrainClaims, dedupe_key
    from driftloop.drift.triggers import K8sTrigger, KfpTrigger, LocalTrigger, RetrainRequest
    from driftloop.durations import parse_duration
    from driftloop.tracking import local_artifact_root

    assert registry is not None
    model = request.model_name or f"k8s.{request.namespace}.{request.k8s_job}"
    key = dedupe_key(model, champion.version if champion else None, report.drifted_features, window)
    retrain = data["retrain"]
    retrain.update({"dedupe_key": key, "window": window, "cooldown": request.cooldown})
    if request.retrain == "k8s":
        trigger: Any = K8sTrigger(request.k8s_job or "", request.namespace)
    elif request.retrain == "kfp":
        trigger = KfpTrigger(request.kfp_host or "", request.kfp_experiment, request.kfp_namespace)
    else:
        trigger = LocalTrigger()
    busy = trigger.preflight()  # before claiming: a trigger that cannot act must not use up the cooldown
    if busy:
        retrain.update({"status": "suppressed", "reason": f"in flight: {busy}"})
        console.info(f"retrain suppressed: {retrain['reason']}")
        return EXIT_DRIFT
    claims = RetrainClaims(registry.client, model, artifact_root=local_artifact_root(tracking_uri))
    decision = claims.try_claim(key, cooldown_s=parse_duration(request.cooldown or "0"), trigger=trigger.name,
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
        model_name=model, key=key, reference=reference.frame, current=current, target=reference.target,
        champion_run_id=champion.run_id if champion else None, tracking_uri=tracking_uri, out_dir=out_dir,
        retrain_data=request.retrain_data or "reference+current",
        window_holdout=request.window_holdout or 0.3, overrides=list(request.overrides),
        drift_run_id=data.get("run_id"))
    try:
        result = trigger.retrain(retrain_request, console)
    except BaseException as e:
        message = str(e) if isinstance(e, DriftloopError) else f"internal error: {type(e).__name__}: {e}"
        line = message.splitlines()[0] if message else type(e).__name__
        claims.finish(decision.claim, FAILED, line)  # a failed retrain does not hold its dedupe key
        retrain["claim"].update({"state": FAILED, "outcome": line})
        retrain.update({"status": "failed", "reason": line})
        if not isinstance(e, DriftloopError):
            raise
        data["error"] = line  # the report is still written; the exit code says the retrain failed
        return e.exit_code
    claims.finish(decision.claim, result.state if result.state != "completed" else COMPLETED, result.outcome)
    retrain.update({"status": result.state, "reason": result.outcome, "result": result.detail})
    retrain["claim"].update({"state": result.state, "outcome": result.outcome})
    if result.exit_code not in (EXIT_DRIFT, EXIT_NO_DRIFT):
        data["error"] = result.outcome
    console.info(result.outcome)
    return result.exit_code


def _start_run(registry: Registry, request: DriftRequest, champion: Any, report: DriftReport,
               data: dict[str, Any]) -> str:
    from driftloop.tracking import Tracker, ensure_experiment

    client = registry.client
    experiment = ensure_experiment(client, DRIFT_EXPERIMENT, registry.tracking_uri)
    tags = {RUN_TAG_DRIFT: str(report.is_drift).lower(), RUN_TAG_DRIFTED_FEATURES: ",".join(report.drifted_features)}
    if request.model_name:
        tags[RUN_TAG_MODEL] = request.model_name
    if champion is not None:
        tags[RUN_TAG_CHAMPION_VERSION] = str(champion.version)
    run = client.create_run(experiment, run_name=f"{request.model_name or 'tables'}-drift", tags=tags)
    tracker = Tracker(client, run.info.run_id)
    tracker.log_params({"reference": data["sources"]["reference"], "current": request.current,
                        "p_val": report.params.p_val, "correction": report.params.correction,
                        "min_samples": report.params.min_samples, "retrain": request.retrain or "none"})
    metrics = {"drifted_features": len(report.drifted_features), "features": len(report.features),
               "threshold": report.threshold, "current_rows": report.current_rows}
    for feature in report.features:
        if feature.p_value is not None:
            metrics[f"p_value.{_metric_name(feature.name)}"] = feature.p_value
            metrics[f"statistic.{_metric_name(feature.name)}"] = feature.statistic or 0.0
    tracker.log_metrics(metrics)
    return run.info.run_id


def _finish_run(registry: Registry, run_id: str, data: dict[str, Any], out_dir: Path, champion: Any) -> None:
    from driftloop.tracking import Tracker

    tracker = Tracker(registry.client, run_id)
    retrain = data["retrain"]
    tags = {RUN_TAG_RETRAIN: retrain["status"]}
    if retrain.get("dedupe_key"):
        tags[RUN_TAG_DEDUPE_KEY] = retrain["dedupe_key"]
    tracker.set_tags(tags)
    tracker.log_artifact(out_dir / DRIFT_JSON_FILE, DRIFT_ARTIFACT_DIR)
    tracker.log_artifact(out_dir / DRIFT_HTML_FILE, DRIFT_ARTIFACT_DIR)
    if champion is not None:
        # the link from the model version to its latest drift check (the run links back by tag)
        registry.client.set_model_version_tag(champion.name, champion.version, TAG_LAST_DRIFT_RUN, run_id)
        registry.client.set_model_version_tag(champion.name, champion.version, TAG_LAST_DRIFT,
                                              f"{'drift' if data['is_drift'] else 'no drift'} at {data['checked_at']}")
    registry.client.set_terminated(run_id, "FAILED" if retrain["status"] == "failed" else "FINISHED")


def _write(report: DriftReport, data: dict[str, Any], out_dir: Path) -> None:
    from driftloop.drift.detect import write_report

    write_report(report, out_dir, title=f"drift report: {data.get('model_name') or 'tables'}",
                 extra={k: v for k, v in data.items() if k not in report.to_json() and not k.startswith("_")})


def _metric_name(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", name)[:200]
