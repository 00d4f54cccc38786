"""validate: check the input table against a Great Expectations suite.

The suite is declared in the spec, given as a stored suite file, inherited from the
champion, or profiled once from this table; it is written next to the result so it
travels with the model.

Errors stop the run: a missing column, a wrong type, an empty table, or any expectation
that is not about the data moving. Where the suite was learnt from data (profiled, or the
champion's profiled suite), findings that are the data moving (a new category, a value out
of range, a changed null share) are warnings: shown, stored in `result.json`, counted in the
run metric `validation.warnings`, and the run goes on. `validation.strict` makes them errors,
and a suite the user declared (`validation.columns`, `validation.suite`) is a contract whose
every expectation is an error. With `validation.reprofile` (a drift-triggered retrain) the
champion's suite is checked for warnings, then re-profiled from this table, and what changed
is written to `suite_changes.json`: the loop closes on new categories without going silent.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.canonical import row_number
from driftloop.components.columns import ColumnRoles, canonical_frame, infer_task
from driftloop.components.leaks import target_copies
from driftloop.components.roles import infer as infer_roles
from driftloop.components.roles import markdown as roles_markdown
from driftloop.components.roles import show as show_roles
from driftloop.components.suite_changes import BETWEEN, IN_SET, NOT_NULL, SuiteChanges, suite_changes
from driftloop.constants import SUITE_CHANGES_FILE, SUITE_FILE, VALIDATION_REPORT_FILE, VALIDATION_RESULT_FILE
from driftloop.errors import DataError, ValidationFailed
from driftloop.table import check_target

if TYPE_CHECKING:
    import pandas as pd

    from driftloop.components.context import RunContext
    from driftloop.console import Console
    from driftloop.mlflow_gateway import ModelVersion
    from driftloop.spec import FeatureSpec, Spec, ValidationSpec
    from driftloop.table import LoadedTable

NUMERIC_TYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                 "float16", "float32", "float64", "Int64", "Float64"]
ROLES_FILE = "columns.json"
ROLES_TABLE_FILE = "roles.md"  # the roles table (column, role, why) as shown before training
# The data moving rather than breaking: warnings unless validation.strict.
DRIFT_LIKE = {IN_SET: "new categories", BETWEEN: "values out of range", NOT_NULL: "null share changed"}
# Suites whose tolerances (`mostly`, the range margin) come from the spec, so today's spec sets them.
PROFILED_ORIGINS = ("profiled", "reprofiled")


@dataclass(frozen=True)
class ValidationResult:
    suite_source: str  # spec-file | declared | champion | profiled | reprofiled
    suite_path: Path
    result_path: Path
    report_path: Path
    roles_path: Path
    checked: int
    rows: int
    warnings: tuple[str, ...] = ()  # one line per drift-like finding that did not stop the run
    changes: SuiteChanges | None = None  # set when the suite was re-profiled against the champion's
    changes_path: Path | None = None
    leaks: tuple[str, ...] = ()  # one line per feature that is the target under another name (`leaks`)


def run(frame: pd.DataFrame, *, source: str, target: str, validation: ValidationSpec, feature: FeatureSpec,
        out_dir: Path, task: str = "auto", stored_suite: Path | None = None,
        na_values: list[str] | None = None) -> ValidationResult:
    """Validate `frame` (read from `source`) and write suite, result and report into `out_dir`.

    Raises:
        DataError: a problem found before any expectation runs (empty table, missing target, all-null column).
        ValidationFailed: an error-class expectation failed (or any, when strict); the message names column,
            expectation and observed value.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    if len(frame) == 0:
        raise ValidationFailed(f"{source}: the table has no rows (expect_table_row_count_to_be_between min_value=1)")
    _check_basics(frame, source, target, feature)
    _check_missing_marks(frame, source, target, feature, task=task, na_values=na_values or [])
    suite, origin, baseline = _resolve_suite(frame, target, validation, stored_suite)
    if origin in ("champion", "reprofiled") and suite is not None and _spec_changes_roles(suite, feature):
        # the user re-set a role since the champion: their word wins, and the suite is learnt again with it
        suite, origin, baseline = None, "profiled", None
    roles = (_roles_from_suite(suite, origin, list(frame.columns)) if suite is not None
             else infer_roles(frame, target, feature))
    missing = [c for c in roles.features if c not in frame.columns]
    if missing:
        raise ValidationFailed(f"{source}: column {missing[0]!r} expected by the {origin} suite is missing "
                               f"(expect_table_columns_to_match_set; observed columns: {', '.join(frame.columns)})")
    canonical = canonical_frame(frame, roles)
    _check_finite(canonical, roles.numeric, source)
    leaks = tuple(f"{source}: {line}" for line in
                  target_copies(canonical, roles, task if task != "auto" else infer_task(canonical[target]),
                                champion_features=_suite_features(stored_suite)))
    if suite is None:
        suite = _profile_suite(canonical, roles, task, validation)
    # a declared suite (spec columns or a suite file) is the user's contract: only learnt ones warn
    learnt = suite.get("meta", {}).get("driftloop", {}).get("origin") in PROFILED_ORIGINS
    results = _classified(_run_suite(canonical, suite), strict=validation.strict or not learnt)
    errors = [r for r in results if r["severity"] == "error"]
    warnings = tuple(f"{source}: {DRIFT_LIKE[r['expectation']]}: {_describe(r)}"
                     for r in results if r["severity"] == "warning")
    changes, changes_path = None, None
    if baseline is not None and not errors:
        suite = _profile_suite(canonical, roles, task, validation, origin="reprofiled")
        changes, changes_path = suite_changes(baseline, suite), out_dir / SUITE_CHANGES_FILE
        changes_path.write_text(json.dumps(changes.to_json(), indent=2, default=str), encoding="utf-8")
    suite_path = out_dir / SUITE_FILE
    suite_path.write_text(json.dumps(suite, indent=2, default=str), encoding="utf-8")
    roles_path = out_dir / ROLES_FILE
    roles.save(roles_path)
    (out_dir / ROLES_TABLE_FILE).write_text(roles_markdown(roles), encoding="utf-8")
    result_path = out_dir / VALIDATION_RESULT_FILE
    result_path.write_text(json.dumps({"source": source, "suite_source": origin, "rows": len(frame),
                                       "strict": validation.strict, "success": not errors,
                                       "errors": len(errors), "warnings": list(warnings), "leaks": list(leaks),
                                       "results": results},
                                      indent=2, default=str), encoding="utf-8")
    report_path = out_dir / VALIDATION_REPORT_FILE
    report_path.write_text(_report(source, origin, len(frame), results), encoding="utf-8")
    if errors:
        first = errors[0]
        more = f" (+{len(errors) - 1} more failed expectations, see {report_path})" if len(errors) > 1 else ""
        raise ValidationFailed(f"{source}: {_describe(first)}{more}")
    return ValidationResult(origin, suite_path, result_path, report_path, roles_path, len(results), len(frame),
                            warnings, changes, changes_path, leaks)


def _resolve_suite(frame: pd.DataFrame, target: str, validation: ValidationSpec,
                   stored_suite: Path | None) -> tuple[dict[str, Any] | None, str, dict[str, Any] | None]:
    """The suite to check (None: profile one), its origin, and the champion's suite a re-profile is measured against.

    A strict re-profile keeps the champion's suite: strict means the stored contract decides.
    """
    if validation.suite is not None:
        return _read_suite(Path(validation.suite)), "spec-file", None
    if validation.columns:
        return _declared_suite(frame, target, validation), "declared", None
    if stored_suite is None:
        return None, "profiled", None
    stored = _with_tolerances(_read_suite(stored_suite), validation)
    if validation.reprofile and not validation.strict:
        return stored, "reprofiled", stored
    return stored, "champion", None


def _with_tolerances(suite: dict[str, Any], spec: ValidationSpec) -> dict[str, Any]:
    """A profiled suite with this run's `mostly` and `range_margin` (a `--set validation.…` must count).

    The stored values are a past spec's tolerances, not facts about the data; the observed
    ranges the profile kept in each expectation's meta are widened again by today's margin.
    """
    if suite.get("meta", {}).get("driftloop", {}).get("origin") not in PROFILED_ORIGINS:
        return suite
    expectations = []
    for expectation in suite.get("expectations", []):
        kwargs = dict(expectation.get("kwargs", {}))
        if expectation.get("type") in (IN_SET, BETWEEN) and "mostly" in kwargs:
            kwargs["mostly"] = spec.mostly
        observed = expectation.get("meta") or {}
        if expectation.get("type") == BETWEEN and {"observed_min", "observed_max"} <= observed.keys():
            kwargs["min_value"], kwargs["max_value"] = _widened(observed["observed_min"], observed["observed_max"], spec)
        expectations.append({**expectation, "kwargs": kwargs})
    return {**suite, "expectations": expectations}


def _widened(lo: float, hi: float, spec: ValidationSpec) -> tuple[float, float]:
    margin = spec.range_margin * (hi - lo)
    return lo - margin, hi + margin


def _classified(results: list[dict[str, Any]], *, strict: bool) -> list[dict[str, Any]]:
    """Each result with its severity: pass, warning (the data moved) or error."""
    for r in results:
        drift_like = r["expectation"] in DRIFT_LIKE and not strict
        r["severity"] = "pass" if r["success"] else ("warning" if drift_like else "error")
    return results


def _check_basics(frame: pd.DataFrame, source: str, target: str, feature: FeatureSpec) -> None:
    check_target(list(frame.columns), target, source)
    empty = [str(c) for c in frame.columns if frame[c].isna().all() and not feature.leaves_out(str(c))]
    # the spec's own drops kept (the option replaces the list); JSON is YAML and quotes a name with a comma or a
    # colon; shlex quotes the whole for the shell, a name with an apostrophe too
    drop = f"--set {shlex.quote('feature.drop=' + json.dumps([*feature.drop, *empty], ensure_ascii=False))}"
    if len(empty) == 1:
        raise DataError(f"{source}: column {empty[0]!r} is entirely null ({len(frame)} rows); drop it ({drop}) or "
                        "fill it")
    if empty:  # all of them in one line: great_tables' reactions took two runs, bokeh's airports three, one per column
        raise DataError(f"{source}: {len(empty)} columns are entirely null ({len(frame)} rows): "
                        f"{', '.join(map(repr, empty))}; drop them ({drop}) or fill them")
    if frame[target].isna().any():
        # reached only with data.drop_missing_target false: by default the runners drop those rows first
        raise DataError(f"{source}: target column {target!r} has {int(frame[target].isna().sum())} null values "
                        "(data.drop_missing_target is false)")


def _check_missing_marks(frame: pd.DataFrame, source: str, target: str, feature: FeatureSpec, *, task: str,
                         na_values: list[str]) -> None:
    """DataError naming every column of numbers with a missing-value mark in it ('?'), and the `data.read.na_values`
    that reads it as missing; columns the spec leaves out or gives another role (and a target the spec says is
    classes) are theirs."""
    from driftloop.components.roles import missing_marks

    found = {}
    for column in frame.columns:
        name = str(column)
        # the spec's word decides a column it leaves out or reads as anything but numbers; one it says is numbers
        # with '?' in it fails as text in a numeric column, which this line explains better
        theirs = feature.leaves_out(name) or feature.roles.get(name, "numeric") != "numeric" \
            or name in (feature.categorical or [])
        if theirs or (column == target and task == "classification"):
            continue
        marks = missing_marks(frame[column])
        if marks:
            found[name] = marks
    if not found:
        return
    marks = list(dict.fromkeys(mark for counts in found.values() for mark in counts))
    fix = f"--set {shlex.quote('data.read.na_values=' + json.dumps([*na_values, *marks], ensure_ascii=False))}"
    where = [(f"the target {column!r}" if column == target else f"column {column!r}") + " ("
             + ", ".join(f"{mark!r} in {count}" for mark, count in counts.items())
             + f" of {int(frame[column].notna().sum())} rows)" for column, counts in found.items()]
    said_marks = ", ".join(map(repr, marks))
    held = f"{where[0]} holds" if len(where) == 1 else f"{len(where)} columns hold"
    otherwise = [*(["set the column's role (feature.roles)"] if set(found) - {target} else []),
                 *(["say the target is classes (--set data.task=classification)"] if target in found else [])]
    raise DataError(f"{source}: {held} numbers and {said_marks}, which is not read as missing"
                    + (f": {', '.join(where)}" if len(where) > 1 else "")
                    + f"; if {said_marks} means missing, say so ({fix}), else {' or '.join(otherwise)}")


def _check_finite(frame: pd.DataFrame, numeric: list[str], source: str) -> None:
    """An infinity ("inf" in a CSV reads as one) would make the profiled range -inf..inf, a check that never fails
    again; serving refuses such values, so training does too. So does a finite number beyond float32's range, which
    the model's float32 input makes an infinity: great_tables' physical constants (1.36e50) trained into "validation
    loss is not finite; lower train.lr", advice that cannot help."""
    import numpy as np

    from driftloop.canonical import FLOAT32_MAX, beyond_float32

    for column in numeric:
        infinite = np.isinf(frame[column].to_numpy(dtype="float64"))
        if infinite.any():
            first = int(infinite.nonzero()[0][0])
            raise DataError(f"{source}: column {column!r} holds {int(infinite.sum())} infinite values (the first, "
                            f"{frame[column].iloc[first]}, at row {row_number(frame.index, first)}); expected finite "
                            "numbers: leave the cell empty for a missing value")
        huge = beyond_float32(frame[column])
        if huge:
            raise DataError(f"{source}: column {column!r} holds {len(huge)} value(s) beyond the model's float32 input "
                            f"(the first, {frame[column].iloc[huge[0]]:.10g}, at row "
                            f"{row_number(frame.index, huge[0])}; at most ±{FLOAT32_MAX:.4g}): rescale the column (a "
                            f"log, other units) or leave it out (feature.roles={{{column}: drop}})")


def _gx_expectations():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")  # GE draws progress bars per validation otherwise
    import great_expectations as gx

    return gx


def _expectation(kind: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs, "meta": {}}


def _suite_dict(expectations: list[dict[str, Any]], roles: ColumnRoles, origin: str) -> dict[str, Any]:
    return {"name": "driftloop", "expectations": expectations,
            "meta": {"driftloop": {"origin": origin, **roles.to_meta()}}}


def _spec_changes_roles(suite: dict[str, Any], feature: FeatureSpec) -> bool:
    """Whether `feature.roles` or the feature lists give a column another role than the stored suite's."""
    meta = suite.get("meta", {}).get("driftloop")
    if not meta:
        return False
    stored = ColumnRoles.from_json(meta)
    wanted = dict.fromkeys(feature.numeric or [], "numeric") | dict.fromkeys(feature.categorical or [], "categorical")
    wanted |= dict.fromkeys(feature.drop, "drop") | dict(feature.roles)
    for column, role in wanted.items():
        have = ("numeric" if column in stored.numeric else "datetime" if column in stored.datetime
                else "boolean" if column in stored.boolean else "categorical" if column in stored.categorical
                else "drop")
        if have != ("drop" if role == "id" else role):
            return True
    return False


def _roles_from_suite(suite: dict[str, Any], origin: str, columns: list[str]) -> ColumnRoles:
    """The roles a stored or declared suite fixed; the roles table says where they came from."""
    meta = suite.get("meta", {}).get("driftloop")
    if not meta:
        raise DataError("stored expectation suite has no driftloop column roles in its meta")
    roles = ColumnRoles.from_json(meta)
    boolean = set(roles.boolean)
    table = [{"column": c, "role": "numeric", "why": f"as in the {origin} suite" + (
        f" ({roles.parsed[c]})" if c in roles.parsed else "")} for c in roles.numeric]
    table += [{"column": c, "role": "datetime", "why": f"as in the {origin} suite: {', '.join(parts)}"}
              for c, parts in roles.datetime.items()]
    table += [{"column": c, "role": "boolean" if c in boolean else "categorical", "why": f"as in the {origin} suite"}
              for c in roles.categorical]
    table += [{"column": c, "role": "drop", "why": f"not in the {origin} suite"}
              for c in columns if c not in roles.features and c != roles.target]
    ignored = [r["column"] for r in table if r["role"] == "drop"]
    return ColumnRoles.from_json({**roles.to_meta(), "table": table, "ignored": sorted({*roles.ignored, *ignored})})


def _suite_features(stored_suite: Path | None) -> list[str] | None:
    """The columns the champion's model took, from its stored suite (None without one, or an old one without roles)."""
    meta = _read_suite(stored_suite).get("meta", {}).get("driftloop") if stored_suite is not None else None
    return ColumnRoles.from_json(meta).features if meta else None


def _read_suite(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read expectation suite ({e})") from e


def _profile_suite(frame: pd.DataFrame, roles: ColumnRoles, task: str, spec: ValidationSpec, *,
                   origin: str = "profiled") -> dict[str, Any]:
    """Expectations learnt from a training table, loose enough for the next day's data."""
    expectations = [_expectation("expect_table_columns_to_match_set",
                                 column_set=roles.features + [roles.target], exact_match=False)]
    for column in roles.numeric:
        values = frame[column]
        expectations += _null_rule(column, values.isna().mean())
        expectations.append(_expectation("expect_column_values_to_be_in_type_list", column=column, type_list=NUMERIC_TYPES))
        lo, hi = float(values.min()), float(values.max())
        low, high = _widened(lo, hi, spec)
        between = _expectation(BETWEEN, column=column, min_value=low, max_value=high, mostly=spec.mostly)
        between["meta"] = {"observed_min": lo, "observed_max": hi}  # so a later margin widens the data, not the bounds
        expectations.append(between)
    for column in roles.categorical:
        values = frame[column]
        expectations += _null_rule(column, values.isna().mean())
        expectations.append(_expectation("expect_column_values_to_be_in_type_list", column=column, type_list=["str"]))
        expectations.append(_expectation("expect_column_values_to_be_in_set", column=column,
                                         value_set=sorted(values.dropna().unique().tolist()), mostly=spec.mostly))
    for column in roles.datetime:  # dates move by nature: only their null share is a fact to keep
        expectations += _null_rule(column, frame[column].isna().mean())
    expectations.append(_expectation("expect_column_values_to_not_be_null", column=roles.target))
    target = frame[roles.target]
    if (task if task != "auto" else infer_task(target)) == "classification":
        expectations.append(_expectation("expect_column_values_to_be_in_set", column=roles.target,
                                         value_set=sorted(target.unique().tolist(), key=str)))
    return _suite_dict(expectations, roles, origin)


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
            expectations.append(_expectation("expect_column_values_to_be_in_set", column=column,
                                             value_set=_as_read(rule.categories, frame.get(column),
                                                                is_target=column == target)))
    return _suite_dict(expectations, roles, "declared")


def _as_read(categories: list[Any], values: pd.Series | None, *, is_target: bool) -> list[Any]:
    """Declared categories as the suite meets the column: a feature's as category text ("2" for 2 or 2.0), the
    target's as it is read (a label coded 0/1 is read as numbers, so "1" is the number 1 there)."""
    import pandas as pd

    from driftloop.canonical import category_text

    if values is None:  # the column is missing: the suite's column check says so
        return list(categories)
    if not is_target:
        return [category_text(c) for c in categories]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return [c if isinstance(c, str) else category_text(c) for c in categories]
    read = []
    for category in categories:
        try:
            number = float(category)
        except (TypeError, ValueError):
            read.append(category)  # not a number: no value of this column can be it
            continue
        read.append(int(number) if pd.api.types.is_integer_dtype(values) and number.is_integer() else number)
    return read


def _null_rule(column: str, null_share: float) -> list[dict[str, Any]]:
    if null_share == 0:
        return [_expectation("expect_column_values_to_not_be_null", column=column)]
    # up to twice the share (and 5 points) may be null; past a share of 30% that would allow every row, so
    # at least half the rows that had a value must still have one: a column going empty is always seen
    return [_expectation("expect_column_values_to_not_be_null", column=column,
                         mostly=round(max(1 - min(1.0, 2 * null_share + 0.05), (1 - null_share) / 2), 4))]


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
        # distinct examples: five copies of one new category say less than one
        observed["examples"] = list({repr(v): v for v in result.get("partial_unexpected_list") or []}.values())[:5]
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
    warned = sum(r.get("severity") == "warning" for r in results)
    lines = [f"# Validation of `{source}`", "",
             f"{rows} rows, suite: {origin}, {len(results)} expectations, {failed} failed "
             f"({warned} as warnings).", "",
             "| | column | expectation | observed |", "|---|---|---|---|"]
    for r in results:
        mark = "PASS" if r["success"] else ("WARN" if r.get("severity") == "warning" else "**FAIL**")
        lines.append(f"| {mark} | {r['column'] or '(table)'} | {r['expectation']} | {json.dumps(r['observed'], default=str)} |")
    return "\n".join(lines) + "\n"


def execute(ctx: RunContext, table: LoadedTable, *, champion: ModelVersion | None, out_dir: Path,
            scratch: Path, console: Console | None = None) -> ValidationResult:
    """Validate the run's table against the declared, stored, champion's or profiled suite, and log the suite.

    Warnings and suite changes are shown on `console` (a plain one on stderr when None, as in a
    KFP task's log) and logged to the run; a failed validation still logs what it wrote.
    """
    from driftloop.console import Console
    from driftloop.constants import METRIC_VALIDATION_WARNINGS, RUN_TAG_SUITE_SOURCE, TAG_DATA_SHA256, VALIDATION_DIR

    spec = ctx.spec
    console = console if console is not None else Console()
    stored = _champion_suite(ctx, champion, scratch) if champion is not None else None
    if stored is not None and spec.data.target in table.frame.columns:  # else: not found, with a did-you-mean
        _check_same_target(stored, spec, champion_version=champion.version)  # type: ignore[union-attr]
    try:
        outcome = run(table.frame, source=spec.data.path, target=spec.data.target, validation=spec.validation,
                      feature=spec.feature, out_dir=out_dir, task=spec.data.task, stored_suite=stored,
                      na_values=spec.data.read.na_values)
    finally:
        if out_dir.is_dir() and any(out_dir.iterdir()):  # a failed check's report is what explains it
            ctx.tracker.log_artifacts(out_dir, VALIDATION_DIR)
    ctx.tracker.set_tags({TAG_DATA_SHA256: table.sha256, RUN_TAG_SUITE_SOURCE: outcome.suite_source})
    ctx.tracker.log_metrics({METRIC_VALIDATION_WARNINGS: len(outcome.warnings)})
    show_roles(ColumnRoles.load(outcome.roles_path), console)
    show(outcome, console, champion_version=champion.version if champion is not None else None)
    return outcome


def show(outcome: ValidationResult, console: Console, *, champion_version: str | None = None) -> None:
    """One line per warning and their count; for a re-profiled suite, what changed against the champion's."""
    for line in outcome.leaks:  # not a validation warning: no strictness makes it an error, it may be meant
        console.warning(line)
    for line in outcome.warnings:
        console.warning(line)
    if outcome.warnings:
        console.info(f"validation: {len(outcome.warnings)} warning(s), not errors (validation.strict=true makes "
                     "them errors); see validation/result.json")
    if outcome.changes is not None:
        against = f"v{champion_version}'s" if champion_version else "the champion's"
        lines = outcome.changes.lines()
        console.info(f"suite re-profiled from this table: {len(lines) or 'no'} change(s) against {against} suite"
                     + (":" if lines else ""))
        for line in lines[:10]:
            console.info(f"  {line}")
        if len(lines) > 10:
            console.info(f"  … {len(lines) - 10} more in validation/{SUITE_CHANGES_FILE}")


def _check_same_target(stored_suite: Path, spec: Spec, *, champion_version: str) -> None:
    """The run's target is the one the champion predicts. The model name defaults to the file's stem, so a second
    target on the same file lands on the same name, where the champion's stored roles (which name its target) would
    train the old target again and promote it under the new one's run.

    Raises:
        DataError: the targets differ, naming both and what to do.
    """
    meta = _read_suite(stored_suite).get("meta", {}).get("driftloop") or {}
    predicted = meta.get("target")
    if predicted is not None and predicted != spec.data.target:
        raise DataError(f"{spec.data.path}: the target is {spec.data.target!r}, but @champion v{champion_version} of "
                        f"{spec.model_name!r} predicts {predicted!r}; a registered model predicts one target: give "
                        f"this one its own name (--model, registry.model_name)")


def _champion_suite(ctx: RunContext, champion: ModelVersion, scratch: Path) -> Path | None:
    """The expectation suite stored with the champion's run, if it has one."""
    from driftloop.constants import SUITE_ARTIFACT
    from driftloop.errors import ArtifactNotFound

    try:
        return ctx.gateway.download_artifact(champion.run_id, SUITE_ARTIFACT, scratch)
    except ArtifactNotFound:
        return None
