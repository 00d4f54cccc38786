"""`train.search.space`: which hyperparameters a family searches, and a trial's values applied to a TrainSpec.

Names are dotted paths relative to `train` (`lr`, `gbm.max_iter`, `params.width`), so a trial
is the spec the user would have written with `--set train.<name>=<value>`. The space is checked
when the spec loads (a KFP submit or `kubectl apply` fails before anything runs): unknown
names get a did-you-mean, and every bound and choice is validated by TrainSpec itself, so a
range the family would reject (`dropout` up to 1.5) is one line then rather than a failed trial later.

No import of `driftloop.spec` at run time: spec.py calls in here from its validators.
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from driftloop.suggest import nearest

if TYPE_CHECKING:
    from driftloop.spec import SearchParam, SearchSpec, TrainSpec

# The MLP's knobs; a user nn.Module is trained by the same loop, so it searches the loop's share of them.
MLP_KEYS = ("hidden_sizes", "dropout", "epochs", "batch_size", "lr", "weight_decay", "patience")
LOOP_KEYS = ("epochs", "batch_size", "lr", "weight_decay", "patience")
# train keys a search must not vary: they choose what is searched, or how it is checked, not the fit
_FIXED = ("model", "budget", "module", "module_source", "search", "seed", "device", "onnx_tolerance")


def check_param(param: SearchParam) -> None:
    """A range or choices, never both; a range with low <= high, and low > 0 on a log scale.

    Raises:
        ValueError: one sentence (pydantic prefixes the key's dotted path).
    """
    bounds = (param.low, param.high)
    if param.choices is not None:
        if any(v is not None for v in bounds) or param.log or param.type is not None:
            raise ValueError("give either choices or a range (low, high, log, type), not both")
        if not param.choices:
            raise ValueError("choices is empty; list at least one value")
        return
    if param.low is None or param.high is None:
        raise ValueError("needs low and high (a range) or choices")
    if param.low > param.high:
        raise ValueError(f"low {param.low} > high {param.high}")
    if param.log and param.low <= 0:
        raise ValueError(f"a log scale needs low > 0 (got low {param.low})")
    if param.type == "int" and not all(float(v).is_integer() for v in bounds):
        raise ValueError(f"type int needs integer bounds (got {param.low}, {param.high})")


def is_int(param: SearchParam) -> bool:
    """Sampled as integers: `type: int`, or both bounds written as integers with no `type`."""
    if param.type is not None:
        return param.type == "int"
    return all(isinstance(v, int) and not isinstance(v, bool) for v in (param.low, param.high))


def searchable(model: str, module: str | None, train_model: type[BaseModel]) -> list[str]:
    """The names the family of `model` (or a user `module`) can search; `params.*` is open for a module."""
    common = ["class_weight"]
    if module is not None:
        return ["params.<key>", *LOOP_KEYS, *common]
    if model in ("gbm", "linear"):
        nested = train_model.model_fields[model].annotation
        assert isinstance(nested, type) and issubclass(nested, BaseModel)
        return [f"{model}.{key}" for key in nested.model_fields] + common
    return [*MLP_KEYS, *common]


def check_space(search: SearchSpec, train: dict[str, Any], train_model: type[TrainSpec]) -> None:
    """Every name is one the chosen family searches, and every bound and choice is a value TrainSpec accepts.

    Args:
        train: the TrainSpec fields validated so far (pydantic's `info.data`); `search` is declared last.

    Raises:
        ValueError: `space.NAME: ...`, one line.
    """
    if "model" not in train or "module" not in train:
        return  # an earlier field already failed; pydantic reports that one first
    model, module = train["model"], train["module"]
    if module is None and model == "auto":
        raise ValueError("train.model auto already chooses among the families; search one of them "
                         "(train.model: mlp, gbm or linear)")
    names = searchable(model, module, train_model)
    family = "train.module" if module is not None else f"train.model {model}"
    raw = {key: value.model_dump() if isinstance(value, BaseModel) else copy.deepcopy(value)
           for key, value in train.items()}
    for name, param in search.space.items():
        if not (name in names or (module is not None and name.startswith("params.") and len(name) > 7)):
            raise ValueError(f"space.{name}: {_unknown(name, names, family, module, train_model)}")
        _resolve_type(param, name, train_model)
        if name.startswith("params."):
            continue  # free-form: only the user's function knows what it accepts
        for value in _probes(param):
            try:
                train_model.model_validate(with_values(raw, {name: value}))
            except ValidationError as e:
                reason = e.errors()[0]["msg"].removeprefix("Value error, ")
                raise ValueError(f"space.{name}: {json.dumps(value)} is not a valid {name}: {reason}") from None


def _resolve_type(param: SearchParam, name: str, train_model: type[BaseModel]) -> None:
    """Write down a range's type when the spec loads: the searched key's own (batch_size is an int, lr a float),
    else the bounds' (`params.<key>`).

    Once written, it survives KFP, which carries every number of a struct parameter as a float:
    a range inferred from `{low: 16, high: 128}` in the KFP task would be a float range.
    """
    if param.choices is not None or param.type is not None:
        return
    field = _field_annotation(name, train_model)
    if field in (int, float):
        param.type = "int" if field is int else "float"
    else:
        param.type = "int" if is_int(param) else "float"


def _field_annotation(name: str, train_model: type[BaseModel]) -> Any:
    model: Any = train_model
    for part in name.split("."):
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        model = model.model_fields[part].annotation
    return model


def _unknown(name: str, names: list[str], family: str, module: str | None, train_model: type[BaseModel]) -> str:
    if name.split(".")[0] in _FIXED:
        return f"{name} is fixed for a search, not searched"
    if module is not None and "." not in name and name not in train_model.model_fields:
        # the user's own params are namespaced, as in the spec: train.params.<key>
        return f"not a hyperparameter of {family}; did you mean 'params.{name}'?"
    close = nearest(name, names, cutoff=0.5)
    if close:
        return f"not a hyperparameter of {family}; did you mean {close!r}?"
    return f"not a hyperparameter of {family}; it searches: {', '.join(names)}"


def _probes(param: SearchParam) -> list[Any]:
    """Values that stand for everything the sampler may draw: the bounds, one inner value, or every choice."""
    if param.choices is not None:
        return list(param.choices)
    low, high = param.low, param.high
    assert low is not None and high is not None
    if is_int(param):
        return [int(low), int(high)]
    # a fractional inner value catches a float range over an integer key (epochs: {low: 5.0, high: 20.0})
    return [float(low), float(high), float(low) + (float(high) - float(low)) * 0.37 if high > low else float(low)]


def with_values(raw: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of the raw train mapping with each dotted name set, as `--set train.NAME=VALUE` would."""
    out = copy.deepcopy(raw)
    for name, value in values.items():
        node = out
        *parents, last = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def apply_params(train: TrainSpec, values: dict[str, Any]) -> TrainSpec:
    """A trial's TrainSpec: `train` with `values` set and no search of its own."""
    raw = with_values(train.model_dump(exclude={"search"}), values)
    return type(train).model_validate(raw)
