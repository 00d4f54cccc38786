"""drift: compare a current table with the reference table, feature by feature (alibi-detect).

KS (`KSDrift`) per numeric feature, Chi-square (`ChiSquareDrift`) per categorical
feature. A date column is tested on what the model sees, its calendar features (month,
weekday and hour by Chi-square, day of year by KS), over the calendar time both tables span
(`driftloop.drift.calendar_time`); its year, and a year column, only move
forward, so they are reported as time ranges (`driftloop.drift.time_columns`), not tested. A number column that is a
calendar part (`month`, `day`, `hour` beside a `year`) is tested only when the current rows hold its every value:
a window's months are the window's. Each feature gets its own detector so missing values can be handled per
column (dropped for KS; their own category for Chi-square), and the multiple-testing
correction is then applied once across every tested feature: Bonferroni (p < p_val/K)
by default, or Benjamini-Hochberg FDR via alibi-detect's own `fdr`.

`detect()` is the pure part over DataFrames and `write_report()` writes its two files;
`driftloop.drift.check` reads the tables and calls them, for the CLI, the KFP drift task
and the CronJob alike: there is one detection path.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from driftloop.canonical import calendar_name, category_text
from driftloop.constants import DRIFT_HTML_FILE, DRIFT_JSON_FILE
from driftloop.dates import ISO, MONTHLY
from driftloop.drift import time_columns as tc
from driftloop.drift.calendar_time import WINDOW_SETS, calendar_part, held_values, part_words
from driftloop.drift.time_columns import QualityFinding, TimeColumn
from driftloop.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from driftloop.components.columns import ColumnRoles  # the roles are given: detection infers nothing
    from driftloop.drift.time_columns import Calendar

TOP_CATEGORIES = 8
HISTOGRAM_BINS = 20
MISSING = "(missing)"
PART_WORDS = {"weekday": "day of week", "dayofyear": "day of year"}


@dataclass(frozen=True)
class DriftParams:
    """How a drift check decides."""

    p_val: float = 0.05
    correction: Literal["bonferroni", "fdr"] = "bonferroni"
    min_samples: int = 100  # non-missing values a feature needs in each table to be tested
    time_columns: tuple[str, ...] | None = None  # reported as ranges, not tested; None: inferred


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's test and the two distributions it compared."""

    name: str
    kind: str  # numeric | categorical
    test: str  # ks | ks+missing | missing | chi2 | none
    tested: bool
    statistic: float | None
    p_value: float | None
    drifted: bool
    reference: dict[str, Any]
    current: dict[str, Any]
    note: str = ""


@dataclass(frozen=True)
class DriftReport:
    """The overall decision and every feature's evidence; alibi's 0/1 is normalised to a bool."""

    is_drift: bool
    threshold: float  # the corrected per-feature p-value bound that was applied
    params: DriftParams
    features: list[FeatureDrift]
    reference_rows: int
    current_rows: int
    detector: str = "alibi-detect KSDrift/ChiSquareDrift per feature"
    sources: dict[str, str] = field(default_factory=dict)
    time_columns: list[TimeColumn] = field(default_factory=list)  # not tested: time moving forward is not drift
    quality: list[QualityFinding] = field(default_factory=list)  # current values the model cannot read

    @property
    def drifted_features(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    def to_json(self) -> dict[str, Any]:
        return {"is_drift": self.is_drift, "drifted_features": self.drifted_features, "threshold": self.threshold,
                "config": asdict(self.params), "detector": self.detector, "reference_rows": self.reference_rows,
                "current_rows": self.current_rows, "sources": self.sources,
                "features": [asdict(f) for f in self.features],
                "time_columns": [asdict(t) for t in self.time_columns], "quality": [asdict(q) for q in self.quality]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DriftReport:
        config = data["config"]
        listed = config.get("time_columns")
        params = DriftParams(**{**config, "time_columns": None if listed is None else tuple(listed)})
        return cls(data["is_drift"], data["threshold"], params,
                   [FeatureDrift(**f) for f in data["features"]], data["reference_rows"], data["current_rows"],
                   data.get("detector", cls.detector), data.get("sources", {}),
                   [TimeColumn(**t) for t in data.get("time_columns") or []],
                   [QualityFinding(**q) for q in data.get("quality") or []])


def detect(reference: pd.DataFrame, current: pd.DataFrame, roles: ColumnRoles, params: DriftParams) -> DriftReport:
    """Test every feature of `roles` in `current` against `reference`; report time columns as ranges.

    Raises:
        DataError: a feature is missing from the current table, a numeric one holds text, or
            `params.time_columns` names a column the model does not take (or one without dates or numbers).
    """
    from driftloop.table import READ_FLAG_HINT, header_hint, padding_hint

    missing = [c for c in roles.features if c not in current.columns]
    if missing and (misread := padding_hint(list(current.columns), missing)
                    or header_hint(list(current.columns), missing, READ_FLAG_HINT)):
        raise DataError(f"current data lacks feature column {missing[0]!r} that the reference has; {misread}")
    if missing:
        raise DataError(f"current data lacks feature column {missing[0]!r} that the reference has (if it is the "
                        f"label, name it with --target; current columns: {', '.join(map(str, current.columns))})")
    numbers: dict[str, np.ndarray | None] = {c: _numbers(reference[c], c) for c in roles.numeric}
    listed = set(params.time_columns or ())
    numbers |= {c: tc.text_numbers(reference[c]) for c in roles.categorical if c in listed or tc.year_named(c)}
    time, left_out = tc.choose(roles, params.time_columns, numbers)
    results: list[FeatureDrift] = []
    times: list[TimeColumn] = []
    quality: list[QualityFinding] = []
    for column in [*roles.numeric, *roles.categorical]:
        if column in time:
            values = numbers[column]
            assert values is not None  # `choose` only picks columns that hold numbers
            cur = (_numbers(current[column], column) if column in roles.numeric
                   else _coerced(current[column]))
            times.append(tc.number_column(column, time[column], values, cur))
            continue
        if column in roles.numeric:
            current_numbers = _numbers(current[column], column)
            reference_numbers = numbers[column]
            assert reference_numbers is not None  # a numeric feature's values are numbers (`_numbers`)
            part = calendar_part(column, reference_numbers)  # `month`, `hour`: which values a window holds is its own
            window = held_values(part, reference_numbers, current_numbers) if part else ""
            result = _numeric(column, reference_numbers, current_numbers, params, window=window)
            if part:
                result = replace(result, note="; ".join(filter(None, [part_words(part), result.note])))
            if (finding := _infinite(column, current_numbers)) is not None:
                quality.append(finding)
        else:
            result = _categorical(column, _as_read(reference[column], column, roles),
                                  _as_read(current[column], column, roles), params)
        results.append(_left_out(result, left_out.get(column)))
    for column in roles.datetime:
        parts = tc.parts_of(roles, column)
        fmt = roles.date_formats.get(column, ISO)
        ref_cal, cur_cal = tc.calendar(reference[column], parts, fmt), tc.calendar(current[column], parts, fmt)
        results += _calendar_features(column, parts, ref_cal, cur_cal, params, tested_year=column not in time,
                                      left_out=left_out.get(column), monthly=fmt == MONTHLY)
        if column in time:
            times.append(tc.date_column(column, time[column], ref_cal, cur_cal))
        for finding in (tc.unreadable_dates(column, current[column], cur_cal),
                        tc.one_timestamp(column, reference[column], current[column], cur_cal, params.min_samples)):
            if finding is not None:
                quality.append(finding)
    tested = [f for f in results if f.tested]
    # "no drift" would be said of nothing, and exit 0; unless all there is to test is what the window sets (a model
    # on a month column alone, checked on a quarter): that is no drift, and each feature's note says why
    if results and not tested and not all(WINDOW_SETS in f.note or tc.CALENDAR_SETS in f.note for f in results):
        first = results[0]
        raise DataError(f"no feature could be tested: {first.name!r}: {first.note}"
                        + (f" (and {len(results) - 1} more)" if len(results) > 1 else ""))
    threshold, drifted = correct([f.p_value for f in tested], params)  # type: ignore[misc]
    flagged = {f.name for f, d in zip(tested, drifted, strict=True) if d}
    features = [FeatureDrift(**{**asdict(f), "drifted": f.name in flagged}) for f in results]
    return DriftReport(bool(flagged), threshold, params, features, len(reference), len(current),
                       time_columns=times, quality=quality)


def _coerced(series: pd.Series) -> np.ndarray:
    """A categorical time column's current values as numbers; text that is not one counts as missing."""
    import pandas as pd

    return pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=float("nan"))


def _calendar_features(column: str, parts: list[str], ref: Calendar, cur: Calendar, params: DriftParams, *,
                       tested_year: bool, left_out: str | None, monthly: bool = False) -> list[FeatureDrift]:
    """The date's calendar features as the model sees them: cyclic ones as counts, day of year (and a year the
    setting does not treat as time) as numbers. The seasonal ones are compared over the same calendar time
    (`calendar_time`): a window's month is set by the dates it spans, which is no drift. Missing and unreadable
    dates are left out of the tests: they are counted in the quality findings instead."""
    import pandas as pd

    from driftloop.drift.calendar_time import Matched, matched

    calendar_only = tc.weekday_set_by_calendar(ref)
    monthly = monthly or bool(calendar_only)  # dates on one day of each month: months are the unit of calendar time
    results = []
    for part in parts:
        if part == tc.MONOTONE_PART and not tested_year:
            continue
        name = calendar_name(column, part)
        if part == "weekday" and calendar_only:
            both = Matched(ref.readable(part), cur.readable(part), f"not tested: {calendar_only}", tested=False)
        elif part == tc.MONOTONE_PART:
            both = Matched(ref.readable(part), cur.readable(part), "")
        else:
            both = matched(part, ref, cur, monthly=monthly)
        if part in tc.CYCLIC_PARTS:
            result = _categorical(name, pd.Series(both.reference.astype("int64")),
                                  pd.Series(both.current.astype("int64")), params)
        else:
            result = _numeric(name, both.reference, both.current, params)
        weighed = both.note
        if not both.tested:  # the two distributions as they are, for the report, but no test and no verdict
            result, weighed = replace(result, test="none", tested=False, statistic=None, p_value=None,
                                      note=both.note), ""
        note = "; ".join(filter(None, [f"{PART_WORDS.get(part, part)} of date column {column!r}, as the model "
                                       "sees it", weighed]))
        results.append(_left_out(replace(result, note=f"{note}; {result.note}" if result.note else note),
                                 left_out if part == tc.MONOTONE_PART else None))
    return results


def _left_out(result: FeatureDrift, inferred: str | None) -> FeatureDrift:
    """A column that would have been a time column, tested because `drift.time_columns` leaves it out: say so."""
    if inferred is None:
        return result
    note = f"tested: drift.time_columns leaves it out (else a time column: {inferred})"
    return replace(result, note=f"{result.note}; {note}" if result.note else note)


def correct(p_values: list[float], params: DriftParams) -> tuple[float, list[bool]]:
    """The per-feature bound after the correction, and which p-values fall under it."""
    import numpy as np

    from driftloop.drift.alibi import detectors

    if not p_values:
        return params.p_val, []
    if params.correction == "bonferroni" or len(p_values) == 1:
        threshold = params.p_val / len(p_values)
    else:
        found, bound = detectors().fdr(np.asarray(p_values, dtype=float), q_val=params.p_val)
        # without a discovery alibi returns every candidate bound; none was met, so the smallest one applies
        threshold = float(bound) if found else float(np.min(bound))
        if not found:
            return threshold, [False] * len(p_values)
        return threshold, [p <= threshold for p in p_values]
    return threshold, [p < threshold for p in p_values]


def _numbers(series: pd.Series, column: str) -> np.ndarray:
    """As training reads a numeric column: numbers written as text ("$1,200", "45%") are numbers here too, or a
    model trained on such a column could never be checked (its stored reference sample holds the raw text)."""
    import pandas as pd

    from driftloop.canonical import as_numbers

    if pd.api.types.is_float_dtype(series.dtype) and not isinstance(series.dtype, pd.api.extensions.ExtensionDtype):
        return series.to_numpy(dtype="float64", copy=False)  # NaN already marks missing; no copy, no isna pass
    return as_numbers(series, column).to_numpy(dtype="float64", na_value=float("nan"))


def _as_read(series: pd.Series, column: str, roles: ColumnRoles) -> pd.Series:
    """A categorical column as the model reads it: a boolean one's spellings ("Yes", true, "1") as 'True'/'False',
    as training and serving read them; the reference holds the training file's spelling, a prediction log the
    client's, and the same rows must not differ by their spelling alone."""
    import pandas as pd

    from driftloop.canonical import boolean_text

    if column not in roles.boolean:
        return series
    return pd.Series([boolean_text(v) for v in series.tolist()], index=series.index, dtype=object)


def _numeric(name: str, ref: np.ndarray, cur: np.ndarray, params: DriftParams, *, window: str = "") -> FeatureDrift:
    """KS on the values present and, where the current table misses more of them, a Chi-square on that share.

    A feed that breaks upstream sends a number column empty: KS sees only what is left (or nothing), so a rise
    in the missing share is tested too, one-sided (data more complete than the reference loses the model
    nothing). Categorical features count missing as a category of their own. One p-value per feature goes to
    the correction across features: the smaller of the two, doubled (Bonferroni within it); the statistic shown
    is the one of the test that gave it. `window`, when given, is why the values are not tested (a calendar part the
    current window does not reach every value of): the missing share still is.
    """
    from driftloop.drift.alibi import detectors

    ref_present, cur_present = _present(ref), _present(cur)
    summaries = _numeric_summaries(ref, ref_present, cur, cur_present)
    missing = _missing_share(ref, cur, params)
    too_few = window or _too_few(len(ref_present), len(cur_present), params)
    if too_few:
        if missing is None:
            return FeatureDrift(name, "numeric", "none", False, None, None, False, *summaries, note=too_few)
        change, p_missing, said = missing
        return FeatureDrift(name, "numeric", "missing", True, change, p_missing, False, *summaries,
                            note=f"{said}; values not tested with KS: {too_few.removeprefix('not tested: ')}")
    # each detector sees one feature: the correction across features is applied once, in `detect`
    result = detectors().KSDrift(ref_present, p_val=params.p_val).predict(cur_present)["data"]
    distance, p_ks = float(result["distance"][0]), float(result["p_val"][0])
    if missing is None:
        return FeatureDrift(name, "numeric", "ks", True, distance, p_ks, False, *summaries)
    change, p_missing, said = missing
    decided = "the missing share" if p_missing < p_ks else "KS"
    return FeatureDrift(name, "numeric", "ks+missing", True, change if p_missing < p_ks else distance,
                        min(1.0, 2 * min(p_ks, p_missing)), False, *summaries,
                        note=f"KS p={p_ks:.3g} (distance {distance:.3g}) on the values present; {said}; the feature's "
                        f"p-value is the smaller, doubled, and its statistic that of {decided}")


def _missing_share(ref: np.ndarray, cur: np.ndarray, params: DriftParams) -> tuple[float, float, str] | None:
    """(rise in the missing share, its one-sided Chi-square p-value, a note); None when the current table misses
    no larger share than the reference, either has too few rows, or both miss every value."""
    import numpy as np
    from scipy.stats import chi2_contingency

    ref_rows, cur_rows = len(ref), len(cur)
    ref_missing, cur_missing = int(np.isnan(ref).sum()), int(np.isnan(cur).sum())
    ref_present, cur_present = ref_rows - ref_missing, cur_rows - cur_missing
    before, after = ref_missing / max(ref_rows, 1), cur_missing / max(cur_rows, 1)
    if after <= before or min(ref_rows, cur_rows) < params.min_samples or not (ref_present or cur_present):
        return None
    # the 2x2 test has one degree of freedom: half its p-value is the one-sided one, for a rise
    p = float(chi2_contingency([[ref_present, ref_missing], [cur_present, cur_missing]]).pvalue) / 2
    return _round(after - before), p, f"missing share {before:.3g} -> {after:.3g} (chi2 p={p:.3g})"


def _infinite(name: str, values: np.ndarray) -> QualityFinding | None:
    """Infinite current values: left out of the test; training refuses them, and so does `driftloop serve`."""
    import numpy as np

    infinite = np.isinf(values)
    count = int(infinite.sum())
    if not count:
        return None
    examples = sorted({str(v) for v in values[infinite].tolist()})
    share = count / len(values)
    return QualityFinding(name, "infinite_values", count, _round(share), examples,
                          f"{count} of {len(values)} current values ({share:.1%}) are infinite "
                          f"({', '.join(examples)}); no model can score them, and the drift test leaves them out")


def _present(values: np.ndarray) -> np.ndarray:
    """The finite values: missing ones are tested by their share, infinities are a data quality finding."""
    import numpy as np

    finite = np.isfinite(values)
    return values if finite.all() else values[finite]


def _numeric_summaries(ref: np.ndarray, ref_present: np.ndarray, cur: np.ndarray,
                       cur_present: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
    import numpy as np

    if len(ref_present):
        low, high = np.quantile(ref_present, [0.005, 0.995]) if len(ref_present) > 200 else (
            ref_present.min(), ref_present.max())
    else:
        low, high = (0.0, 1.0)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    low, high = float(low), float(high)
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)

    def summary(values: np.ndarray, present: np.ndarray) -> dict[str, Any]:
        if not len(present):
            return {"rows": int(len(values)), "missing_share": 1.0}
        # values outside the reference's central 99% land in the end bins so no mass disappears
        # an int bin count with a range takes numpy's uniform-bin fast path (no search per value)
        counts, _ = np.histogram(np.clip(present, low, high), bins=HISTOGRAM_BINS, range=(low, high))
        return {"rows": int(len(values)), "missing_share": _round(1 - len(present) / max(len(values), 1)),
                "mean": _round(float(present.mean())), "std": _round(float(present.std())),
                "min": _round(float(present.min())), "max": _round(float(present.max())),
                "histogram": [_round(c / len(present)) for c in counts.tolist()]}

    ref_summary = summary(ref, ref_present) | {"bin_edges": [_round(e) for e in edges.tolist()]}
    return ref_summary, summary(cur, cur_present)


def _categorical(name: str, ref: pd.Series, cur: pd.Series, params: DriftParams) -> FeatureDrift:
    import numpy as np

    from driftloop.drift.alibi import detectors

    labels, ref_codes, cur_codes = _shared_codes(ref, cur)
    ref_counts = np.bincount(ref_codes, minlength=len(labels))
    cur_counts = np.bincount(cur_codes, minlength=len(labels))
    summaries = _category_summaries(labels, ref_counts, cur_counts)
    too_few = _too_few(len(ref_codes), len(cur_codes), params)
    if too_few:
        return FeatureDrift(name, "categorical", "none", False, None, None, False, *summaries, note=too_few)
    if np.count_nonzero(ref_counts + cur_counts) < 2:
        return FeatureDrift(name, "categorical", "chi2", True, 0.0, 1.0, False, *summaries,
                            note="a single category in both tables")
    detector = detectors().ChiSquareDrift(ref_codes.reshape(-1, 1), p_val=params.p_val)
    result = detector.predict(cur_codes.reshape(-1, 1))["data"]
    return FeatureDrift(name, "categorical", "chi2", True, float(result["distance"][0]), float(result["p_val"][0]),
                        False, *summaries)


def _shared_codes(ref: pd.Series, cur: pd.Series) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Both columns as codes over one label list; code 0 is a missing value, a category of its own.

    Each column is hashed once (`factorize`); only the few distinct values are turned into text
    (as `canonical_frame` does: `category_text`) and merged, so 1, 1.0 and "1" are one category.
    """
    import numpy as np
    import pandas as pd

    ref_codes, ref_uniques = pd.factorize(ref, use_na_sentinel=True)
    cur_codes, cur_uniques = pd.factorize(cur, use_na_sentinel=True)
    text = [category_text(v) for v in ref_uniques] + [category_text(v) for v in cur_uniques]
    merged, labels = pd.factorize(pd.Index(text, dtype=object))
    # unique → label + 1, and the missing sentinel (-1) → 0 via the prepended slot
    ref_map = np.concatenate([[0], merged[:len(ref_uniques)] + 1]).astype(np.int16 if len(labels) < 32000 else np.int32)
    cur_map = np.concatenate([[0], merged[len(ref_uniques):] + 1]).astype(ref_map.dtype)
    return [MISSING, *map(str, labels)], ref_map[ref_codes + 1], cur_map[cur_codes + 1]


def _category_summaries(labels: list[str], ref_counts: np.ndarray,
                        cur_counts: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
    ref_total, cur_total = max(int(ref_counts.sum()), 1), max(int(cur_counts.sum()), 1)
    ref_share, cur_share = ref_counts / ref_total, cur_counts / cur_total
    order = sorted(range(len(labels)), key=lambda i: -(ref_share[i] + cur_share[i]))
    top = [i for i in order if ref_counts[i] or cur_counts[i]][:TOP_CATEGORIES]

    def summary(counts: np.ndarray, share: np.ndarray, total: int) -> dict[str, Any]:
        return {"rows": total, "missing_share": _round(float(share[0])), "categories": int((counts[1:] > 0).sum()),
                "top": {labels[i]: _round(float(share[i])) for i in top}}

    ref_summary = summary(ref_counts, ref_share, ref_total)
    unseen = [labels[i] for i in range(1, len(labels)) if cur_counts[i] and not ref_counts[i]]
    return ref_summary, summary(cur_counts, cur_share, cur_total) | {"unseen": unseen[:TOP_CATEGORIES],
                                                                     "unseen_count": len(unseen)}


def _too_few(ref_n: int, cur_n: int, params: DriftParams) -> str:
    if min(ref_n, cur_n) >= params.min_samples:
        return ""
    return (f"not tested: {min(ref_n, cur_n)} non-missing values in the "
            f"{'reference' if ref_n < cur_n else 'current'} table, fewer than min_samples={params.min_samples}")


def _round(value: float) -> float:
    return value if not math.isfinite(value) else float(f"{value:.6g}")


def feature_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop reserved prediction-log keys (`_ts`, `_model`, `_prediction`, …): they are not inputs."""
    reserved = [c for c in frame.columns if str(c).startswith("_")]
    return frame.drop(columns=reserved) if reserved else frame


def write_report(report: DriftReport, out_dir: Path, *, title: str, extra: dict[str, Any] | None = None) -> None:
    from driftloop.drift.html import render_html

    out_dir.mkdir(parents=True, exist_ok=True)
    data = report.to_json() | (extra or {})
    (out_dir / DRIFT_JSON_FILE).write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    (out_dir / DRIFT_HTML_FILE).write_text(render_html(data, title=title), encoding="utf-8")
