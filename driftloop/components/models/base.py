"""What the families share: the prepared arrays in, a `FittedModel` out, one validation score."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TrainingData:
    """The train and validation splits after the fitted transform, as float32 matrices.

    Classification targets are class indices; regression targets are in target units
    (`y_*`), and standardised for the MLP (`y_*_std`, with `y_mean`, `y_std`).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    task: str
    n_outputs: int
    y_mean: float = 0.0
    y_std: float = 1.0

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def classification(self) -> bool:
        return self.task == "classification"

    def standardised(self, y: np.ndarray) -> np.ndarray:
        return ((y - self.y_mean) / self.y_std).astype(np.float32)


@dataclass
class FittedModel:
    """One fitted family: its ONNX graph and what the framework itself predicts on the validation rows."""

    family: str
    graph: Any  # onnx.ModelProto: features -> probabilities | prediction
    served_val: np.ndarray  # probabilities [N, C] or predictions [N, 1], in target units
    val_loss: float  # the family's own validation loss (the MLP's early-stopping loss)
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    epochs_run: int = 1
    stopped_early: bool = False
    device: str = "cpu"
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)  # family-specific, for train.json


def score_name(task: str) -> str:
    """The validation metric `auto` ranks candidates by: lower is better for both."""
    return "log_loss" if task == "classification" else "rmse"


def validation_score(data: TrainingData, served_val: np.ndarray) -> float:
    """Log loss of the probabilities (classification) or RMSE in target units (regression), on validation.

    Log loss, not accuracy: it ranks on the probabilities every family serves, and does not
    tie on small validation splits the way a thresholded metric does.
    """
    if data.classification:
        rows = np.arange(len(data.y_val))
        picked = np.clip(served_val[rows, data.y_val.astype(int)], 1e-15, 1.0)
        return float(-np.mean(np.log(picked)))
    error = served_val.reshape(-1) - data.y_val.reshape(-1)
    return float(math.sqrt(np.mean(error.astype(np.float64) ** 2)))


def balanced_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """scikit-learn's `class_weight="balanced"`: n_rows / (n_classes * rows of the class); 0 rows weigh 1."""
    counts = np.bincount(y.astype(int), minlength=n_classes).astype(np.float64)
    weights = np.ones(n_classes)
    present = counts > 0
    weights[present] = len(y) / (n_classes * counts[present])
    return weights
