"""The scikit-learn families: `gbm` (HistGradientBoosting), `linear` (logistic / ridge), and user estimators.

The estimator is fitted on the transformed train split, converted with skl2onnx, and its
own `predict_proba` / `predict` on the validation rows is what the ONNX file is checked against.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from driftloop.components.models.base import FittedModel, TrainingData, balanced_weights
from driftloop.errors import UserCodeError

if TYPE_CHECKING:
    from driftloop.spec import TrainSpec


def gbm_estimator(spec: TrainSpec, task: str) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    params = spec.gbm.model_dump() | {"random_state": spec.seed}
    if task == "classification":
        return HistGradientBoostingClassifier(**params, class_weight=_class_weight(spec))
    return HistGradientBoostingRegressor(**params)


def linear_estimator(spec: TrainSpec, task: str) -> Any:
    from sklearn.linear_model import LogisticRegression, Ridge

    if task == "classification":
        return LogisticRegression(C=spec.linear.C, max_iter=spec.linear.max_iter, class_weight=_class_weight(spec))
    return Ridge(alpha=spec.linear.alpha)


def family_params(spec: TrainSpec, family: str, task: str) -> dict[str, Any]:
    """The hyperparameters a built-in family uses, as MLflow params (`train.gbm.max_iter`, ...)."""
    if family == "gbm":
        return {f"train.gbm.{k}": v for k, v in spec.gbm.model_dump().items()}
    if family == "linear":
        keys = ("C", "max_iter") if task == "classification" else ("alpha",)
        return {f"train.linear.{k}": getattr(spec.linear, k) for k in keys}
    return {f"train.{k}": getattr(spec, k) for k in ("hidden_sizes", "dropout", "epochs", "batch_size", "lr",
                                                      "weight_decay", "patience")}


def _class_weight(spec: TrainSpec) -> str | None:
    return "balanced" if spec.class_weight == "balanced" else None


def train_estimator(estimator: Any, data: TrainingData, *, spec: TrainSpec, output_name: str, family: str,
                    user_code: bool = False) -> FittedModel:
    """Fit `estimator`, predict the validation rows with it, and convert it to ONNX.

    A user estimator under `class_weight: balanced` gets per-row weights, when its `fit` takes them.

    Raises:
        UserCodeError: (user estimators) `fit` failed, or skl2onnx cannot convert the estimator.
    """
    from driftloop.onnx_model import estimator_to_onnx

    started = time.perf_counter()
    fit_kwargs: dict[str, Any] = {}
    if user_code and data.classification and spec.class_weight == "balanced" and _takes_sample_weight(estimator):
        fit_kwargs["sample_weight"] = balanced_weights(data.y_train, data.n_outputs)[data.y_train.astype(int)]
    def guarded(method: str) -> Any:  # the user's estimator's failures are named as theirs, with their line
        if not user_code:
            return contextlib.nullcontext()
        from driftloop.components.models.user_code import calling_user_code

        return calling_user_code(spec, f"{type(estimator).__name__}.{method}")

    with guarded("fit"):
        estimator.fit(data.x_train, data.y_train, **fit_kwargs)
    seconds = time.perf_counter() - started
    _float32_thresholds(estimator)
    if data.classification:
        with guarded("predict_proba"):
            served_val = estimator.predict_proba(data.x_val)
        if served_val.shape[1] != data.n_outputs:
            raise UserCodeError(f"train.module: {type(estimator).__name__} predicts {served_val.shape[1]} classes; "
                                f"the train split has {data.n_outputs}")
    else:
        with guarded("predict"):
            served_val = estimator.predict(data.x_val).reshape(-1, 1)
    try:
        graph = estimator_to_onnx(estimator, data.n_features, output_name)
    except Exception as e:  # skl2onnx raises many types; its message is the reason
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserCodeError(f"train.module: skl2onnx cannot convert {type(estimator).__name__}: {reason}") from None
    return FittedModel(family=family, graph=graph, served_val=served_val, val_loss=_own_loss(data, served_val),
                       epochs_run=_iterations(estimator),
                       seconds=seconds, details={"estimator": type(estimator).__name__})


def _own_loss(data: TrainingData, served_val: Any) -> float:
    """The MLP's validation loss, for a comparable `best_val_loss`: cross-entropy, or MSE on the standardised target."""
    import numpy as np

    from driftloop.components.models.base import validation_score

    if data.classification:
        return validation_score(data, served_val)
    return float(np.mean((data.standardised(served_val.reshape(-1)) - data.standardised(data.y_val)) ** 2))


def _float32_thresholds(estimator: Any) -> None:
    """Round HistGradientBoosting's split thresholds down to float32, which ONNX's tree ensemble stores.

    A threshold is a float64 midpoint between two float32 inputs; stored as float32 it may round up
    onto the larger one and send that row the other way (a regressor's output moved by 5 on the
    diabetes table). Every input is a float32, so `x <= t` and `x <= the largest float32 <= t` agree
    on all of them: rounded down, scikit-learn predicts exactly as before, and ONNX agrees with it.
    """
    import numpy as np

    for trees in getattr(estimator, "_predictors", None) or []:
        for tree in trees:
            thresholds = tree.nodes["num_threshold"]
            down = thresholds.astype(np.float32)
            above = down.astype(np.float64) > thresholds
            down[above] = np.nextafter(down[above], np.float32(-np.inf))
            tree.nodes["num_threshold"] = down.astype(np.float64)


def _iterations(estimator: Any) -> int:
    """Boosting iterations or solver iterations, where the estimator reports them; else 1."""
    import numpy as np

    n_iter = getattr(estimator, "n_iter_", None)
    return int(np.max(n_iter)) if n_iter is not None else 1


def _takes_sample_weight(estimator: Any) -> bool:
    import inspect

    try:
        return "sample_weight" in inspect.signature(estimator.fit).parameters
    except (TypeError, ValueError):
        return False
