"""The detectors themselves: error rates, power, the corrections, and the report files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftloop.components.columns import ColumnRoles
from driftloop.console import Console
from driftloop.drift.check import DriftRequest, check_drift
from driftloop.drift.detect import DriftParams, correct, detect
from driftloop.errors import DataError


def _table(rng: np.random.Generator, n: int, *, shift: float = 0.0, numeric: int = 3, mix=(0.5, 0.3, 0.2)):
    columns = {f"x{i}": rng.normal(shift if i == 0 else 0.0, 1.0, n) for i in range(numeric)}
    columns["colour"] = rng.choice(["red", "green", "blue"], size=n, p=mix)
    return pd.DataFrame(columns)


def _roles(numeric: int = 3) -> ColumnRoles:
    return ColumnRoles("", [f"x{i}" for i in range(numeric)], ["colour"])


@pytest.mark.parametrize("correction", ["bonferroni", "fdr"])
def test_false_alarm_rate_stays_near_the_configured_level(correction: str) -> None:
    """Same distribution, 300 trials: the share of 'drift' verdicts is about p_val (at most, for Bonferroni)."""
    rng = np.random.default_rng(2024)
    params = DriftParams(p_val=0.1, correction=correction, min_samples=50)
    trials = 300
    alarms = sum(detect(_table(rng, 400), _table(rng, 400), _roles(), params).is_drift for _ in range(trials))
    rate = alarms / trials
    # family-wise rate <= 0.1 for 4 independent tests; 3.5 binomial standard deviations either side
    assert 0.1 - 3.5 * (0.1 * 0.9 / trials) ** 0.5 < rate < 0.1 + 3.5 * (0.1 * 0.9 / trials) ** 0.5, rate


def test_each_single_test_rejects_at_its_level() -> None:
    """Per feature (one test, no correction): KS and Chi-square each reject about 5% of same-distribution pairs."""
    rng = np.random.default_rng(7)
    params = DriftParams(p_val=0.05, min_samples=50)
    trials = 400
    ks = sum(detect(_table(rng, 300, numeric=1), _table(rng, 300, numeric=1), ColumnRoles("", ["x0"], []),
                    params).is_drift for _ in range(trials)) / trials
    chi2 = sum(detect(_table(rng, 300, numeric=1), _table(rng, 300, numeric=1), ColumnRoles("", [], ["colour"]),
                      params).is_drift for _ in range(trials)) / trials
    band = 3.5 * (0.05 * 0.95 / trials) ** 0.5
    assert abs(ks - 0.05) < band and abs(chi2 - 0.05) < band, (ks, chi2)


@pytest.mark.parametrize("correction", ["bonferroni", "fdr"])
def test_small_mean_shift_in_one_of_twenty_features_is_found(correction: str) -> None:
    """0.2 standard deviations in one feature of 20, n = 5,000 each side: found, and only that feature."""
    for seed in (1, 2, 3):
        rng = np.random.default_rng(seed)
        report = detect(_table(rng, 5000, numeric=19), _table(rng, 5000, numeric=19, shift=0.2), _roles(19),
                        DriftParams(correction=correction))
        assert report.is_drift and report.drifted_features == ["x0"], (seed, report.drifted_features)
        x0 = report.features[0]
        assert x0.test == "ks" and x0.p_value < report.threshold and 0.05 < x0.statistic < 0.15
        assert abs(x0.current["mean"] - x0.reference["mean"] - 0.2) < 0.06


def test_category_mix_change_and_unseen_category_are_chi_square_drift() -> None:
    rng = np.random.default_rng(5)
    reference = _table(rng, 2000)
    current = _table(rng, 2000, mix=(0.3, 0.3, 0.4))
    current.loc[:99, "colour"] = "purple"
    report = detect(reference, current, _roles(), DriftParams())
    colour = next(f for f in report.features if f.name == "colour")
    assert colour.test == "chi2" and colour.drifted and report.drifted_features == ["colour"]
    assert colour.current["unseen"] == ["purple"] and colour.reference["top"]["purple"] == 0.0
    assert colour.reference["top"]["red"] == pytest.approx(0.5, abs=0.04)


def test_corrections_differ_as_documented() -> None:
    """Bonferroni bounds every p-value by p_val/K; Benjamini-Hochberg (via alibi-detect's fdr) admits more."""
    p_values = [0.001, 0.008, 0.02, 0.04, 0.5]
    bound, flagged = correct(p_values, DriftParams(correction="bonferroni"))
    assert bound == pytest.approx(0.01) and flagged == [True, True, False, False, False]
    bound, flagged = correct(p_values, DriftParams(correction="fdr"))
    assert bound == pytest.approx(0.03) and flagged == [True, True, True, False, False]
    assert correct([0.2, 0.9], DriftParams(correction="fdr"))[1] == [False, False]


def test_missing_values_and_min_samples() -> None:
    rng = np.random.default_rng(3)
    reference, current = _table(rng, 1000), _table(rng, 1000)
    current.loc[:949, "x1"] = np.nan  # 50 values left: too few to test
    current.loc[:499, "colour"] = None  # half missing: a category of its own, so this is drift
    current.loc[:999, "x2"] = np.nan  # a feed that broke upstream: all missing
    report = detect(reference, current, _roles(), DriftParams(min_samples=100))
    x1 = next(f for f in report.features if f.name == "x1")
    # too few values for KS, but the missing share itself went from 0 to 0.95: that is tested, and drift
    assert x1.tested and x1.test == "missing" and x1.drifted and x1.statistic == pytest.approx(0.95)
    assert "missing share 0 -> 0.95" in x1.note and "values not tested with KS: 50 non-missing" in x1.note
    assert x1.current["missing_share"] == pytest.approx(0.95)
    x2 = next(f for f in report.features if f.name == "x2")
    assert x2.drifted and x2.current == {"rows": 1000, "missing_share": 1.0}
    colour = next(f for f in report.features if f.name == "colour")
    assert colour.drifted and colour.current["missing_share"] == pytest.approx(0.5)
    assert report.drifted_features == ["x1", "x2", "colour"]
    both_empty = detect(reference.assign(x2=np.nan), current, _roles(), DriftParams(min_samples=100))
    x2 = next(f for f in both_empty.features if f.name == "x2")
    assert not x2.tested and x2.p_value is None and "fewer than min_samples=100" in x2.note
    assert both_empty.threshold == pytest.approx(0.05 / 3)  # only the tested features count in the correction


def test_the_missing_share_of_a_number_column_is_tested_at_its_level() -> None:
    """Missing at the same rate on both sides: KS on the values present and Chi-square on the share, combined per
    feature, still reject at most about p_val; a share that grows from 10% to 20% is found, on values that did not
    move at all."""
    rng = np.random.default_rng(11)
    params = DriftParams(p_val=0.05, min_samples=50)
    roles = ColumnRoles("", ["x0"], [])

    def holed(n: int, share: float) -> pd.DataFrame:
        table = _table(rng, n, numeric=1)
        table.loc[rng.random(n) < share, "x0"] = np.nan
        return table

    trials = 300
    alarms = sum(detect(holed(300, 0.1), holed(300, 0.1), roles, params).is_drift for _ in range(trials)) / trials
    assert alarms < 0.05 + 3.5 * (0.05 * 0.95 / trials) ** 0.5, alarms
    report = detect(holed(3000, 0.1), holed(3000, 0.2), roles, params)
    (x0,) = report.features
    assert report.is_drift and x0.test == "ks+missing" and x0.statistic == pytest.approx(0.1, abs=0.03)
    assert "missing share 0.1" in x0.note and "-> 0.2" in x0.note and "its statistic that of the missing share" in x0.note
    # more complete than the reference (a backfilled history, a fixed feed): nothing the model loses, no alarm
    filled = detect(holed(3000, 0.2), holed(3000, 0.0), roles, params)
    assert not filled.is_drift and filled.features[0].test == "ks"


def test_nothing_tested_is_an_error_not_a_calm_verdict(tmp_path: Path) -> None:
    """A reference smaller than min_samples left every feature untested, and the check said "no drift", exit 0."""
    rng = np.random.default_rng(12)
    with pytest.raises(DataError, match=r"^no feature could be tested: 'x0': not tested: 50 non-missing values in "
                                        r"the reference table, fewer than min_samples=100 \(and 3 more\)$"):
        detect(_table(rng, 50), _table(rng, 500, shift=5.0), _roles(), DriftParams())
    _table(rng, 50).to_csv(tmp_path / "ref.csv", index=False)
    _table(rng, 500, shift=5.0).to_csv(tmp_path / "cur.csv", index=False)
    request = DriftRequest(current=str(tmp_path / "cur.csv"), reference=str(tmp_path / "ref.csv"), track=False,
                           out_dir=tmp_path / "out")
    with pytest.raises(DataError, match=r"ref.csv: 50 rows, fewer than min_samples=100; .*--min-samples"):
        check_drift(request, console=Console(quiet=True))


def test_infinite_values_are_a_quality_finding_and_the_report_stays_json(tmp_path: Path) -> None:
    rng = np.random.default_rng(13)
    _table(rng, 500).to_csv(tmp_path / "ref.csv", index=False)
    current = _table(rng, 500)
    current.loc[[3, 9, 30], "x1"] = [np.inf, -np.inf, np.inf]
    current.to_csv(tmp_path / "cur.csv", index=False)
    request = DriftRequest(current=str(tmp_path / "cur.csv"), reference=str(tmp_path / "ref.csv"), track=False,
                           out_dir=tmp_path / "out")
    outcome = check_drift(request, console=Console(quiet=True))
    (finding,) = outcome.report.quality
    assert (finding.column, finding.finding, finding.count, finding.examples) == ("x1", "infinite_values", 3,
                                                                                  ["-inf", "inf"])

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    written = json.loads((outcome.report_dir / "drift.json").read_text(), parse_constant=refuse)
    x1 = next(f for f in written["features"] if f["name"] == "x1")
    assert x1["tested"] and x1["current"]["max"] < 10  # the test and its summary are about the finite values


def test_current_without_a_feature_or_with_text_in_a_number_is_a_clear_error() -> None:
    rng = np.random.default_rng(4)
    reference = _table(rng, 300)
    with pytest.raises(DataError, match="current data lacks feature column 'x2'"):
        detect(reference, reference.drop(columns=["x2"]), _roles(), DriftParams())
    broken = reference.astype({"x1": object})
    broken.loc[7, "x1"] = "n/a"
    with pytest.raises(DataError, match="column 'x1': text in a numeric column: 'n/a' at row 9"):
        detect(reference, broken, _roles(), DriftParams())


def test_numbers_written_as_text_are_read_as_training_reads_them() -> None:
    """A column of "$1,234" is numeric to training (parsed from text) and its reference sample keeps the text: the
    check reads it the same way, or no drift check of such a model could run at all."""
    rng = np.random.default_rng(8)
    prices = rng.normal(2000, 300, 400).round(2)
    as_text = lambda values: [f"${v:,.2f}" for v in values]  # noqa: E731
    reference = pd.DataFrame({"price": as_text(prices), "x0": rng.normal(size=400)})
    roles = ColumnRoles("", ["price", "x0"], [])
    same = detect(reference, reference.sample(frac=1, random_state=1), roles, DriftParams())
    assert not same.is_drift and next(f for f in same.features if f.name == "price").test == "ks"
    doubled = reference.assign(price=as_text(prices * 2))
    assert detect(reference, doubled, roles, DriftParams()).drifted_features == ["price"]
    numbers = reference.assign(price=prices)  # the current table may hold plain numbers: the same values
    assert not detect(reference, numbers, roles, DriftParams()).is_drift


def test_a_boolean_column_is_compared_by_meaning_not_spelling(tmp_path: Path) -> None:
    """The training file says Yes/No, the prediction log what clients sent (JSON true/false): the same rows."""
    from driftloop.table import load_table

    rng = np.random.default_rng(9)
    reference = pd.DataFrame({"paperless": rng.choice(["Yes", "No"], 400), "x0": rng.normal(size=400)})
    log = tmp_path / "predictions.jsonl"
    log.write_text("\n".join(json.dumps({"paperless": v == "Yes", "x0": x})
                             for v, x in zip(reference.paperless, reference.x0, strict=True)) + "\n")
    current = load_table(str(log)).frame
    roles = ColumnRoles("", ["x0"], ["paperless"], boolean=["paperless"])
    report = detect(reference, current, roles, DriftParams())
    paperless = next(f for f in report.features if f.name == "paperless")
    assert not report.is_drift and paperless.p_value == pytest.approx(1.0) and not paperless.current.get("unseen")


def test_a_check_reads_jsonl_prediction_logs_and_writes_json_and_self_contained_html(tmp_path: Path) -> None:
    """`driftloop serve`'s log shape: raw inputs at the top level, reserved `_` keys, one object per line."""
    rng = np.random.default_rng(9)
    _table(rng, 800).to_parquet(tmp_path / "ref.parquet", index=False)
    current = _table(rng, 800, shift=0.5)
    with open(tmp_path / "predictions.jsonl", "w") as log:
        for i, row in enumerate(current.to_dict(orient="records")):
            log.write(json.dumps({**row, "_ts": f"2026-11-23T10:{i % 60:02d}:00Z", "_model": "m", "_version": "3",
                                  "_prediction": [0.2, 0.8], "_latency_ms": 0.1}) + "\n")
    request = DriftRequest(current=str(tmp_path / "predictions.jsonl"), reference=str(tmp_path / "ref.parquet"),
                           track=False, out_dir=tmp_path / "out")
    outcome = check_drift(request, console=Console(quiet=True))
    report, out = outcome.report, outcome.report_dir
    assert [f.name for f in report.features] == ["x0", "x1", "x2", "colour"]  # no `_` keys compared
    assert report.is_drift and report.drifted_features == ["x0"]
    written = json.loads((out / "drift.json").read_text())
    assert written["is_drift"] is True and written["drifted_features"] == ["x0"]
    assert written["features"][0]["reference"]["bin_edges"] and len(written["features"][0]["current"]["histogram"]) == 20
    page = (out / "drift.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "DRIFT in 1 of 4 tested features" in page and "<svg" in page
    for outside in ("<script", "src=", "href=", "@import", "url("):
        assert outside not in page  # nothing to fetch: it opens anywhere as one file
