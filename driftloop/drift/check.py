"""One drift check: resolve the reference, detect, write the report and record it in MLflow.

This is what the KFP drift task runs, so it imports detection and the report only. Acting on
drift (claims and triggers, which may start a whole pipeline) sits above it in
`driftloop.drift.retrain` and comes in through `on_drift`; the check stays below the runners.

Exit codes, which CI and alerting act on: 0 no drift, 3 drift found (whether a retrain
started or was suppressed is in the JSON), 1 failure, 2 usage error.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.constants import (
    DRIFT_ARTIFACT_DIR,
    DRIFT_EXPERIMENT,
    DRIFT_HTML_FILE,
    DRIFT_JSON_FILE,
    EXIT_DRIFT,
    EXIT_NO_DRIFT,
    FEATURE_META_ARTIFACT,
    REFERENCE_ARTIFACT,
    RUN_TAG_CHAMPION_VERSION,
    RUN_TAG_DEDUPE_KEY,
    RUN_TAG_DRIFT,
    RUN_TAG_DRIFTED_FEATURES,
    RUN_TAG_MODEL,
    RUN_TAG_RETRAIN,
    SPEC_ARTIFACT,
    TAG_DATA_SHA256,
    TAG_LAST_DRIFT,
    TAG_LAST_DRIFT_RUN,
)
from driftloop.errors import ArtifactNotFound, DataError, ModelNotFound, UsageError

if TYPE_CHECKING:
    import pandas as pd

    from driftloop.components.columns import ColumnRoles
    from driftloop.console import Console
    from driftloop.drift.detect import DriftParams, DriftReport
    from driftloop.mlflow_gateway import MLflowGateway
    from driftloop.spec import DriftSpec

# The gateway's registered model version (an MLflow ModelVersion: name, version, run_id); only the
# gateway names MLflow's types.
Champion = Any


@dataclass
class DriftRequest:
    """A `driftloop drift` invocation; unset policy fields fall back to the champion's stored drift policy."""

    current: str
    reference: str | None = None
    model_name: str | None = None
    target: str | None = None
    tracking_uri: str | None = None
    track: bool = True
    p_val: float | None = None
    correction: str | None = None
    min_samples: int | None = None
    time_columns: list[str] | None = None  # None: the stored policy's (else inferred); []: every column is tested
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
    read: dict[str, Any] = field(default_factory=dict)  # CSV options for the --current and --reference files


@dataclass(frozen=True)
class Reference:
    """The table drift is measured against, with the model's column roles and stored drift policy."""

    frame: pd.DataFrame
    uri: str
    numeric: list[str] | None = None
    categorical: list[str] | None = None
    target: str | None = None
    datetime: dict[str, list[str]] | None = None  # date column → the calendar features the model takes
    date_formats: dict[str, str] | None = None  # date column → its format as training read it (ISO when absent)
    stored_policy: dict[str, Any] | None = None  # the champion spec's `drift` section
    boolean: list[str] | None = None  # the categorical columns the model reads as booleans
    # the champion's reading of missing text as `data.read` options (`keep_default_na`, `na_values`): its `data.read`,
    # less any word its reference sample holds as a category or date, as the model file keeps them
    # (`train.kept_missing_texts`): the current table's cells mean what the training table's meant
    missing_read: dict[str, Any] = field(default_factory=dict)
    model_columns: frozenset[str] | None = None  # the champion's input columns (None without a champion)


@dataclass
class DriftCheck:
    """A check that found drift, as `on_drift` receives it: everything a retrain acts on.

    `data` is the JSON document being built; `on_drift` adds to its `retrain` block and may set
    `error`. The report is written and the MLflow run finished after `on_drift` returns.
    """

    request: DriftRequest
    policy: DriftSpec  # flags over the champion's stored policy over the defaults
    report: DriftReport
    data: dict[str, Any]
    report_dir: Path
    reference: Reference
    current: pd.DataFrame  # the current table's features (prediction-log keys dropped)
    window: str  # the data window's label: --window, else the current table's hash
    champion: Champion | None
    mlflow: MLflowGateway | None
    tracking_uri: str


@dataclass(frozen=True)
class DriftOutcome:
    """The finished check: the report, the JSON document, the exit code, and where the files are."""

    report: DriftReport
    data: dict[str, Any]  # the JSON document (report + model, run and retrain)
    exit_code: int
    report_dir: Path  # holds drift.json and drift.html


OnDrift = Callable[[DriftCheck, "Console"], int]


def check_drift(request: DriftRequest, *, console: Console, on_drift: OnDrift | None = None) -> DriftOutcome:
    """Detect, record, and on drift hand over to `on_drift` (which returns the exit code).

    Args:
        request: the invocation.
        console: where progress and the per-feature table go.
        on_drift: what to do when drift is found (the retrain); None records the drift only.

    Raises:
        DriftloopError: for anything a user can fix (flags, tables, a missing champion or reference).

    Example:
        >>> check_drift(DriftRequest(current="live.csv", reference="ref.csv", track=False), console=Console()).exit_code
        3
    """
    from driftloop.canonical import missing_texts, missing_words_as_none, over_missing_read
    from driftloop.drift.detect import detect, feature_table
    from driftloop.table import load_table, table_format

    _check_flags(request)
    mlflow, tracking_uri = _gateway(request)
    champion = _champion(mlflow, request.model_name) if request.model_name else None
    # unique per invocation: an alert storm runs many of these at once in one working directory
    report_dir = request.out_dir / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    report_dir.mkdir(parents=True, exist_ok=True)
    reference = _reference(request, mlflow, champion, report_dir)
    policy = _policy(request, reference.stored_policy)
    params = _params(policy)
    read = over_missing_read(reference.missing_read, request.read)
    current_table = load_table(request.current, read=read, nested_ok=_left_out_by(reference))
    current = feature_table(current_table.frame)
    for uri, rows in ((request.current, len(current)), (reference.uri, len(reference.frame))):
        if rows < params.min_samples:  # else no feature is tested, and "no drift" would be said of nothing
            raise DataError(f"{uri}: {rows} rows, fewer than min_samples={params.min_samples}; a drift test on so "
                            "few rows would not mean much (--min-samples sets it)")
    target = request.target or reference.target
    roles = feature_roles(feature_table(reference.frame), target=target, numeric=reference.numeric,
                          categorical=reference.categorical, datetime=reference.datetime,
                          date_formats=reference.date_formats, boolean=reference.boolean)
    # a Parquet or JSON Lines table is read without missing words: its text means what the model's reading says
    words = missing_texts(read)
    columns = [*roles.numeric, *roles.categorical, *roles.datetime]
    if table_format(request.current) != "csv":
        current = missing_words_as_none(current, columns, words)
    baseline = feature_table(reference.frame)
    if request.reference is None or table_format(request.reference) != "csv":
        baseline = missing_words_as_none(baseline, columns, words)
    with console.step("drift"):
        report = detect(baseline, current, roles, params)
    report = replace(report, sources={"reference": reference.uri, "current": request.current})
    data: dict[str, Any] = report.to_json() | {
        "model_name": request.model_name, "champion_version": champion.version if champion else None,
        "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "run_id": None,
        "retrain": {"requested": request.retrain, "status": "not_requested" if request.retrain is None
                    else ("not_needed" if not report.is_drift else "pending")}}
    _show(console, report)
    unlabelled = int(current_table.frame[target].isna().sum()) if target and target in current_table.frame else 0
    trained_on = champion is not None and (champion.tags or {}).get(TAG_DATA_SHA256) == current_table.sha256
    if report.is_drift and unlabelled and trained_on and request.reference is None:
        # the training file checked against its own model: its rows without a target were never trained on, and where
        # they differ from the labelled ones (a cancelled flight has no times), that difference is what is reported
        console.warning(f"{unlabelled} of the {len(current_table.frame)} current rows have no {target!r}; the reference "
                        "holds the rows the model trained on, which all had one: features that differ in the "
                        "unlabelled rows (missing where the labelled ones are not) show as drift")
    run_id = _start_run(mlflow, request, champion, report, data) if mlflow is not None else None
    data["run_id"] = run_id
    exit_code = EXIT_DRIFT if report.is_drift else EXIT_NO_DRIFT
    try:
        if report.is_drift and on_drift is not None:
            check = DriftCheck(request, policy, report, data, report_dir, reference, current,
                               request.window or current_table.sha256[:16], champion, mlflow, tracking_uri)
            exit_code = on_drift(check, console)
    finally:
        _write(report, data, report_dir)
        if mlflow is not None and run_id is not None:
            _finish_run(mlflow, run_id, data, report_dir, champion)
    return DriftOutcome(report, data, exit_code, report_dir)


def feature_roles(reference: pd.DataFrame, *, target: str | None, numeric: list[str] | None = None,
                  categorical: list[str] | None = None, datetime: dict[str, list[str]] | None = None,
                  date_formats: dict[str, str] | None = None, boolean: list[str] | None = None) -> ColumnRoles:
    """Which columns are compared, and how: the model's roles when known, else inferred from the reference.

    Inferred as the feature step infers them, so an unseen model's columns are compared as training would treat them.
    """
    from driftloop.components.columns import ColumnRoles
    from driftloop.components.roles import infer
    from driftloop.spec import FeatureSpec

    if numeric is not None or categorical is not None:
        return ColumnRoles(target or "", list(numeric or []), list(categorical or []), boolean=list(boolean or []),
                           datetime=dict(datetime or {}), date_formats=dict(date_formats or {}))
    frame = reference if target is None or target not in reference.columns else reference.drop(columns=[target])
    return infer(frame, target or "", FeatureSpec())


def _check_flags(request: DriftRequest) -> None:
    from driftloop.spec import apply_override

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
    if request.overrides and request.retrain not in ("local", "kfp"):
        # silently dropping a `--set` is how `validation.mostly=0.5` came to be ignored
        raise UsageError("--set overrides the champion's spec for a retrain it runs: add --retrain local or kfp"
                         if request.retrain is None else
                         "--set does not reach an MLTrainingJob retrain, which trains on the resource's own spec; "
                         "edit the resource instead")
    for item in request.overrides:  # a misspelt key is a usage error now, not a failed retrain after the claim
        apply_override({}, item)


def _gateway(request: DriftRequest) -> tuple[MLflowGateway | None, str]:
    from driftloop.mlflow_gateway import connect, resolve_tracking_uri

    uri = resolve_tracking_uri(request.tracking_uri)
    return (connect(uri) if request.track else None), uri


def _champion(mlflow: MLflowGateway | None, model_name: str) -> Champion:
    from driftloop.mlflow_gateway import validate_model_name

    validate_model_name(model_name)
    if mlflow is None:
        raise UsageError("--model reads the @champion from MLflow; it cannot be used with --no-track")
    champion = mlflow.champion(model_name)
    if champion is None:
        mlflow.require_model(model_name)  # a misspelt model says so (with the nearest name), not that it has no champion
        raise ModelNotFound(f"model {model_name!r} has no @champion at {mlflow.tracking_uri}; "
                            "train one with `driftloop run`, or pass --reference FILE")
    return champion


def _reference(request: DriftRequest, mlflow: MLflowGateway | None, champion: Champion | None,
               report_dir: Path) -> Reference:
    """`--reference`, else the sample stored with @champion, with the model's column roles and drift policy."""
    import json

    import yaml

    from driftloop.canonical import missing_read, missing_texts, over_missing_read, unheld
    from driftloop.table import load_table, nested_cells

    stored: dict[str, Any] = {}
    roles: dict[str, Any] = {}
    if champion is not None and mlflow is not None:
        meta = _download(mlflow, champion, FEATURE_META_ARTIFACT, report_dir)
        if meta is not None:
            roles = json.loads(meta.read_text(encoding="utf-8"))
        spec_path = _download(mlflow, champion, SPEC_ARTIFACT, report_dir)
        if spec_path is not None:
            stored = yaml.safe_load(spec_path.read_text(encoding="utf-8")) or {}
    read = (stored.get("data") or {}).get("read") or {}
    missing = {k: read[k] for k in ("keep_default_na", "na_values") if read.get(k) is not None}
    model_columns = frozenset([*roles.get("numeric", []), *roles.get("categorical", []), *roles.get("datetime", {}),
                               *roles.get("boolean", [])]) if roles else None
    if request.reference is not None:
        frame = load_table(request.reference, read=over_missing_read(missing, request.read),
                           nested_ok=None if model_columns is None else lambda column: column not in model_columns).frame
        if model_columns is not None:  # its own columns decide the roles (below): a nested one is none to compare
            frame = frame.drop(columns=[c for c in frame.columns
                                        if c not in model_columns and nested_cells(frame[c]).any()])
        uri = request.reference
    else:
        path = _download(mlflow, champion, REFERENCE_ARTIFACT, report_dir)  # type: ignore[arg-type]
        if path is None:
            raise DataError(f"@champion v{champion.version} of {request.model_name!r} has no reference sample "
                            f"({REFERENCE_ARTIFACT}; feature.reference_sample_rows was 0?); pass --reference FILE")
        # what training kept of its table, a column the model leaves out too (which training let be nested)
        frame = load_table(str(path), nested_ok=lambda column: True).frame
        uri = f"models:/{request.model_name}@champion ({REFERENCE_ARTIFACT})"
    if stored:
        # as the model file keeps them (`train.kept_missing_texts`): a Parquet table's "None" level is no missing word
        texts = [c for c in [*roles.get("categorical", []), *roles.get("datetime", {})] if c in frame.columns]
        missing = missing_read(unheld(missing_texts(missing), (frame[c].dropna().unique() for c in texts)))
    target = roles.get("target") or (stored.get("data") or {}).get("target")
    # a given --reference may not have every column the model was trained on; its own columns decide then
    known = roles and request.reference is None
    return Reference(frame, uri, roles.get("numeric") if known else None, roles.get("categorical") if known else None,
                     target, roles.get("datetime") if known else None, roles.get("date_formats") if known else None,
                     stored.get("drift"), roles.get("boolean") if known else None, missing, model_columns)


def _download(mlflow: MLflowGateway, champion: Champion, artifact: str, report_dir: Path) -> Path | None:
    """The champion run's artifact, or None when it has none (older models lack some)."""
    try:
        return mlflow.download_artifact(champion.run_id, artifact, report_dir / "champion")
    except ArtifactNotFound:
        return None


def _policy(request: DriftRequest, stored: dict[str, Any] | None) -> DriftSpec:
    """Flags win over the champion's stored policy, which wins over the defaults."""
    from driftloop.spec import DriftSpec

    policy = DriftSpec.model_validate(stored or {})
    flags = {name: getattr(request, name) for name in ("p_val", "correction", "min_samples", "cooldown",
                                                         "retrain_data", "window_holdout", "time_columns")}
    return policy.model_copy(update={name: value for name, value in flags.items() if value is not None})


def _params(policy: DriftSpec) -> DriftParams:
    from driftloop.drift.detect import DriftParams

    return DriftParams(p_val=policy.p_val, correction=policy.correction, min_samples=policy.min_samples,
                       time_columns=None if policy.time_columns is None else tuple(policy.time_columns))


def _show(console: Console, report: DriftReport) -> None:
    rows = [(f.name, f.test, f.statistic, f.p_value, "yes" if f.drifted else ("no" if f.tested else "-"))
            for f in sorted(report.features, key=lambda f: (not f.drifted, f.p_value if f.p_value is not None else 2))]
    console.table("drift per feature", ["feature", "test", "statistic", "p-value", "drifted"], rows)
    tested = sum(1 for f in report.features if f.tested)
    verdict = (f"DRIFT in {len(report.drifted_features)} of {tested} tested features: "
               f"{', '.join(report.drifted_features)}" if report.is_drift else f"no drift in {tested} tested features")
    untested = f"; {len(report.features) - tested} not tested (see the table)" if tested < len(report.features) else ""
    console.info(f"{verdict} (p_val {report.params.p_val:g}, {report.params.correction}, per-feature bound "
                 f"{report.threshold:.3g}){untested}")
    for column in report.time_columns:  # after the verdict: they are not part of it
        console.info(f"time column {column.name}: {column.note} [not drift: {column.why}]")
    for finding in report.quality:
        console.warning(f"data quality: column {finding.column!r}: {finding.note}")


def _start_run(mlflow: MLflowGateway, request: DriftRequest, champion: Champion | None, report: DriftReport,
               data: dict[str, Any]) -> str:
    tags = {RUN_TAG_DRIFT: str(report.is_drift).lower(), RUN_TAG_DRIFTED_FEATURES: ",".join(report.drifted_features)}
    if request.model_name:
        tags[RUN_TAG_MODEL] = request.model_name
    if champion is not None:
        tags[RUN_TAG_CHAMPION_VERSION] = str(champion.version)
    tracker = mlflow.start_run(DRIFT_EXPERIMENT, run_name=f"{request.model_name or 'tables'}-drift", tags=tags)
    tracker.log_params({"reference": data["sources"]["reference"], "current": request.current,
                        "p_val": report.params.p_val, "correction": report.params.correction,
                        "min_samples": report.params.min_samples, "retrain": request.retrain or "none",
                        "time_columns": _listed(report.params.time_columns)})
    metrics = {"drifted_features": len(report.drifted_features), "features": len(report.features),
               "threshold": report.threshold, "current_rows": report.current_rows,
               "time_columns": len(report.time_columns), "quality_findings": len(report.quality)}
    for column in report.time_columns:
        metrics[f"time_extrapolates.{_metric_name(column.name)}"] = float(column.extrapolates)
    for finding in report.quality:
        metrics[f"unparseable_share.{_metric_name(finding.column)}"] = finding.share
    for feature in report.features:
        if feature.p_value is not None:
            metrics[f"p_value.{_metric_name(feature.name)}"] = feature.p_value
            metrics[f"statistic.{_metric_name(feature.name)}"] = feature.statistic or 0.0
    tracker.log_metrics(metrics)
    return tracker.run_id


def _finish_run(mlflow: MLflowGateway, run_id: str, data: dict[str, Any], report_dir: Path,
                champion: Champion | None) -> None:
    tracker = mlflow.tracker(run_id)
    retrain = data["retrain"]
    tags = {RUN_TAG_RETRAIN: retrain["status"]}
    if retrain.get("dedupe_key"):
        tags[RUN_TAG_DEDUPE_KEY] = retrain["dedupe_key"]
    tracker.set_tags(tags)
    tracker.log_artifact(report_dir / DRIFT_JSON_FILE, DRIFT_ARTIFACT_DIR)
    tracker.log_artifact(report_dir / DRIFT_HTML_FILE, DRIFT_ARTIFACT_DIR)
    if champion is not None:
        # the link from the model version to its latest drift check (the run links back by tag)
        mlflow.set_version_tags(champion.name, champion.version, {
            TAG_LAST_DRIFT_RUN: run_id,
            TAG_LAST_DRIFT: f"{'drift' if data['is_drift'] else 'no drift'} at {data['checked_at']}"})
    tracker.end("FAILED" if retrain["status"] == "failed" else "FINISHED")


def _write(report: DriftReport, data: dict[str, Any], report_dir: Path) -> None:
    from driftloop.drift.detect import write_report

    write_report(report, report_dir, title=f"drift report: {data.get('model_name') or 'tables'}",
                 extra={k: v for k, v in data.items() if k not in report.to_json()})


def _listed(time_columns: tuple[str, ...] | None) -> str:
    """The time-columns setting as an MLflow param (at most 6000 characters)."""
    if time_columns is None:
        return "inferred"
    return ",".join(time_columns)[:6000] or "none"


def _metric_name(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", name)[:200]


def _left_out_by(reference: Reference) -> Callable[[str], bool] | None:
    """Whether the champion leaves a column out (it may hold anything, a Parquet list too); None without a champion,
    whose roles are inferred from every column."""
    taken = reference.model_columns
    return None if taken is None else (lambda column: column not in taken)
