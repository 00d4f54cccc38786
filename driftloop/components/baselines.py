"""The model every candidate must beat on the holdout besides the champion (`gate.baseline`).

`majority` is the naive model (majority class, or the mean). `linear` and `gbm` are real
scikit-learn models fitted on the train split through the very transform the candidate was
trained behind, and scored on the same test rows: a candidate that loses to them is not
worth its training, whatever the champion scored.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.components.columns import ColumnRoles, python_value
from driftloop.constants import TRANSFORM_FILE

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# What each kind is, as the gate's reason names it.
ESTIMATORS = {"linear": {"classification": "LogisticRegression", "regression": "Ridge"},
              "gbm": {"classification": "HistGradientBoostingClassifier",
                      "regression": "HistGradientBoostingRegressor"}}


def baseline_name(kind: str, task: str) -> str:
    """`majority` or `mean`, else the estimator's class name, e.g. `LogisticRegression`."""
    if kind == "majority":
        return "majority" if task == "classification" else "mean"
    return ESTIMATORS[kind][task]


def baseline_output(kind: str, features_dir: Path, test: pd.DataFrame, *, seed: int = 0) -> np.ndarray:
    """Probabilities [N, C] (classes in the feature step's order) or predictions [N] for the test rows."""
    import numpy as np
    import pandas as pd

    from driftloop.components.feature import load_meta

    meta = load_meta(features_dir)
    train = pd.read_parquet(features_dir / "train.parquet")
    y_train = _encoded_target(train[meta["target"]], meta["classes"])
    if kind == "majority":
        return _constant(meta["task"], y_train, len(test), len(meta["classes"] or []))
    x_train, x_test = _design(features_dir, meta, train), _design(features_dir, meta, test)
    estimator = _estimator(kind, meta["task"], seed)
    estimator.fit(x_train, y_train)
    if meta["task"] != "classification":
        return np.asarray(estimator.predict(x_test), dtype=np.float64)
    probabilities = np.zeros((len(test), len(meta["classes"])))
    probabilities[:, estimator.classes_] = estimator.predict_proba(x_test)  # a class absent in train keeps 0
    return probabilities


def _constant(task: str, y_train: np.ndarray, rows: int, n_classes: int) -> np.ndarray:
    import numpy as np

    if task != "classification":
        return np.full(rows, float(y_train.mean()))
    probabilities = np.zeros((rows, n_classes))
    probabilities[:, int(np.bincount(y_train).argmax())] = 1.0
    return probabilities


def _encoded_target(target: pd.Series, classes: list[Any] | None) -> np.ndarray:
    import numpy as np

    if classes is None:
        return target.to_numpy(dtype=np.float64)
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[python_value(v)] for v in target.tolist()])


def _design(features_dir: Path, meta: dict[str, Any], rows: pd.DataFrame) -> np.ndarray:
    """The rows as the candidate's network saw them: the feature step's fitted transform, unchanged."""
    import joblib
    import numpy as np

    from driftloop.components.feature import transform_input

    roles = ColumnRoles.from_json(meta)
    transform = joblib.load(features_dir / TRANSFORM_FILE)
    return np.asarray(transform.transform(transform_input(rows, roles)), dtype=np.float64)


def _estimator(kind: str, task: str, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge

    if kind == "linear":
        return LogisticRegression(max_iter=2000) if task == "classification" else Ridge()
    if kind == "gbm":
        return (HistGradientBoostingClassifier(random_state=seed) if task == "classification"
                else HistGradientBoostingRegressor(random_state=seed))
    raise ValueError(f"unknown baseline {kind!r}")
