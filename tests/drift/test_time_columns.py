"""Time in drift checks (issue 12): a date is tested on the calendar features the model sees, and time moving
forward (a date's year, a year column) is reported as a range, never as drift, unless `drift.time_columns` says so.

All in memory or on small CSV files with `--no-track`: detection only, no training run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from driftloop.components.columns import ColumnRoles
from driftloop.console import Console
from driftloop.drift.check import DriftRequest, check_drift
from driftloop.drift.detect import DriftParams, DriftReport, detect
from driftloop.drift.time_columns import year_like
from driftloop.errors import DataError

DATE_PARTS = ["year", "month", "weekday", "dayofyear"]


def _dates(rng: np.random.Generator, start: str, end: str, n: int) -> list[str]:
    days = (pd.Timestamp(end) - pd.Timestamp(start)).days
    return [(pd.Timestamp(start) + pd.Timedelta(days=int(d))).strftime("%Y-%m-%d") for d in rng.integers(0, days, n)]


def _table(rng: np.random.Generator, start: str, end: str, n: int = 600) -> pd.DataFrame:
    return pd.DataFrame({"sold": _dates(rng, start, end, n), "x": rng.normal(size=n)})


ROLES = ColumnRoles("", ["x"], [], datetime={"sold": DATE_PARTS})


def test_new_dates_in_the_same_seasons_are_not_drift_and_their_range_is_reported() -> None:
    """Every current date is unseen (three later years), but months, weekdays and days of year are as before."""
    rng = np.random.default_rng(3)
    report = detect(_table(rng, "2007-01-01", "2009-12-31"), _table(rng, "2010-01-01", "2012-12-31"), ROLES,
                    DriftParams())
    assert not report.is_drift, report.drifted_features
    tested = {f.name: f for f in report.features}
    assert set(tested) == {"x", "sold__month", "sold__weekday", "sold__dayofyear"}  # the year is not tested
    assert tested["sold__month"].test == "chi2" and tested["sold__dayofyear"].test == "ks"
    [sold] = report.time_columns
    assert sold.name == "sold" and sold.kind == "date" and sold.movement == "forward" and sold.extrapolates
    assert sold.note.startswith("reference 2007-01-0") and ", current 2010-01-0" in sold.note
    assert sold.note.endswith("(time moves forward; the model extrapolates in year)"), sold.note
    assert sold.why.startswith("inferred: a date")


def test_a_season_shifted_into_one_month_drifts_on_the_month_feature() -> None:
    """A year of current dates that all fall in March is a season moved; one month of dates is a month's window."""
    rng = np.random.default_rng(4)
    reference = _table(rng, "2007-01-01", "2009-12-31")
    report = detect(reference, _in_march(_table(rng, "2010-03-01", "2010-03-31")), ROLES, DriftParams())
    assert report.is_drift and "sold__month" in report.drifted_features
    assert "x" not in report.drifted_features and "sold__year" not in report.drifted_features
    assert report.time_columns[0].note.startswith("reference 2007-01-0")
    assert "current 2010-01-0" in report.time_columns[0].note
    window = detect(reference, _table(rng, "2010-03-01", "2010-03-31"), ROLES, DriftParams())
    assert not window.is_drift, window.drifted_features
    late = _table(rng, "2010-03-01", "2010-03-31")
    late.loc[0, "sold"] = "2009-12-20"  # a row that arrived late does not stretch the window to two seasons
    assert not detect(reference, late, ROLES, DriftParams()).is_drift


def _in_march(table: pd.DataFrame) -> pd.DataFrame:
    """A year of dates, 2010, of which 4 in 5 fall in March: a season that moved, over a window of a whole year.
    (Two stray rows would not do: one late row does not make a day's window a year.)"""
    table = table.copy()
    year = pd.date_range("2010-01-01", "2010-12-31").strftime("%Y-%m-%d")
    spread = np.random.default_rng(40).choice(year, len(table) // 5)
    table.loc[table.index[:len(spread)], "sold"] = spread
    return table


def _stamps(rng: np.random.Generator, start: str, end: str, n: int, *, night: float = 1.0,
            weekend: float = 1.0) -> pd.DataFrame:
    """Hourly timestamps spread evenly over [start, end), with the hours 0-5 (and Saturdays and Sundays) `night`
    (and `weekend`) times as busy as the rest."""
    hours = pd.date_range(start, end, freq="h", inclusive="left")
    weight = np.where(hours.hour < 6, night, 1.0) * np.where(hours.weekday >= 5, weekend, 1.0)
    picked = rng.choice(hours.to_numpy(), n, p=weight / weight.sum())
    return pd.DataFrame({"at": pd.DatetimeIndex(picked).strftime("%Y-%m-%d %H:%M:%S"), "x": rng.normal(size=n)})


def test_a_window_shorter_than_the_reference_is_not_drift_in_its_calendar_parts() -> None:
    """nannyml's car-loan reference is ten months of hourly timestamps; its own March, or a first week of the
    analysis data, failed month, day of year and weekday (chi2 11,370) and retrained each daily check. Each part
    is now compared over the calendar time both tables span; rows that come at another rate per hour or per
    weekday still drift."""
    rng = np.random.default_rng(6)  # every check is a test at p 0.05: a seed makes the suite's answer one
    roles = ColumnRoles("", ["x"], [], datetime={"at": [*DATE_PARTS, "hour"]}, date_formats={"at": "YYYY-MM-DD"})
    reference = _stamps(rng, "2018-01-01", "2019-01-01", 20000)
    for start, end in (("2018-03-01", "2018-04-01"), ("2019-02-01", "2019-02-11"), ("2019-06-03", "2019-06-04"),
                       ("2019-01-01", "2020-07-01"),  # a month, ten days, one day, a year and a half
                       ("2019-02-05 10:00", "2019-02-06 10:00"), ("2019-02-04 10:00", "2019-02-11 10:00"),
                       ("2019-02-05 06:00", "2019-02-05 12:00")):  # a rolling day and week from 10:00, a morning
        report = detect(reference, _stamps(rng, start, end, 3000), roles, DriftParams())
        assert not report.is_drift, (start, end, report.drifted_features)
        features = {f.name: f for f in report.features}
        assert features["at__hour"].tested and features["at__weekday"].tested, (start, end)
        # under a year, which months and days of the year a window holds is the window's doing: not tested, said so
        seasonal = [features["at__month"], features["at__dayofyear"]]
        if start == "2019-01-01":
            assert all(f.tested for f in seasonal), seasonal
        else:
            assert not any(f.tested for f in seasonal), seasonal
            assert "not every month of a year, so which months they hold is set by the window, not drift" in \
                features["at__month"].note, features["at__month"].note
    nights = detect(reference, _stamps(rng, "2019-02-01", "2019-03-01", 3000, night=2.0), roles, DriftParams())
    assert nights.drifted_features == ["at__hour"]
    weekends = detect(reference, _stamps(rng, "2019-02-01", "2019-02-22", 3000, weekend=2.0), roles, DriftParams())
    # busier weekends are busier days of the year too, in this window; the month and hour stay calm
    assert "at__weekday" in weekends.drifted_features and not {"at__month", "at__hour", "x"} & set(
        weekends.drifted_features)
    ten_days = detect(reference, _stamps(rng, "2019-02-01", "2019-02-11", 3000), roles, DriftParams())
    note = {f.name: f.note for f in ten_days.features}["at__weekday"]  # two Fridays and Saturdays, one of the rest
    assert "; compared over the calendar time both tables span (each hour's rows weighed alike)" in note, note
    later = detect(_stamps(rng, "2018-01-01", "2018-07-01", 4000), _stamps(rng, "2018-05-01", "2018-09-01", 2000),
                   roles, DriftParams())  # its July and August lie beyond the reference: the model extrapolates
    assert not later.is_drift, later.drifted_features
    note = {f.name: f.note for f in later.features}["at__month"]
    assert note.endswith("current row(s) fall in months no reference date is in: the model extrapolates there"), note
    # business days only: which days of a year's February were weekends differs from year to year
    business = _stamps(rng, "2018-01-01", "2019-01-01", 20000)
    business = business[pd.to_datetime(business["at"]).dt.weekday < 5]
    window = _stamps(rng, "2019-02-01", "2019-02-11", 3000)
    window = window[pd.to_datetime(window["at"]).dt.weekday < 5]
    assert not detect(business, window, roles, DriftParams()).is_drift
    # ... and over a year, months hold other shares of business days than of all days (p 1e-4 before)
    year = _stamps(rng, "2019-01-01", "2020-01-01", 20000)
    year = year[pd.to_datetime(year["at"]).dt.weekday < 5]
    assert not detect(business, year, roles, DriftParams()).is_drift


def test_a_weekday_the_calendar_sets_is_not_tested_and_one_that_cycles_is() -> None:
    """vega's cars: each model year as 1 January, so its weekday follows the year: a later window alone is time
    passing, not drift. Monthly figures on the 1st: the same. Billing on varying days, or a yearly event moving
    season, still drift where they move."""
    rng = np.random.default_rng(5)

    def frame(dates: list[str]) -> pd.DataFrame:
        return pd.DataFrame({"sold": dates, "x": rng.normal(size=len(dates))})

    def yearly(first: int, last: int, month_day: str = "01-01") -> pd.DataFrame:
        return frame([f"{y}-{month_day}" for y in rng.integers(first, last + 1, 400)])

    report = detect(yearly(1970, 1982), yearly(1983, 1995), ROLES, DriftParams())
    assert not report.is_drift, report.drifted_features
    features = {f.name: f for f in report.features}
    assert features["sold__weekday"].test == "none" and not features["sold__weekday"].tested
    assert features["sold__weekday"].note.endswith("not tested: every reference date is day 1 of its month: its day "
                                                   "of week follows the calendar, not the data")
    assert features["sold__month"].test == "chi2"  # one value on both sides: tested, and calm
    moved = detect(yearly(1970, 1982), yearly(1983, 1995, "07-01"), ROLES, DriftParams())  # the event moved season
    assert "sold__month" in moved.drifted_features

    def monthly(years: range, days: list[int]) -> pd.DataFrame:
        return frame([f"{rng.choice(years)}-{rng.integers(1, 13):02d}-{rng.choice(days):02d}" for _ in range(400)])

    firsts = {f.name: f for f in detect(monthly(range(2001, 2011), [1]), monthly(range(2011, 2013), [1]), ROLES,
                                        DriftParams()).features}
    assert firsts["sold__weekday"].test == "none" and firsts["sold__month"].test == "chi2"

    def billed(weekend: bool) -> pd.DataFrame:  # one bill a month, on a business day (or, later, a weekend)
        days = pd.date_range("2001-01-01", "2012-12-31")
        days = days[(days.weekday >= 5) == weekend]
        return frame([str(d)[:10] for d in rng.choice(days.to_numpy(), 400)])

    weekends = detect(billed(False), billed(True), ROLES, DriftParams())
    assert "sold__weekday" in weekends.drifted_features


def test_a_day_first_date_column_is_read_in_its_own_format() -> None:
    """A date training read as DD/MM/YYYY is tested in that format: 13/01/2010 is January, not unreadable."""
    rng = np.random.default_rng(6)

    def day_first(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(sold=pd.to_datetime(frame["sold"]).dt.strftime("%d/%m/%Y"))

    roles = ColumnRoles("", ["x"], [], datetime={"sold": DATE_PARTS}, date_formats={"sold": "DD/MM/YYYY"})
    report = detect(day_first(_table(rng, "2007-01-01", "2009-12-31")),
                    day_first(_table(rng, "2010-01-01", "2012-12-31")), roles, DriftParams())
    assert not report.is_drift and not report.quality, (report.drifted_features, report.quality)
    assert report.time_columns[0].note.startswith("reference 2007-01-0"), report.time_columns[0].note
    shifted = detect(day_first(_table(rng, "2007-01-01", "2009-12-31")),
                     day_first(_in_march(_table(rng, "2010-03-01", "2010-03-31"))), roles, DriftParams())
    assert "sold__month" in shifted.drifted_features


def test_unreadable_current_dates_are_a_quality_finding_not_drift() -> None:
    rng = np.random.default_rng(5)
    reference, current = _table(rng, "2007-01-01", "2009-12-31"), _table(rng, "2007-01-01", "2009-12-31")
    current.loc[:29, "sold"] = "11/03/2008"  # 5% the model cannot read: it sees them as missing
    current.loc[30:39, "sold"] = None  # missing is not unreadable
    report = detect(reference, current, ROLES, DriftParams())
    [finding] = report.quality
    assert (finding.column, finding.finding, finding.count, finding.share) == ("sold", "unparseable_dates", 30, 0.05)
    assert finding.examples == ["11/03/2008"] and "not dates the model can read" in finding.note
    assert report.time_columns[0].current["unparseable_share"] == 0.05
    assert report.time_columns[0].current["missing_share"] == pytest.approx(10 / 600, abs=1e-4)
    again = DriftReport.from_json(json.loads(json.dumps(report.to_json())))
    assert again == report  # the JSON document round-trips the time columns and the findings


def test_the_setting_decides_which_columns_are_time() -> None:
    """`drift.time_columns`: [] tests the date's year too; a listed number is reported, not tested."""
    rng = np.random.default_rng(6)
    reference, current = _table(rng, "2007-01-01", "2009-12-31"), _table(rng, "2010-01-01", "2012-12-31")
    every = detect(reference, current, ROLES, DriftParams(time_columns=()))
    assert every.is_drift and every.drifted_features == ["sold__year"] and not every.time_columns
    year = next(f for f in every.features if f.name == "sold__year")
    assert "tested: drift.time_columns leaves it out" in year.note
    current["x"] += 5.0  # a counter that only grows, say
    listed = detect(reference, current, ROLES, DriftParams(time_columns=("x",)))
    assert listed.drifted_features == ["sold__year"]  # the date is no time column now, x is
    [x] = listed.time_columns
    assert (x.name, x.kind, x.why, x.movement) == ("x", "number", "listed in drift.time_columns", "later")
    with pytest.raises(DataError, match="drift.time_columns names column 'sodl'.*did you mean 'sold'"):
        detect(reference, current, ROLES, DriftParams(time_columns=("sodl",)))


@pytest.mark.parametrize(("name", "values", "year"), [
    ("year", [2007, 2008, 2009], True), ("birth_year", [1950.0, np.nan, 1990.0], True), ("ModelYear", [2001], True),
    ("yr_built", [1920, 2005], True), ("Season", [2019, 2020], True),
    ("yearly", [2007], False), ("x", [2007, 2008], False), ("year", [1, 2, 3], False), ("year", [2007.5], False),
])
def test_year_columns_are_known_by_name_and_values(name: str, values: list[float], year: bool) -> None:
    assert bool(year_like(name, np.asarray(values, dtype="float64"))) is year


@pytest.fixture(scope="module")
def penguins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """palmerpenguins' real tables split by year: 2007-2008 is the reference, 2009 the current window."""
    from tests.corpus.tables import TABLES

    folder = tmp_path_factory.mktemp("penguins")
    for name, when in (("penguins", lambda f: f["year"]), ("penguins_raw", lambda f: f["Date Egg"].str[:4].astype(int))):
        frame = TABLES[name].load()
        frame[when(frame) < 2009].to_csv(folder / f"{name}_ref.csv", index=False, na_rep="NA")
        frame[when(frame) == 2009].to_csv(folder / f"{name}_2009.csv", index=False, na_rep="NA")
    return folder


def test_a_year_moving_forward_is_reported_as_time_and_starts_no_retrain(penguins: Path, tmp_path: Path) -> None:
    retrains = []
    request = DriftRequest(current=str(penguins / "penguins_2009.csv"), reference=str(penguins / "penguins_ref.csv"),
                           target="species", track=False, out_dir=tmp_path)
    outcome = check_drift(request, console=Console(quiet=True), on_drift=lambda check, console: retrains.append(1))
    assert outcome.exit_code == 0 and not outcome.report.is_drift and not retrains
    assert "year" not in [f.name for f in outcome.report.features]
    [year] = outcome.data["time_columns"]
    assert year["note"] == "reference 2007..2008, current 2009 (time moves forward; the model extrapolates in year)"
    assert year["why"] == "inferred: integers named like a year, 2007..2008 within 1900..2100"
    written = json.loads((outcome.report_dir / "drift.json").read_text(encoding="utf-8"))
    assert written["time_columns"] == outcome.data["time_columns"]
    page = (outcome.report_dir / "drift.html").read_text(encoding="utf-8")
    assert "<h2>Time columns</h2>" in page and "the model extrapolates in year" in page


def test_the_override_makes_the_year_count(penguins: Path, tmp_path: Path) -> None:
    from driftloop.drift.cli import drift

    args = ["--reference", str(penguins / "penguins_ref.csv"), "--current", str(penguins / "penguins_2009.csv"),
            "--target", "species", "--no-track", "-q", "--out-dir", str(tmp_path), "--json", str(tmp_path / "d.json")]
    result = CliRunner().invoke(drift, [*args, "--no-time-columns"])
    assert result.exit_code == 3, result.output
    report = json.loads((tmp_path / "d.json").read_text(encoding="utf-8"))
    assert report["drifted_features"] == ["year"] and report["time_columns"] == []
    assert report["config"]["time_columns"] == []
    clash = CliRunner().invoke(drift, [*args, "--no-time-columns", "--time-column", "year"])
    assert clash.exit_code == 2 and "contradict" in clash.output


def test_read_options_reach_the_current_and_reference_files(tmp_path: Path) -> None:
    """A column-aligned file (R's write.table, scikit-learn's linnerud) reads with --read sep='\\s+', as predict's."""
    from driftloop.cli import cli

    rng = np.random.default_rng(7)
    for name, shift in (("ref.txt", 0.0), ("cur.txt", 3.0)):
        table = pd.DataFrame({"Weight": rng.normal(180 + shift * 10, 5, 300).round(1),
                              "Pulse": rng.normal(60, 3, 300).round(1)})
        (tmp_path / name).write_text(table.to_string(index=False))  # names and numbers aligned with runs of spaces
    args = ["--reference", str(tmp_path / "ref.txt"), "--current", str(tmp_path / "cur.txt"), "--no-track", "-q",
            "--out-dir", str(tmp_path), "--json", str(tmp_path / "d.json")]
    read = CliRunner().invoke(cli, ["drift", *args, "--read", "sep=\\s+"])
    assert read.exit_code == 3, read.output
    assert json.loads((tmp_path / "d.json").read_text(encoding="utf-8"))["drifted_features"] == ["Weight"]
    bad = CliRunner().invoke(cli, ["drift", *args, "--read", "quote='"])
    assert bad.exit_code == 2 and "--read \"quote='\": expected KEY=VALUE with KEY one of sep" in bad.output


def test_a_real_date_column_reports_its_range(penguins: Path, tmp_path: Path) -> None:
    """penguins_raw's `Date Egg` (ISO text): inferred as a date, its 2009 nests reported as time moving forward."""
    request = DriftRequest(current=str(penguins / "penguins_raw_2009.csv"),
                           reference=str(penguins / "penguins_raw_ref.csv"), target="Species", track=False,
                           out_dir=tmp_path)
    outcome = check_drift(request, console=Console(quiet=True))
    [egg] = outcome.report.time_columns
    assert egg.note == ("reference 2007-11-09..2008-11-25, current 2009-11-09..2009-12-01 "
                        "(time moves forward; the model extrapolates in year)")
    names = [f.name for f in outcome.report.features]
    assert {"Date Egg__month", "Date Egg__weekday", "Date Egg__dayofyear"} <= set(names)
    assert "Date Egg__year" not in names and "Date Egg" not in outcome.report.drifted_features


def test_the_kfp_markdown_and_the_short_summary_name_the_time_columns() -> None:
    from driftloop.drift.summary import outcome_summary
    from driftloop.pipelines.reports import drift_markdown

    rng = np.random.default_rng(7)
    reference, current = _table(rng, "2007-01-01", "2009-12-31"), _table(rng, "2010-01-01", "2012-12-31")
    current.loc[:9, "sold"] = "soon"
    data = detect(reference, current, ROLES, DriftParams()).to_json()
    page = drift_markdown(data | {"sources": {"current": "live.csv"}})
    assert "## Time columns (not drift)\n\n- sold: reference 2007-01-0" in page
    assert "## Data quality\n\n- sold: 10 of 600 current values (1.7%) are not dates" in page
    summary = outcome_summary(data, exit_code=0)
    assert summary["time_columns"] == summary["extrapolates_in"] == ["sold"] and summary["quality_findings"] == 1


@pytest.mark.parametrize(("drift", "message"), [
    ({"time_column": ["year"]}, "drift.time_column: unknown key; did you mean 'time_columns'?"),
    ({"time_columns": "year"}, "drift.time_columns: Input should be a valid list"),
    ({"time_columns": ["year", "year"]}, "lists 'year' twice"),
])
def test_the_setting_is_checked_like_every_spec_key(drift: dict, message: str) -> None:
    from driftloop.errors import InvalidSpec
    from driftloop.spec import validate_spec

    with pytest.raises(InvalidSpec, match=re.escape(message)):
        validate_spec({"data": {"path": "t.csv", "target": "y"}, "drift": drift})
    assert validate_spec({"data": {"path": "t.csv", "target": "y"}, "drift": {"time_columns": []}}).drift.time_columns == []


def test_the_mlflow_drift_run_records_the_time_columns(penguins: Path, tmp_path: Path, mlflow_uri: str) -> None:
    from tests.conftest import registry_for

    request = DriftRequest(current=str(penguins / "penguins_2009.csv"), reference=str(penguins / "penguins_ref.csv"),
                           target="species", tracking_uri=mlflow_uri, out_dir=tmp_path)
    outcome = check_drift(request, console=Console(quiet=True))
    run = registry_for(mlflow_uri).client.get_run(outcome.data["run_id"])
    assert run.data.params["time_columns"] == "inferred" and run.data.tags["driftloop.drift"] == "false"
    assert run.data.metrics["time_columns"] == 1 and run.data.metrics["time_extrapolates.year"] == 1


def test_placeholder_dates_and_a_model_on_a_month_alone_are_checked_without_an_error() -> None:
    """A reference holding a placeholder date (0001-01-01, 9999-12-31: outside pandas' Timestamp range) crashed the
    one-day-of-month check; a model whose only feature is a `YYYY-MM` month, checked on a quarter, exited 1 with "no
    feature could be tested", where the quarter's months are the window's doing: no drift, and the note says why."""
    rng = np.random.default_rng(13)  # tests at p 0.05 (12 drew a weekday at p 0.004 without any placeholder)
    for placeholder in ("0001-01-01", "9999-12-31"):
        reference = _table(rng, "2018-01-01", "2018-12-31")
        reference.loc[0, "sold"] = placeholder
        report = detect(reference, _table(rng, "2018-01-01", "2018-12-31"), ROLES, DriftParams())
        assert not report.is_drift, (placeholder, report.drifted_features)
    # 5% of a month's rows at a placeholder: still a month's window, whose months and days of the year are its own
    month = _table(rng, "2019-03-01", "2019-03-31")
    month.loc[:29, "sold"] = "9999-12-31"
    report = detect(_table(rng, "2018-01-01", "2018-12-31"), month, ROLES, DriftParams())
    features = {f.name: f for f in report.features}
    assert not report.is_drift and not features["sold__month"].tested, report.drifted_features
    assert "the current dates span 30 day(s), not every month of a year" in features["sold__month"].note
    months = ColumnRoles("", [], [], datetime={"at": ["year", "month"]}, date_formats={"at": "YYYY-MM"})
    reference = pd.DataFrame({"at": [f"{y}-{m:02d}" for y in range(2010, 2018) for m in range(1, 13)] * 2})
    quarter = pd.DataFrame({"at": [f"2018-{m:02d}" for m in (1, 2, 3)] * 50})
    report = detect(reference, quarter, months, DriftParams(min_samples=10))
    [month] = report.features
    assert not report.is_drift and not month.tested
    assert month.note.endswith("not tested: the current dates span 3 month(s), not every month of a year, so which "
                               "months they hold is set by the window, not drift"), month.note


def test_one_timestamp_on_every_current_row_is_a_quality_finding() -> None:
    """A feed that stamps each row with its batch's time: the window is one moment, so its calendar parts are not
    tested, and nothing said it. A day's batch of dates without a time is one date by nature: left alone."""
    rng = np.random.default_rng(8)
    roles = ColumnRoles("", ["x"], [], datetime={"at": [*DATE_PARTS, "hour"]}, date_formats={"at": "YYYY-MM-DD"})
    reference = _stamps(rng, "2018-01-01", "2019-01-01", 4000)
    stuck = _stamps(rng, "2019-02-05", "2019-02-06", 300).assign(at="2019-02-05 10:00:00")
    report = detect(reference, stuck, roles, DriftParams())
    [finding] = report.quality
    assert (finding.column, finding.finding, finding.count, finding.examples) == (
        "at", "one_timestamp", 300, ["2019-02-05 10:00:00"])
    assert "a feed that stamps each row with its batch's time, or a stuck clock?" in finding.note
    assert not detect(reference, _stamps(rng, "2019-02-05", "2019-02-06", 300), roles, DriftParams()).quality
    day = _table(rng, "2009-06-01", "2009-06-02", 300)  # dates only: one day's batch
    assert not detect(_table(rng, "2007-01-01", "2009-12-31"), day, ROLES, DriftParams()).quality
