"""The evaluation report's plots, drawn with matplotlib (Agg) from the models' outputs on the holdout.

Names follow MLflow's default evaluator (`roc_curve_plot`, `precision_recall_curve_plot`,
`confusion_matrix`, `calibration_curve_plot`), so a reviewer finds what they expect. Curves of
the candidate, the champion and the baseline share one axis; matrices sit side by side.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

COLOURS = {"candidate": "#0969da", "champion": "#8250df", "baseline": "#8c959f"}
LINES = {"candidate": "-", "champion": "--", "baseline": "-."}  # a champion identical to the candidate stays visible


def draw_all(data: dict[str, np.ndarray], labels: dict[str, str]) -> dict[str, bytes]:
    """PNG bytes by plot name, for the task the arrays are of (`classes` present: classification).

    `data` holds `truth`, `output_<model>` per model (candidate, champion, baseline) and optionally
    `classes`, `train_loss`, `val_loss`; `labels` names each model in legends, e.g. "champion v3".
    """
    import matplotlib

    matplotlib.use("Agg")  # no display, in a pod or a CI runner
    models = {name: data[f"output_{name}"] for name in COLOURS if f"output_{name}" in data}
    plots: dict[str, Any] = {}
    if "classes" in data:
        plots |= _classification(data["truth"], models, [str(c) for c in data["classes"]], labels)
    else:
        plots |= _regression(data["truth"], models, labels)
    if "val_loss" in data and len(data["val_loss"]):
        plots["learning_curve_plot"] = _learning_curve(data["train_loss"], data["val_loss"])
    return {name: _png(figure) for name, figure in plots.items()}


def _png(figure: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _scores(truth: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is positive, score): the positive class for two classes, every (row, class) pair one-vs-rest (micro) above."""
    import numpy as np

    if probabilities.shape[1] == 2:
        return truth == 1, probabilities[:, 1]
    onehot = np.zeros_like(probabilities, dtype=bool)
    known = truth >= 0
    onehot[np.flatnonzero(known), truth[known]] = True
    return onehot.ravel(), probabilities.ravel()


def _classification(truth: np.ndarray, models: dict[str, np.ndarray], classes: list[str],
                    labels: dict[str, str]) -> dict[str, Any]:
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    kind = "" if len(classes) == 2 else " (one-vs-rest, micro-averaged)"
    out: dict[str, Any] = {}
    positive_and_negative = len(set(_scores(truth, next(iter(models.values())))[0].tolist())) == 2
    if positive_and_negative:
        roc, roc_ax = plt.subplots(figsize=(5.5, 4.5))
        pr, pr_ax = plt.subplots(figsize=(5.5, 4.5))
        cal, cal_ax = plt.subplots(figsize=(5.5, 4.5))
        for name, probabilities in models.items():
            positive, score = _scores(truth, probabilities)
            fpr, tpr, _ = roc_curve(positive, score)
            roc_ax.plot(fpr, tpr, LINES[name], color=COLOURS[name], label=f"{labels[name]} (AUC {auc(fpr, tpr):.3f})")
            precision, recall, _ = precision_recall_curve(positive, score)
            pr_ax.plot(recall, precision, LINES[name], color=COLOURS[name],
                       label=f"{labels[name]} (AP {average_precision_score(positive, score):.3f})")
            observed, predicted = calibration_curve(positive, score, n_bins=10, strategy="uniform")
            cal_ax.plot(predicted, observed, "o" + LINES[name], color=COLOURS[name], label=labels[name])
        roc_ax.plot([0, 1], [0, 1], ":", color="#d0d7de")
        cal_ax.plot([0, 1], [0, 1], ":", color="#d0d7de", label="perfectly calibrated")
        _axes(roc_ax, f"ROC curve{kind}", "false positive rate", "true positive rate")
        _axes(pr_ax, f"Precision-recall curve{kind}", "recall", "precision")
        _axes(cal_ax, f"Calibration{kind}", "mean predicted probability", "fraction of positives")
        out |= {"roc_curve_plot": roc, "precision_recall_curve_plot": pr, "calibration_curve_plot": cal}
    out["confusion_matrix"] = _confusion(truth, {k: v for k, v in models.items() if k != "baseline"}, classes,
                                         labels)
    return out


def _confusion(truth: np.ndarray, models: dict[str, np.ndarray], classes: list[str], labels: dict[str, str]) -> Any:
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    figure, axes = plt.subplots(1, len(models), figsize=(4.5 * len(models), 4), squeeze=False)
    for ax, (name, probabilities) in zip(axes[0], models.items(), strict=True):
        ConfusionMatrixDisplay.from_predictions(truth, probabilities.argmax(axis=1), labels=list(range(len(classes))),
                                                display_labels=classes, ax=ax, colorbar=False, cmap="Blues")
        ax.set_title(labels[name])
    figure.suptitle("Confusion matrix (rows: true class)")
    figure.tight_layout()
    return figure


def _regression(truth: np.ndarray, models: dict[str, np.ndarray], labels: dict[str, str]) -> dict[str, Any]:
    import matplotlib.pyplot as plt
    import numpy as np

    shown = {k: v.reshape(-1) for k, v in models.items() if k != "baseline"}
    scatter, axes = plt.subplots(1, len(shown), figsize=(4.5 * len(shown), 4.2), squeeze=False)
    low, high = float(np.min(truth)), float(np.max(truth))
    for ax, (name, predicted) in zip(axes[0], shown.items(), strict=True):
        ax.scatter(truth, predicted, s=8, alpha=0.5, color=COLOURS[name])
        ax.plot([low, high], [low, high], ":", color="#57606a")
        _axes(ax, labels[name], "actual", "predicted", legend=False)
    scatter.suptitle("Predicted vs actual")
    scatter.tight_layout()
    histogram, ax = plt.subplots(figsize=(5.5, 4.2))
    for name, predicted in shown.items():
        ax.hist(predicted - truth, bins=40, alpha=0.5, color=COLOURS[name], label=labels[name])
    ax.axvline(0, color="#57606a", linestyle=":")
    _axes(ax, "Residuals (predicted - actual)", "residual", "rows")
    return {"predicted_vs_actual_plot": scatter, "residuals_histogram_plot": histogram}


def _learning_curve(train_loss: np.ndarray, val_loss: np.ndarray) -> Any:
    import matplotlib.pyplot as plt
    import numpy as np

    figure, ax = plt.subplots(figsize=(5.5, 4.2))
    epochs = np.arange(1, len(val_loss) + 1)
    ax.plot(epochs, train_loss, color=COLOURS["baseline"], label="train loss")
    ax.plot(epochs, val_loss, color=COLOURS["candidate"], label="validation loss")
    _axes(ax, "Learning curve (candidate)", "epoch", "loss")
    return figure


def _axes(ax: Any, title: str, x: str, y: str, *, legend: bool = True) -> None:
    ax.set_title(title)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(loc="best", fontsize="small")
