"""validate: check the input table against a Great Expectations suite.

The suite is declared in the spec, given as a stored suite file, inherited from the
champion, or profiled once from this table; it is written next to the result so it
travels with the model.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.components.columns import ColumnRoles, canonical_frame, infer_roles, infer_task
from driftloop.constants import SUITE_FILE, VALIDATION_REPORT_FILE, VALIDATION_RESULT_FILE
from driftloop.errors import DataError, ValidationFailed
from driftloop.table import check_target

if TYPE_CHECKING:
    import pandas as pd

    from driftloop.components.context import RunContext
    from driftloop.mlflow_gateway import ModelVersion
    from driftloop.spec import FeatureSpec, ValidationSpec
    from driftloop.table import LoadedTable

NUMERIC_TYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                 "float16", "float32", "float64", "Int64", "Float64"]
ROLES_FILE = "columns.json"


@dataclass(frozen=True)
class ValidationResult:
    suite_source: str  # spec-file | declared | champion | profiled
    suite_path: Path
    result_path: Path
    report_path: Path
    roles_path: Path
    checked: int
    rows: int


def run(frame: pd.DataFrame, *, source: str, target: str, validation: ValidationSpec, feature: FeatureSpec,
        out_dir: Path, task: str = "auto", stored_suite: Path | None = None) -> ValidationResult:
    """Validate `frame` (read from `source`) and write suite, result and report into `out_dir`.

    Raises:
        DataError: a problem found before any expectation runs (missing target, all-null column).
        ValidationFailed: an expectation failed; the message names column, expectation and observed value.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_basics(frame, source, target)
    if validation.suite is not None:
        suite, origin = _read_suite(Path(validation.suite)), "spec-file"
    elif validation.columns:
        suite, origin = _declared_suite(frame, target, validation), "declared"
    elif stored_suite is not None:
        suite, origin = _read_suite(stored_suite), "champion"
    else:
        suite, origin = None, "profiled"
    roles = _roles_from_suite(suite) if suite is not None else infer_roles(frame, target, feature)
    missing = [c for c in roles.features if c not in frame.columns]
    if missing:
        raise ValidationFailed(f"{source}: column {missing[0]!r} expected by the {origin} suite is missing "
                               f"(expect_table_columns_to_match_set; observed columns: {', '.join(frame.columns)})")
    canonical = canonical_frame(frame, roles)
    if suite is None:
        suite = _profile_suite(canonical, roles, task, validation)
    results = _run_suite(canonical, suite)
    suite_path = out_dir / SUITE_FILE
    suite_path.write_text(json.dumps(suite, indent=2, default=str), encoding="utf-8")
    roles_path = out_dir / ROLES_FILE
    roles.save(roles_path)
    result_path = out_dir / VALIDATION_RESULT_FILE
    result_path.write_text(json.dumps({"source": source, "suite_source": origin, "rows": len(frame),
                                       "success": all(r["success"] for r in results), "results": results},
                                      indent=2, default=str), encoding="utf-8")
    report_path = out_dir / VALIDATION_REPORT_FILE
    report_path.write_text(_report(source, origin, len(frame), results), encoding="utf-8")
    failures = [r for r in results if not r["success"]]
    if failures:
        first = failures[0]
        more = f" (+{len(failures) - 1} more failed expectations, see {report_path})" if len(failures) > 1 else ""
        raise ValidationFailed(f"{source}: {_describe(first)}{more}")
    return ValidationResult(origin, suite_path, result_path, report_path, roles_path, len(results), len(frame))


def _check_basics(frame: pd.DataFrame, source: str, target: str) -> None:
    check_target(list(frame.columns), target, source)
    for column in frame.columns:
        if frame[column].isna().all():
            raise DataError(f"{source}: column {column!r} is entirely null ({len(frame)} rows); drop it or fill it")
    if frame[target].isna().any():
        # reached only with data.drop_missing_target false: by default the runners drop those rows first
        raise DataError(f"{source}: target column {target!r} has {int(frame[target].isna().sum())} null values "
                        "(data.drop_missing_target is false)")


def _gx_expectations():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")  # GE draws progress bars per validation otherwise
    import great_expectations as gx

    return gx


def _expectation(kind: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs, "meta": {}}


def _suite_dict(expectations: list[dict[str, Any]], roles: ColumnRoles, origin: str) -> dict[str, Any]:
    return {"name": "driftloop", "expectations": expectations,
            "meta": {"driftloop": {"origin": origin, "target": roles.target,
                                   "numeric": roles.numeric, "categorical": roles.categorical}}}


def _roles_from_suite(suite: dict[str, Any]) -> ColumnRoles:
    meta = suite.get("meta", {}).get("driftloop")
    if not meta:
        raise DataError("stored expectation suite has no driftloop column roles in its meta")
    return ColumnRoles(target=meta["target"], numeric=list(meta["numeric"]), categorical=list(meta["categorical"]))


def _read_suite(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read expectation suite ({e})") from e


def _profile_suite(frame: pd.DataFrame, roles: ColumnRoles, task: str, spec: ValidationSpec) -> dict[str, Any]:
    """Expectations learnt from the first training table, loose enough for the next day's data."""
    expectations = [_expectation("expect_table_columns_to_match_set",
                                 column_set=roles.features + [roles.target], exact_match=False)]
    for column in roles.numeric:
        values = frame[column]
        expectations += _null_rule(column, values.isna().mean())
        expectations.append(_expectation("expect_column_values_to_be_in_type_list", column=column, type_list=NUMERIC_TYPES))
        lo, hi = float(values.min()), float(values.max())
        margin = spec.range_margin * (hi - lo)
        expectations.append(_expectation("expect_column_values_to_be_between", column=column,
                                         min_value=lo - margin, max_value=hi + margin, mostly=spec.mostly))
    for column in roles.categorical:
        values = frame[column]
        expectations += _null_rule(column, values.isna().mean())
        expectations.append(_expectation("expect_column_values_to_be_in_type_list", column=column, type_list=["str"]))
        expectations.append(_expectation("expect_column_values_to_be_in_set", column=column,
                                         value_set=sorted(values.dropna().unique().tolist()), mostly=spec.mostly))
    expectations.append(_expectation("expect_column_values_to_not_be_null", column=roles.target))
    target = frame[roles.target]
    if (task if task != "auto" else infer_task(target)) == "classification":
        expectations.append(_expectation("expect_column_values_to_be_in_set", column=roles.target,
                                         value_set=sorted(target.unique().tolist(), key=str)))
    return _suite_dict(expectations, roles, "profiled")


def _declared_suite(frame: pd.DataFrame, target: str, spec: ValidationSpec) -> dict[str, Any]:
    numeric = [c for c, r in spec.columns.items() if r.type == "numeric" and c != target]
    categorical = [c for c, r in spec.columns.items() if r.type == "categorical" and c != target]
    roles = ColumnRoles(target=target, numeric=numeric, categorical=categorical)
    expectations = [_expectation("expect_table_columns_to_match_set",
                                 column_set=roles.features + [target], exact_match=False)]
    for column, rule in spec.columns.items():
        if not rule.nullable:
            expectations.append(_expectation("expect_column_values_to_not_be_null", column=column))
        if rule.type == "numeric":
            expectations.append(_expectation("expect_column_values_to_be_in_type_list", column=column, type_list=NUMERIC_TYPES))
            if rule.min is not None or rule.max is not None:
                expectations.append(_expectation("expect_column_values_to_be_between", column=column,
                                                 min_value=rule.min, max_value=rule.max))
        elif rule.categories is not None:
            expectations.append(_expectation("expect_column_values_to_be_in_set", column=column, value_set=rule.categories))
    return _suite_dict(expectations, roles, "declared")


def _null_rule(column: str, null_share: float) -> list[dict[str, Any]]:
    if null_share == 0:
        return [_expectation("expect_column_values_to_not_be_null", column=column)]
    return [_expectation("expect_column_values_to_not_be_null", column=column,
                         mostly=round(max(0.0, 1 - min(1.0, 2 * null_share + 0.05)), 4))]


def _run_suite(frame: pd.DataFrame, suite: dict[str, Any]) -> list[dict[str, Any]]:
    gx = _gx_expectations()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batch = (context.data_sources.add_pandas("driftloop").add_dataframe_asset(name="table")
             .add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": frame}))
    try:
        gx_suite = gx.ExpectationSuite(name=suite.get("name", "driftloop"), expectations=[
            _to_gx(gx, e) for e in suite["expectations"]])
    except Exception as e:  # GE raises several types for a malformed suite
        raise DataError(f"expectation suite is not valid: {e}") from e
    outcome = batch.validate(gx_suite)
    results = []
    for item in outcome.results:
        config = item.expectation_config
        results.append({"expectation": config.type, "column": config.kwargs.get("column"),
                        "kwargs": {k: v for k, v in config.kwargs.items() if k not in ("column", "batch_id")},
                        "success": bool(item.success), "observed": _observed(item.result or {})})
    return results


def _to_gx(gx: Any, expectation: dict[str, Any]) -> Any:
    from great_expectations.expectations.registry import get_expectation_impl

    return get_expectation_impl(expectation["type"])(**expectation["kwargs"])


def _observed(result: dict[str, Any]) -> dict[str, Any]:
    observed: dict[str, Any] = {}
    if "observed_value" in result:
        observed["value"] = result["observed_value"]
    if result.get("unexpected_count"):
        observed["unexpected_count"] = result["unexpected_count"]
        observed["unexpected_percent"] = round(float(result.get("unexpected_percent") or 0.0), 3)
        observed["examples"] = list(result.get("partial_unexpected_list") or [])[:5]
    return observed


def _describe(result: dict[str, Any]) -> str:
    where = f"column {result['column']!r}: " if result["column"] else ""
    args = ", ".join(f"{k}={v!r}" for k, v in result["kwargs"].items()
                     if k not in ("value_set", "type_list", "column_set") or len(str(v)) < 60)
    observed = result["observed"]
    if "examples" in observed:
        seen = f"{observed['unexpected_count']} unexpected values ({observed['unexpected_percent']}%), e.g. {observed['examples']}"
    else:
        seen = f"observed {observed.get('value')!r}"
    return f"{where}{result['expectation']}({args}) failed: {seen}"


def _report(source: str, origin: str, rows: int, results: list[dict[str, Any]]) -> str:
    failed = sum(not r["success"] for r in results)
    lines = [f"# Validation of `{source}`", "",
             f"{rows} rows, suite: {origin}, {len(results)} expectations, {failed} failed.", "",
             "| | column | expectation | observed |", "|---|---|---|---|"]
    for r in results:
        mark = "PASS" if r["success"] else "**FAIL**"
        lines.append(f"| {mark} | {r['column'] or '(table)'} | {r['expectation']} | {json.dumps(r['observed'], default=str)} |")
    return "\n".join(lines) + "\n"


def execute(ctx: RunContext, table: LoadedTable, *, champion: ModelVersion | None, out_dir: Path,
            scratch: Path) -> ValidationResult:
    """Validate the run's table against the declared, stored, champion's or profiled suite, and log the suite."""
    from driftloop.constants import RUN_TAG_SUITE_SOURCE, TAG_DATA_SHA256, VALIDATION_DIR

    spec = ctx.spec
    stored = _champion_suite(ctx, champion, scratch) if champion is not None else None
    outcome = run(table.frame, source=spec.data.path, target=spec.data.target, validation=spec.validation,
                  feature=spec.feature, out_dir=out_dir, task=spec.data.task, stored_suite=stored)
    ctx.tracker.log_artifacts(out_dir, VALIDATION_DIR)
    ctx.tracker.set_tags({TAG_DATA_SHA256: table.sha256, RUN_TAG_SUITE_SOURCE: outcome.suite_source})
    return outcome


def _champion_suite(ctx: RunContext, champion: ModelVersion, scratch: Path) -> Path | None:
    """The expectation suite stored with the champion's run, if it has one."""
    from driftloop.constants import SUITE_ARTIFACT
    from driftloop.errors import ArtifactNotFound

    try:
        return ctx.gateway.download_artifact(champion.run_id, SUITE_ARTIFACT, scratch)
    except ArtifactNotFound:
        return None
