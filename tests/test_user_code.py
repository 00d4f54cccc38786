"""`train.module`: the user's nn.Module or scikit-learn estimator from one .py file, and each way it can fail.

The two happy paths go through the in-process runner and the real MLflow server, from a spec
file naming the module relative to itself; the failures are one line each, at the train step.
"""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest

from driftloop.components import feature, train, validate
from driftloop.components.columns import ColumnRoles
from driftloop.console import Console
from driftloop.errors import InvalidSpec, UserCodeError
from driftloop.example import customers
from driftloop.runner import run_pipeline
from driftloop.spec import FeatureSpec, TrainSpec, ValidationSpec, load_spec

from .conftest import registry_for

NET = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, n_features: int, n_outputs: int, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_features, width), nn.Tanh(), nn.Linear(width, n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def build(n_features, n_outputs, task, params):
    assert task == "classification"
    return Net(n_features, n_outputs, params["width"])
'''

FOREST = '''
from sklearn.ensemble import RandomForestClassifier


def build(n_features, n_outputs, task, params):
    return RandomForestClassifier(n_estimators=params.get("trees", 10), max_depth=4, random_state=0)
'''


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("user-code")
    table = customers(rows=400, seed=5)
    checked = validate.run(table, source="customers.csv", target="churned", validation=ValidationSpec(),
                           feature=FeatureSpec(), out_dir=out / "validation")
    feature.run(table, source="customers.csv", roles=ColumnRoles.load(checked.roles_path), spec=FeatureSpec(),
                task="auto", out_dir=out / "features")
    return out / "features"


def run_spec(tmp_path: Path, mlflow_uri: str, module: str, params: dict) -> tuple[dict, str]:
    customers(rows=500, seed=9).to_csv(tmp_path / "customers.csv", index=False)
    (tmp_path / "spec.yaml").write_text(json.dumps({
        "data": {"path": "customers.csv", "target": "churned"},
        "train": {"module": module, "params": params, "epochs": 5},
        "evaluate": {"latency_samples": 10}, "gate": {"require_baseline": False},
        "tracking": {"uri": mlflow_uri}, "output": str(tmp_path / "out"),
        "registry": {"model_name": f"user-{tmp_path.name}"}}))
    spec = load_spec(str(tmp_path / "spec.yaml"))
    result = run_pipeline(spec, console=Console(quiet=True, stream=io.StringIO()), deploy=False)
    assert result.status == "completed", result.error
    record = json.loads((tmp_path / "out" / str(result.run_id) / "train" / "train.json").read_text())
    return record, str(result.run_id)


def test_user_torch_module_file_is_trained_by_driftloops_loop(tmp_path: Path, mlflow_uri: str) -> None:
    (tmp_path / "models").mkdir()
    write(tmp_path / "models", "net.py", NET)
    record, run_id = run_spec(tmp_path, mlflow_uri, "models/net.py:build", {"width": 7})
    assert record["model"] == "module" and record["onnx_max_abs_diff"] < 1e-4
    assert 1 <= len(record["history"]) <= 5 and (tmp_path / "out" / run_id / "train" / "checkpoints" / "best.pt").is_file()
    registry = registry_for(mlflow_uri)
    run = registry.client.get_run(run_id)
    assert run.data.params["train.model"] == "module" and run.data.params["train.params.width"] == "7"
    assert run.data.params["train.module"] == f"{(tmp_path / 'models' / 'net.py').resolve()}:build"
    artifacts = [a.path for a in registry.client.list_artifacts(run_id, "code")]
    assert artifacts == ["code/net.py"]
    stored = Path(registry.client.download_artifacts(run_id, "code/net.py", str(tmp_path / "dl")))
    assert stored.read_text() == textwrap.dedent(NET)


def test_user_estimator_file_is_fitted_and_converted(tmp_path: Path, mlflow_uri: str) -> None:
    write(tmp_path, "forest.py", FOREST)
    record, run_id = run_spec(tmp_path, mlflow_uri, "forest.py:build", {"trees": 5})
    assert record["model"] == "module" and record["estimator"] == "RandomForestClassifier"
    assert record["onnx_max_abs_diff"] < 1e-4


def test_the_source_travels_with_the_spec_to_where_the_file_is_not(tmp_path: Path, features: Path) -> None:
    """A KFP task or Job pod gets the spec (with `train.module_source`) but not the user's disk."""
    write(tmp_path, "forest.py", FOREST)
    spec = load_spec(data="x.csv", target="y", overrides=[f"train.module={tmp_path / 'forest.py'}:build"])
    assert spec.train.module_source == textwrap.dedent(FOREST)
    (tmp_path / "forest.py").unlink()
    outcome = train.run(features, spec=spec.train, out_dir=tmp_path / "train")
    assert outcome.model == "module" and (tmp_path / "train" / "code" / "forest.py").read_text() == spec.train.module_source


def test_a_missing_file_is_one_line_when_the_spec_is_loaded(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec, match=r"^command line: train\.module: no file '.*nowhere\.py'; expected PATH\.py"):
        load_spec(data="x.csv", target="y", overrides=[f"train.module={tmp_path / 'nowhere.py'}:build"])
    with pytest.raises(InvalidSpec, match=r"train\.module: expected PATH\.py:FUNCTION or package\.module:FUNCTION"):
        load_spec(data="x.csv", target="y", overrides=["train.module=net.py"])


def fails(features: Path, tmp_path: Path, module: str) -> str:
    with pytest.raises(UserCodeError) as caught:
        train.run(features, spec=TrainSpec(module=module, epochs=2), out_dir=tmp_path / "train")
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_missing_function_names_the_nearest(features: Path, tmp_path: Path) -> None:
    write(tmp_path, "net.py", NET)
    assert fails(features, tmp_path, f"{tmp_path}/net.py:buidl") == \
        f"train.module: {tmp_path}/net.py has no function 'buidl'; did you mean 'build'?"


def test_missing_package_says_it_needs_the_image(features: Path, tmp_path: Path) -> None:
    message = fails(features, tmp_path, "no_such_package.models:build")
    assert message.startswith("train.module: cannot import 'no_such_package.models'") and "--image" in message


def test_wrong_return_type(features: Path, tmp_path: Path) -> None:
    write(tmp_path, "bad.py", "def build(n_features, n_outputs, task, params):\n    return 'a model'\n")
    assert fails(features, tmp_path, f"{tmp_path}/bad.py:build") == \
        f"train.module: {tmp_path}/bad.py:build returned str; expected a torch.nn.Module or a scikit-learn estimator"


def test_output_shape_that_does_not_fit_the_task(features: Path, tmp_path: Path) -> None:
    write(tmp_path, "one.py", "from torch import nn\n\ndef build(n_features, n_outputs, task, params):\n"
                              "    return nn.Linear(n_features, 1)\n")
    assert fails(features, tmp_path, f"{tmp_path}/one.py:build") == (
        "train.module: the module's output for 2 rows is shape [2, 1]; a classification with 2 class scores "
        "(logits) per row needs [2, 2]")


def test_estimator_skl2onnx_cannot_convert_names_the_reason(features: Path, tmp_path: Path) -> None:
    write(tmp_path, "custom.py", '''
        import numpy as np
        from sklearn.base import BaseEstimator, ClassifierMixin


        class Prior(ClassifierMixin, BaseEstimator):
            def fit(self, x, y):
                self.classes_ = np.unique(y)
                self.prior_ = np.bincount(y) / len(y)
                return self

            def predict_proba(self, x):
                return np.tile(self.prior_, (len(x), 1))

            def predict(self, x):
                return self.classes_[self.predict_proba(x).argmax(axis=1)]


        def build(n_features, n_outputs, task, params):
            return Prior()
        ''')
    message = fails(features, tmp_path, f"{tmp_path}/custom.py:build")
    assert message.startswith("train.module: skl2onnx cannot convert Prior: Unable to find a shape calculator")


def test_exception_inside_the_users_function_names_its_line(features: Path, tmp_path: Path) -> None:
    write(tmp_path, "boom.py", "def helper(params):\n    return params['missing']\n\n\n"
                               "def build(n_features, n_outputs, task, params):\n    return helper(params)\n")
    assert fails(features, tmp_path, f"{tmp_path}/boom.py:build") == \
        f"train.module: build() raised KeyError: 'missing' at {tmp_path}/boom.py:2"


def test_an_estimator_whose_predict_proba_raises_is_named_as_the_users(features: Path, tmp_path: Path) -> None:
    """Only `fit` was guarded: a broken `predict_proba` read as driftloop's own internal error."""
    write(tmp_path, "broken.py", "from sklearn.linear_model import LogisticRegression\n\n\n"
                                 "class Broken(LogisticRegression):\n    def predict_proba(self, x):\n"
                                 "        raise ValueError('my predict_proba is broken')\n\n\n"
                                 "def build(n_features, n_outputs, task, params):\n    return Broken()\n")
    assert fails(features, tmp_path, f"{tmp_path}/broken.py:build") == \
        f"train.module: Broken.predict_proba raised ValueError: my predict_proba is broken at {tmp_path}/broken.py:6"


def test_params_survive_kfps_numbers() -> None:
    """KFP hands every number of a struct back as a float; a user's `max_depth=3` must stay an int."""
    spec = TrainSpec(params={"depth": 3.0, "rate": 0.5, "layers": [8.0, 4.0], "inner": {"n": 2.0}})
    assert spec.params == {"depth": 3, "rate": 0.5, "layers": [8, 4], "inner": {"n": 2}}
    assert isinstance(spec.params["depth"], int)


def test_an_mltrainingjob_carries_the_file_text_unfolded() -> None:
    """The CR's hyperparameters are strings read as YAML; the code's line breaks must survive."""
    from driftloop.operator.resource import parse_hyperparameters

    spec = parse_hyperparameters({"module": "net.py:build", "module_source": NET, "params": "{width: 4}"})
    assert spec.module_source == NET and spec.module == "net.py:build" and spec.params == {"width": 4}
