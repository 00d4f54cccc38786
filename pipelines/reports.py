"""What the KFP UI shows for the evaluate task: metrics, a confusion matrix and a Markdown report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from driftloop.components.evaluate import Evaluation
    from driftloop.components.gate import Blessing


def publish_evaluation(evaluation: Evaluation, blessing: Blessing, model_path: Path, features_dir: Path, *,
                       metrics: Any, confusion: Any, report_path: Path) -> None:
    """Fill the task's Metrics, ClassificationMetrics and Markdown outputs."""
    for name, value in evaluation.metrics.items():
        metrics.log_metric(name, float(value))
    for name, value in evaluation.baseline.items():
        metrics.log_metric(f"baseline_{name}", float(value))
    if evaluation.task == "classification":
        categories, matrix = confusion_matrix(model_path, features_dir)
        confusion.log_confusion_matrix(categories, matrix)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(evaluation_markdown(evaluation, blessing), encoding="utf-8")


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
    champion = (evaluation.champion or {}).get("metrics", {})
    version = (evaluation.champion or {}).get("version")
    lines = [f"# Evaluation: gate {'PASSED' if blessing.passed else 'DECLINED'}", "",
             f"{evaluation.rows} holdout rows, task {evaluation.task}.", "",
             f"| metric | candidate | naive baseline | champion{f' v{version}' if version else ''} |",
             "| --- | ---: | ---: | ---: |"]
    for name, value in evaluation.metrics.items():
        lines.append(f"| {name} | {value:.4f} | {_cell(evaluation.baseline.get(name))} | {_cell(champion.get(name))} |")
    lines += ["", "## Gate", ""] + [f"- {reason}" for reason in blessing.reasons]
    return "\n".join(lines) + "\n"


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
