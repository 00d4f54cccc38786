"""Validation that evolves with the data: errors stop a run, drift-like findings warn, a retrain re-profiles.

The validate step on `tmp_path` with real Great Expectations: a suite profiled from one table is
the champion's, and a drifted table (a new category, values out of range) is checked against it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from driftloop.components import validate
from driftloop.components.suite_changes import suite_changes
from driftloop.errors import DataError, ValidationFailed
from driftloop.example import customers
from driftloop.spec import FeatureSpec, ValidationSpec


@pytest.fixture(scope="module")
def champion_suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("champion")
    result = validate.run(customers(rows=400, seed=1), source="train.csv", target="churned",
                          validation=ValidationSpec(), feature=FeatureSpec(), out_dir=out)
    assert result.suite_source == "profiled" and result.warnings == ()
    return result.suite_path


def drifted(rows: int = 300) -> pd.DataFrame:
    """A third of the rows on a plan the champion never saw, and tenures three times as long."""
    frame = customers(rows=rows, seed=3)
    frame["plan"] = frame["plan"].where(frame.index % 3 != 0, "gold")
    frame["tenure_months"] = frame["tenure_months"] * 3
    return frame


def check(frame: pd.DataFrame, out: Path, suite: Path | None, **validation: object) -> validate.ValidationResult:
    return validate.run(frame, source="live.csv", target="churned", validation=ValidationSpec(**validation),
                        feature=FeatureSpec(), out_dir=out, stored_suite=suite)


def test_new_category_and_range_are_warnings_shown_and_stored(tmp_path: Path, champion_suite: Path) -> None:
    result = check(drifted(), tmp_path, champion_suite)
    assert result.suite_source == "champion"
    assert len(result.warnings) == 2
    category = next(w for w in result.warnings if "'plan'" in w)
    assert category.startswith("live.csv: new categories: column 'plan': expect_column_values_to_be_in_set(")
    assert "e.g. ['gold']" in category  # distinct examples, not five copies of one
    assert any(w.startswith("live.csv: values out of range: column 'tenure_months'") for w in result.warnings)
    stored = json.loads(result.result_path.read_text())
    assert stored["success"] is True and stored["errors"] == 0 and stored["warnings"] == list(result.warnings)
    assert {r["column"] for r in stored["results"] if r["severity"] == "warning"} == {"plan", "tenure_months"}
    assert "| WARN | plan |" in result.report_path.read_text()
    # the stored suite is still the champion's: a plain run does not widen the contract
    assert "gold" not in result.suite_path.read_text()


def test_strict_turns_warnings_into_the_expectation_error(tmp_path: Path, champion_suite: Path) -> None:
    with pytest.raises(ValidationFailed) as raised:
        check(drifted(), tmp_path, champion_suite, strict=True)
    message = str(raised.value)
    assert message.startswith("live.csv: column 'tenure_months': expect_column_values_to_be_between(")
    assert "(+1 more failed expectations" in message
    stored = json.loads((tmp_path / "result.json").read_text())  # the failed check still leaves its record
    assert stored["success"] is False and stored["errors"] == 2 and stored["strict"] is True


def test_errors_stay_errors_without_strict(tmp_path: Path, champion_suite: Path) -> None:
    with pytest.raises(ValidationFailed, match="column 'region' expected by the champion suite is missing"):
        check(drifted().drop(columns=["region"]), tmp_path / "missing", champion_suite)
    words = drifted().assign(customer_age=lambda f: ["young" if a < 40 else "old" for a in f["customer_age"]])
    with pytest.raises(DataError, match="column 'customer_age': text in a numeric column: 'old'"):
        check(words, tmp_path / "type", champion_suite)
    with pytest.raises(ValidationFailed, match="live.csv: the table has no rows"):
        check(drifted().head(0), tmp_path / "empty", champion_suite)


def test_set_mostly_and_range_margin_reach_the_champions_suite(tmp_path: Path, champion_suite: Path) -> None:
    """The stored suite keeps the data (sets, observed ranges); today's spec sets the tolerances."""
    loose = check(drifted(), tmp_path / "mostly", champion_suite, mostly=0.5)
    assert loose.warnings == ()  # a third new, a sixth out of range: both under half the rows
    wide = check(drifted(), tmp_path / "margin", champion_suite, range_margin=3.0)
    assert [w.split(":")[1].strip() for w in wide.warnings] == ["new categories"]
    enforced = json.loads(wide.suite_path.read_text())
    between = next(e for e in enforced["expectations"]
                   if e["type"] == "expect_column_values_to_be_between" and e["kwargs"]["column"] == "tenure_months")
    lo, hi = between["meta"]["observed_min"], between["meta"]["observed_max"]
    assert between["kwargs"]["max_value"] == pytest.approx(hi + 3.0 * (hi - lo))


def test_reprofile_stores_the_new_suite_and_what_changed(tmp_path: Path, champion_suite: Path) -> None:
    training = pd.concat([customers(rows=400, seed=1), drifted()], ignore_index=True)  # reference + current
    result = check(training, tmp_path, champion_suite, reprofile=True)
    assert result.suite_source == "reprofiled" and len(result.warnings) == 2  # still shown against the champion's
    suite = json.loads(result.suite_path.read_text())
    plan = next(e for e in suite["expectations"]
                if e["type"] == "expect_column_values_to_be_in_set" and e["kwargs"]["column"] == "plan")
    assert "gold" in plan["kwargs"]["value_set"]
    assert result.changes is not None and result.changes_path is not None
    written = json.loads(result.changes_path.read_text())
    assert written["columns"]["plan"] == {"categories_added": ["gold"]}
    tenure = written["columns"]["tenure_months"]["range"]
    assert tenure["widened"] is True and tenure["to"][1] > tenure["from"][1]
    assert ["plan", "categories added: gold"] in written["rows"]
    # the re-profiled suite is checked against on the next run like any champion's
    again = check(training, tmp_path / "next", result.suite_path)
    assert again.warnings == ()


def test_strict_reprofile_keeps_the_champions_suite(tmp_path: Path, champion_suite: Path) -> None:
    with pytest.raises(ValidationFailed, match="column 'tenure_months': expect_column_values_to_be_between"):
        check(drifted(), tmp_path, champion_suite, reprofile=True, strict=True)
    assert not (tmp_path / "suite_changes.json").exists()


def test_suite_changes_names_added_removed_and_null_shares() -> None:
    def suite(values: list[str], lo: float, hi: float, mostly: float | None) -> dict:
        null = {"column": "plan"} | ({"mostly": mostly} if mostly is not None else {})
        return {"expectations": [
            {"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": ["plan", "age"]}},
            {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "plan", "value_set": values}},
            {"type": "expect_column_values_to_not_be_null", "kwargs": null},
            {"type": "expect_column_values_to_be_between", "kwargs": {"column": "age", "min_value": lo, "max_value": hi}},
        ]}

    changes = suite_changes(suite(["a", "b"], 0, 10, None), suite(["b", "c"], 0, 8, 0.9))
    assert changes.columns["plan"] == {"categories_added": ["c"], "categories_removed": ["a"],
                                       "null_share": {"from": 0.0, "to": 0.1}}
    assert changes.columns["age"]["range"] == {"from": [0, 10], "to": [0, 8], "observed": False, "widened": False}
    assert changes.lines() == ["plan: categories added: c; categories removed: a; allowed null share 0 → 0.1",
                               "age: range narrowed 0…10 → 0…8"]
    assert suite_changes(suite(["a"], 0, 1, None), suite(["a"], 0, 1, None)).empty


def test_a_drift_generation_of_an_mltrainingjob_reprofiles_its_suite() -> None:
    """The k8s trigger sets `retrainToken: drift-<key>`; that generation's run spec re-profiles, others keep the suite."""
    import copy

    import yaml

    from driftloop.operator.render import Owner, render_run_spec
    from driftloop.operator.resource import parse_resource_spec

    from .conftest import REPO

    example = yaml.safe_load((REPO / "examples" / "mltrainingjob.yaml").read_text())["spec"]
    owner = Owner("churn", "ml", "uid", 2)

    def run_spec(**changes: object) -> dict:
        resource = parse_resource_spec(copy.deepcopy(example) | changes, where="ml/churn")
        return yaml.safe_load(render_run_spec(resource, owner))

    assert run_spec(retrainToken="drift-3f2a9c")["validation"]["reprofile"] is True
    assert run_spec(retrainToken="monday")["validation"]["reprofile"] is False
    assert run_spec()["validation"]["reprofile"] is False
