"""What the KFP UI shows for the evaluate, gate and drift tasks: metrics, a confusion matrix, Markdown and HTML reports."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from driftloop.components.evaluate import Evaluation
    from driftloop.components.gate import Blessing


def publish_evaluation(evaluation: Evaluation, model_path: Path, features_dir: Path, *, metrics: Any,
                       confusion: Any) -> None:
    """Fill the evaluate task's Metrics and ClassificationMetrics outputs."""
    for name, value in evaluation.metrics.items():
        metrics.log_metric(name, float(value))
    for name, value in evaluation.baseline.items():
        metrics.log_metric(f"baseline_{name}", float(value))
    if evaluation.task == "classification":
        categories, matrix = confusion_matrix(model_path, features_dir)
        confusion.log_confusion_matrix(categories, matrix)


def write_evaluation_report(evaluation: Evaluation, blessing: Blessing, path: Path) -> None:
    """The gate task's Markdown: the evaluation it decided on, and every reason."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(evaluation_markdown(evaluation, blessing), encoding="utf-8")


def publish_evaluation_pages(out_dir: Path, *, slices: Any, html: Any) -> None:
    """Fill the evaluate task's slice table (Markdown) and evaluation report (HTML) from what the steps wrote."""
    import shutil

    from driftloop.constants import EVALUATION_REPORT_FILE, SLICES_MARKDOWN_FILE

    for source, output in ((SLICES_MARKDOWN_FILE, slices), (EVALUATION_REPORT_FILE, html)):
        Path(output.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out_dir / source, output.path)


def confusion_matrix(model_path: Path, features_dir: Path) -> tuple[list[str], list[list[int]]]:
    """Rows: true class, columns: predicted class, on the same holdout evaluate scored."""
    import pandas as pd
    from sklearn.metrics import confusion_matrix as sk_confusion

    from driftloop.onnx_model import OnnxModel

    model = OnnxModel(model_path)
    test = pd.read_parquet(features_dir / "test.parquet")
    classes = [str(c) for c in model.classes or []]
    predicted = [str(c) for c in model.predict(test)]
    truth = [str(c) for c in test[model.target].tolist()]
    return classes, sk_confusion(truth, predicted, labels=classes).tolist()


def evaluation_markdown(evaluation: Evaluation, blessing: Blessing) -> str:
    from driftloop.components.baselines import baseline_name

    champion = (evaluation.champion or {}).get("metrics", {})
    version = (evaluation.champion or {}).get("version")
    baseline = f"baseline ({baseline_name(evaluation.baseline_model, evaluation.task)})"
    lines = [f"# Evaluation: gate {'PASSED' if blessing.passed else 'DECLINED'}", "",
             f"{evaluation.rows} holdout rows, task {evaluation.task}.", "",
             f"| metric | candidate | {baseline} | champion{f' v{version}' if version else ''} |",
             "| --- | ---: | ---: | ---: |"]
    for name, value in evaluation.metrics.items():
        lines.append(f"| {name} | {value:.4f} | {_cell(evaluation.baseline.get(name))} | {_cell(champion.get(name))} |")
    lines += ["", "## Gate", ""] + [f"- {reason}" for reason in blessing.reasons]
    return "\n".join(lines) + "\n"


def publish_drift(data: dict[str, Any], report_dir: Path, *, html: Any, markdown: Any, metrics: Any) -> None:
    """Fill the drift task's HTML (the same self-contained report the CLI writes), Markdown and Metrics outputs."""
    import re
    import shutil

    from driftloop.constants import DRIFT_HTML_FILE

    Path(html.path).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(report_dir / DRIFT_HTML_FILE, html.path)
    Path(markdown.path).parent.mkdir(parents=True, exist_ok=True)
    Path(markdown.path).write_text(drift_markdown(data), encoding="utf-8")
    for key, value in (("drift", float(data["is_drift"])), ("drifted_features", float(len(data["drifted_features"]))),
                       ("features", float(len(data["features"]))), ("threshold", float(data["threshold"])),
                       ("current_rows", float(data["current_rows"]))):
        metrics.log_metric(key, value)
    for feature in data["features"]:
        if feature["p_value"] is not None:  # KFP metric names: letters, digits, `_` and `-`
            metrics.log_metric(f"p_value-{re.sub(r'[^A-Za-z0-9_-]', '_', feature['name'])}", float(feature["p_value"]))
    html.metadata.update({"drift": data["is_drift"], "mlflow_run_id": data.get("run_id") or "",
                          "champion_version": data.get("champion_version") or ""})


def drift_markdown(data: dict[str, Any]) -> str:
    drifted = data["drifted_features"]
    tested = sum(1 for f in data["features"] if f["tested"])
    verdict = f"DRIFT in {len(drifted)} of {tested} tested features" if data["is_drift"] else "no drift"
    config = data["config"]
    lines = [f"# Drift: {verdict}", "",
             f"Model {data.get('model_name')} @champion v{data.get('champion_version')}: reference "
             f"{data['reference_rows']} rows, current {data['current_rows']} rows "
             f"({data['sources'].get('current', '')}).", "",
             f"p_val {config['p_val']:g}, {config['correction']} correction, per-feature bound "
             f"{data['threshold']:.3g}, min_samples {config['min_samples']}.", "",
             "| feature | test | statistic | p-value | drifted |", "| --- | --- | ---: | ---: | --- |"]
    for f in sorted(data["features"], key=lambda f: (not f["drifted"], 2 if f["p_value"] is None else f["p_value"])):
        lines.append(f"| {f['name']} | {f['test']} | {_cell(f['statistic'])} | {_p(f['p_value'])} | "
                     f"{'yes' if f['drifted'] else ('no' if f['tested'] else '-')} |")
    if data.get("time_columns"):  # not tested: time moving forward is not drift
        lines += ["", "## Time columns (not drift)", ""]
        lines += [f"- {c['name']}: {c['note']} ({c['why']})" for c in data["time_columns"]]
    if data.get("quality"):
        lines += ["", "## Data quality", ""] + [f"- {q['column']}: {q['note']}" for q in data["quality"]]
    return "\n".join(lines) + "\n"


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
