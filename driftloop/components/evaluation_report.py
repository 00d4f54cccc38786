"""The evaluation report: one self-contained HTML page a reviewer looks at before trusting a gate.

Candidate and champion side by side (plots from `evaluation_plots`, embedded as base64 PNG),
the metrics table, the slice table and every gate reason with its verdict. The PNGs are also
written as files, so the MLflow UI previews them next to the page. Like the drift report it
has inline CSS, no scripts and no network.
"""

from __future__ import annotations

import base64
import json
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.constants import EVALUATION_REPORT_FILE, HOLDOUT_OUTPUTS_FILE

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from driftloop.components.evaluate import Evaluation
    from driftloop.components.gate import Blessing
    from driftloop.onnx_model import OnnxModel

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1f2328;max-width:1200px}
h1{font-size:1.5rem;margin:0 0 .3rem}h2{font-size:1.15rem;margin-top:2rem}
.verdict{display:inline-block;padding:.3rem .8rem;border-radius:4px;font-weight:600;color:#fff}
.passed{background:#2e7d32}.declined{background:#c62828}
table{border-collapse:collapse;margin-top:.6rem;font-size:.9rem}
th,td{border-bottom:1px solid #d0d7de;padding:.35rem .6rem;text-align:left}
th{background:#f6f8fa}.num{font-variant-numeric:tabular-nums;text-align:right}
li.PASS::marker{color:#2e7d32}li.FAIL::marker{color:#c62828}li.FAIL{font-weight:600}
.tag{font-family:monospace;padding:0 .3rem;border-radius:3px;color:#fff;font-size:.8rem}
.tag.PASS{background:#2e7d32}.tag.FAIL{background:#c62828}
figure{display:inline-block;margin:.5rem 1rem .5rem 0;vertical-align:top}
figcaption{color:#656d76;font-size:.85rem}img{max-width:100%}.muted{color:#656d76}
"""
_TITLES = {"roc_curve_plot": "ROC curve", "precision_recall_curve_plot": "Precision-recall curve",
           "calibration_curve_plot": "Calibration", "confusion_matrix": "Confusion matrices",
           "predicted_vs_actual_plot": "Predicted vs actual", "residuals_histogram_plot": "Residuals",
           "learning_curve_plot": "Learning curve"}


def save_report_inputs(out_dir: Path, model_path: Path, candidate: OnnxModel, champion_classes: list[Any] | None,
                       outputs: dict[str, np.ndarray], truth: pd.Series) -> None:
    """What the report draws: truth, each model's outputs on the holdout (the champion's in the candidate's class
    order, `champion_classes`, where it could be put in it), and train's loss per epoch."""
    import numpy as np

    from driftloop.components.columns import python_value

    arrays = {f"output_{name}": value for name, value in outputs.items()}
    if "champion" in outputs and champion_classes != candidate.classes:
        arrays.pop("output_champion")  # another label set: its columns do not line up with the candidate's
    if candidate.task == "classification":
        index = {c: i for i, c in enumerate(candidate.classes or [])}
        arrays["truth"] = np.array([index.get(python_value(v), -1) for v in truth.tolist()])
        arrays["classes"] = np.array([str(c) for c in candidate.classes or []])
    else:
        arrays["truth"] = truth.to_numpy(dtype=np.float64)
    record = model_path.parent / "train.json"  # train writes it next to the model, in every runner
    if record.exists():
        history = json.loads(record.read_text(encoding="utf-8")).get("history") or []
        for key in ("train_loss", "val_loss"):
            arrays[key] = np.array([row.get(key, np.nan) for row in history], dtype=np.float64)
    np.savez(out_dir / HOLDOUT_OUTPUTS_FILE, **arrays)


def write_report(out_dir: Path, evaluation: Evaluation, blessing: Blessing, *, title: str) -> list[Path]:
    """Draw the plots from `holdout_outputs.npz` in `out_dir`, write them and the page; the files written."""
    import numpy as np

    from driftloop.components.baselines import baseline_name
    from driftloop.components.evaluation_plots import draw_all

    inputs = out_dir / HOLDOUT_OUTPUTS_FILE
    data = dict(np.load(inputs)) if inputs.exists() else {}
    version = (evaluation.champion or {}).get("version")
    labels = {"candidate": "candidate", "champion": f"champion v{version}",
              "baseline": f"baseline ({baseline_name(evaluation.baseline_model, evaluation.task)})"}
    plots = draw_all(data, labels) if data else {}
    written = []
    for name, png in plots.items():
        path = out_dir / f"{name}.png"
        path.write_bytes(png)
        written.append(path)
    page = out_dir / EVALUATION_REPORT_FILE
    page.write_text(render_html(evaluation, blessing, plots, title=title), encoding="utf-8")
    return [page, *written]


def render_html(evaluation: Evaluation, blessing: Blessing, plots: dict[str, bytes], *, title: str) -> str:
    """The page: verdict, gate reasons, metrics, plots, slices."""
    verdict = ('<span class="verdict passed">gate PASSED</span>' if blessing.passed
               else '<span class="verdict declined">gate DECLINED</span>')
    reasons = "\n".join(f'<li class="{r.split(" ", 1)[0]}"><span class="tag {r.split(" ", 1)[0]}">'
                        f'{escape(r.split(" ", 1)[0])}</span> {escape(r.split(" ", 1)[1])}</li>'
                        for r in blessing.reasons)
    figures = "\n".join(f'<figure><img alt="{name}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
                        f'<figcaption>{escape(_TITLES.get(name, name))}</figcaption></figure>'
                        for name, png in plots.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{escape(title)}</h1>
{verdict}
<p class="muted">{evaluation.rows:,} holdout rows, task {escape(evaluation.task)}; candidate, champion and baseline
scored on the same rows.</p>
<h2>Gate</h2>
<ul class="reasons">
{reasons}
</ul>
<h2>Metrics</h2>
{_metrics_table(evaluation)}
<h2>Plots</h2>
{figures or '<p class="muted">No holdout outputs were recorded, so nothing is drawn.</p>'}
<h2>Slices</h2>
{_slices_table(evaluation)}
</body></html>
"""


def _metrics_table(evaluation: Evaluation) -> str:
    from driftloop.components.baselines import baseline_name

    champion = (evaluation.champion or {}).get("metrics") or {}
    version = (evaluation.champion or {}).get("version")
    head = (f"<tr><th>metric</th><th>candidate</th><th>champion{f' v{version}' if version else ''}</th>"
            f"<th>baseline ({escape(baseline_name(evaluation.baseline_model, evaluation.task))})</th></tr>")
    rows = "".join(f"<tr><td>{escape(name)}</td>{_num(value)}{_num(champion.get(name))}"
                   f"{_num(evaluation.baseline.get(name))}</tr>" for name, value in evaluation.metrics.items())
    return f"<table><thead>{head}</thead><tbody>{rows}</tbody></table>"


def _slices_table(evaluation: Evaluation) -> str:
    records = evaluation.slices or []
    if not records:
        return '<p class="muted">No slices: name columns in <code>evaluate.slices</code>.</p>'
    names = list(dict.fromkeys(k for r in records for k in r["metrics"]))  # the task's own metric order
    head = "<tr><th>column</th><th>value</th><th>rows</th>" + "".join(
        f"<th>{escape(n)}<br><span class='muted'>candidate / champion</span></th>" for n in names) + "</tr>"
    body = "".join(
        f"<tr><td>{escape(str(r['column']))}</td><td>{escape(str(r['value']))}</td><td class='num'>{r['rows']}</td>"
        + "".join(f"<td class='num'>{_pair(r, n)}</td>" for n in names) + "</tr>" for r in records)
    return (f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"
            "<p class='muted'>Numeric columns are cut into quantile bins of the holdout.</p>")


def _pair(record: dict[str, Any], name: str) -> str:
    ours, theirs = record["metrics"].get(name), record.get("champion_metrics", {}).get(name)
    return f"{_fmt(ours)} / {_fmt(theirs)}"


def _num(value: float | None) -> str:
    return f"<td class='num'>{_fmt(value)}</td>"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
