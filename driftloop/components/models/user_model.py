"""`train.module`'s model trained: what the user's function returns decides how (torch loop or estimator)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.components.models.mlp import train_torch
from driftloop.components.models.sklearn_family import train_estimator
from driftloop.components.models.user_code import (
    call,
    calling_user_code,
    check_estimator,
    check_output_shape,
    is_torch_module,
    load_function,
)
from driftloop.errors import UserCodeError

if TYPE_CHECKING:
    from driftloop.components.models.base import FittedModel, TrainingData
    from driftloop.spec import TrainSpec


def train_user_model(data: TrainingData, *, spec: TrainSpec, output_name: str, code_dir: Path,
                     checkpoint_dir: Path | None, on_epoch: Any = None) -> FittedModel:
    """Call the user's function and train what it returns: with driftloop's loop, or as an estimator.

    Raises:
        UserCodeError: one line for each way the user's code can fail (see the module docstring).
    """
    function = load_function(spec, code_dir)
    _seed(spec.seed)  # the layers (or an estimator without a random_state) take their start from train.seed
    built = call(spec, function, n_features=data.n_features, n_outputs=data.n_outputs, task=data.task)
    if is_torch_module(built):
        check_output_shape(spec, built, data.x_train, n_outputs=data.n_outputs, task=data.task)
        with calling_user_code(spec, f"training {type(built).__name__}"):
            return train_torch(data, spec=spec, output_name=output_name, checkpoint_dir=checkpoint_dir,
                               family="module", build=lambda *_: built, on_epoch=on_epoch)
    if built is None or isinstance(built, (str, int, float, bool, dict, list, tuple)):
        raise UserCodeError(f"train.module: {spec.module} returned {type(built).__name__}; expected a torch.nn.Module "
                            "or a scikit-learn estimator")
    check_estimator(spec, built, data.task)
    return train_estimator(built, data, spec=spec, output_name=output_name, family="module", user_code=True)


def _seed(seed: int) -> None:
    """Seed the generators the user's function may draw from: numpy's, and torch's when their module imported it."""
    import sys

    import numpy as np

    np.random.seed(seed)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)
