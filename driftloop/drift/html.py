"""The drift report as one self-contained HTML file: inline CSS and SVG, no scripts, no network.

It renders the same dict that is written as `drift.json`, so the two never disagree.
"""

from __future__ import annotations

from html import escape
from typing import Any

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1f2328;max-width:1200px}
h1{font-size:1.5rem;margin:0 0 .3rem}h2{font-size:1.15rem;margin:1.5rem 0 .3rem}
.verdict{display:inline-block;padding:.3rem .8rem;border-radius:4px;font-weight:600;color:#fff}
.drift{background:#c62828}.nodrift{background:#2e7d32}
table{border-collapse:collapse;width:100%;margin-top:1rem;font-size:.9rem}
th,td{border-bottom:1px solid #d0d7de;padding:.4rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}
tr.drifted td:first-child{border-left:4px solid #c62828}
.muted{color:#656d76}.num{font-variant-numeric:tabular-nums;text-align:right}
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem;margin:.8rem 0}
dt{color:#656d76}dd{margin:0}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem;vertical-align:middle}
"""
_REF, _CUR = "#8c959f", "#0969da"


def render_html(data: dict[str, Any], *, title: str) -> str:
    """The report page for a `DriftReport.to_json()` dict (plus optional retrain/run fields)."""
    drifted = data["is_drift"]
    config = data["config"]
    tested = sum(1 for f in data["features"] if f["tested"])
    verdict = (f'<span class="verdict drift">DRIFT in {len(data["drifted_features"])} of {tested} tested '
               f'features</span>' if drifted else '<span class="verdict nodrift">no drift</span>')
    if untested := len(data["features"]) - tested:
        verdict += f' <span class="untested">({untested} not tested)</span>'
    facts = {
        "reference": f'{data.get("sources", {}).get("reference", "")} ({data["reference_rows"]:,} rows)',
        "current": f'{data.get("sources", {}).get("current", "")} ({data["current_rows"]:,} rows)',
        "test": f'{data["detector"]}; p_val {config["p_val"]:g}, {config["correction"]} correction, '
                f'per-feature bound {data["threshold"]:.3g}, min_samples {config["min_samples"]}',
    }
    for key in ("model_name", "champion_version", "run_id", "checked_at"):
        if data.get(key) is not None:
            facts[key.replace("_", " ")] = str(data[key])
    retrain = data.get("retrain")
    if retrain:
        facts["retrain"] = f'{retrain.get("status")}: {retrain.get("reason", "")}'
    rows = "\n".join(_feature_row(f, data["threshold"]) for f in _ordered(data["features"]))
    dl = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{escape(title)}</h1>
{verdict}
<dl>{dl}</dl>
<div class="legend muted">distributions:<span style="background:{_REF}"></span>reference<span
 style="background:{_CUR}"></span>current</div>
<table>
<thead><tr><th>feature</th><th>test</th><th class="num">statistic</th><th class="num">p-value</th><th>drifted</th>
<th>reference</th><th>current</th><th>distribution</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<p class="muted">A feature has drifted when its p-value is below the per-feature bound after the multiple-testing
correction. KS: two-sample Kolmogorov-Smirnov on the non-missing values. Chi-square: contingency test on category
counts, missing values counted as a category.</p>
{_time_columns(data.get("time_columns") or [])}
{_quality(data.get("quality") or [])}
{_suite_changes(retrain)}
</body></html>
"""


def _time_columns(columns: list[dict[str, Any]]) -> str:
    """Columns that only move forward (a date's year, a year column): their ranges, outside the verdict."""
    if not columns:
        return ""
    rows = "".join(f'<tr><td>{escape(c["name"])}</td><td>{escape(c["kind"])}</td><td>{escape(c["note"])}</td>'
                   f'<td class="muted">{escape(c["why"])}</td></tr>' for c in columns)
    return ('<h2>Time columns</h2>\n<p class="muted">Reported as ranges, not tested: time moving forward is not drift, '
            'and does not trigger a retrain (drift.time_columns decides which columns count as time).</p>\n'
            f'<table><thead><tr><th>column</th><th>kind</th><th>range</th><th>why a time column</th></tr></thead>'
            f'<tbody>{rows}</tbody></table>')


def _quality(findings: list[dict[str, Any]]) -> str:
    if not findings:
        return ""
    items = "".join(f'<li><b>{escape(f["column"])}</b>: {escape(f["note"])}</li>' for f in findings)
    return f'<h2>Data quality</h2>\n<ul>{items}</ul>'


def _suite_changes(retrain: dict[str, Any] | None) -> str:
    """The retrain's re-profiled expectation suite against the champion's: what the new contract allows."""
    changes = ((retrain or {}).get("result") or {}).get("suite_changes")
    if changes is None:
        return ""
    rows = "".join(f"<tr><td>{escape(str(column))}</td><td>{escape(str(what))}</td></tr>"
                   for column, what in changes.get("rows") or [])
    body = (f'<table><thead><tr><th>column</th><th>change</th></tr></thead><tbody>{rows}</tbody></table>' if rows
            else '<p>none: the data the retrain trained on fits the champion\'s suite.</p>')
    return (f'<h2>Validation suite changes</h2>\n<p class="muted">The retrain re-profiled its expectation suite from '
            f'the data it trained on; against the champion\'s suite:</p>\n{body}')


def _ordered(features: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drifted first, then by p-value: what a reader should look at comes first."""
    return sorted(features, key=lambda f: (not f["drifted"], f["p_value"] if f["p_value"] is not None else 2.0))


def _feature_row(feature: dict[str, Any], threshold: float) -> str:
    stat = "" if feature["statistic"] is None else f'{feature["statistic"]:.4g}'
    p = "" if feature["p_value"] is None else f'{feature["p_value"]:.3g}'
    verdict = "<b>yes</b>" if feature["drifted"] else ("no" if feature["tested"] else '<span class="muted">-</span>')
    note = f'<div class="muted">{escape(feature["note"])}</div>' if feature.get("note") else ""
    chart = _histogram(feature) if feature["kind"] == "numeric" else _bars(feature)
    return (f'<tr class="{"drifted" if feature["drifted"] else ""}"><td>{escape(feature["name"])}{note}</td>'
            f'<td>{escape(feature["test"])}</td><td class="num">{stat}</td><td class="num">{p}</td><td>{verdict}</td>'
            f'<td>{_summary(feature, "reference")}</td><td>{_summary(feature, "current")}</td><td>{chart}</td></tr>')


def _summary(feature: dict[str, Any], side: str) -> str:
    s = feature[side]
    parts = [f'{s.get("rows", 0):,} rows']
    if s.get("missing_share"):
        parts.append(f'missing {s["missing_share"]:.1%}')
    if feature["kind"] == "numeric" and "mean" in s:
        parts.append(f'mean {s["mean"]:.4g} · std {s["std"]:.4g}')
    elif feature["kind"] == "categorical":
        top = ", ".join(f"{escape(k)} {v:.0%}" for k, v in list(s.get("top", {}).items())[:4])
        parts.append(f'{s.get("categories", 0)} categories: {top}')
        if s.get("unseen_count"):
            parts.append(f'<b>{s["unseen_count"]} not in reference</b>: {escape(", ".join(s["unseen"]))}')
    return "<br>".join(parts)


def _histogram(feature: dict[str, Any]) -> str:
    ref, cur = feature["reference"].get("histogram"), feature["current"].get("histogram")
    if not ref or not cur:
        return ""
    width, height = 220, 60
    peak = max(max(ref), max(cur), 1e-12)
    step = width / len(ref)
    bars = []
    for i, (r, c) in enumerate(zip(ref, cur, strict=True)):
        x = i * step
        for value, color, offset in ((r, _REF, 0.0), (c, _CUR, step / 2)):
            h = height * value / peak
            bars.append(f'<rect x="{x + offset:.1f}" y="{height - h:.1f}" width="{step / 2:.1f}" height="{h:.1f}" '
                        f'fill="{color}"/>')
    edges = feature["reference"].get("bin_edges", [])
    label = f'{edges[0]:.3g} … {edges[-1]:.3g}' if edges else ""
    return (f'<svg width="{width}" height="{height + 14}" role="img" aria-label="histogram">{"".join(bars)}'
            f'<text x="0" y="{height + 12}" font-size="10" fill="#656d76">{escape(label)}</text></svg>')


def _bars(feature: dict[str, Any]) -> str:
    ref, cur = feature["reference"].get("top", {}), feature["current"].get("top", {})
    labels = list(dict.fromkeys([*ref, *cur]))[:8]
    if not labels:
        return ""
    width, row = 220, 12
    parts = []
    for i, label in enumerate(labels):
        y = i * (row + 2)
        for value, color, offset in ((ref.get(label, 0.0), _REF, 0), (cur.get(label, 0.0), _CUR, row / 2)):
            parts.append(f'<rect x="70" y="{y + offset:.1f}" width="{(width - 70) * value:.1f}" height="{row / 2:.1f}" '
                         f'fill="{color}"/>')
        parts.append(f'<text x="0" y="{y + row - 2}" font-size="10">{escape(label[:12])}</text>')
    return f'<svg width="{width}" height="{len(labels) * (row + 2)}" role="img" aria-label="categories">{"".join(parts)}</svg>'
