"""The pipelines' parameters: the spec's sections (`driftloop.spec.SECTIONS`), as arguments and as a signature.

Also `--param NAME=JSON`, kept as sugar over `--set`: each key of the JSON object becomes
one `--set NAME.KEY=VALUE`, so the spec has one override language and one set of checks.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from driftloop.errors import InvalidSpec

if TYPE_CHECKING:
    from driftloop.spec import Spec


def section_parameters(names: tuple[str, ...] | None = None) -> list[inspect.Parameter]:
    """Pipeline-function parameters for spec sections: a `dict` per section model, `str` for `output`.

    KFP builds a pipeline's inputs from its function's signature, so the training and
    drift pipelines take theirs from here rather than typing the section names again.
    """
    from pydantic import BaseModel

    from driftloop.spec import SECTIONS, Spec

    parameters = []
    for name in names or SECTIONS:
        annotation = Spec.model_fields[name].annotation
        kind = dict if isinstance(annotation, type) and issubclass(annotation, BaseModel) else str
        parameters.append(inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=kind))
    return parameters


def pipeline_defaults(spec: Spec | None = None) -> dict[str, Any]:
    """One default per pipeline parameter: the spec's values, or the spec model's defaults.

    `data` has no default without a spec (path and target are required).
    """
    from driftloop.spec import Spec

    if spec is not None:
        return pipeline_arguments(spec)
    values: dict[str, Any] = {}
    for name, field in Spec.model_fields.items():
        if not field.is_required():
            default = field.get_default(call_default_factory=True)
            values[name] = default.model_dump(mode="json") if hasattr(default, "model_dump") else default
    return _expressible(values)


def pipeline_arguments(spec: Spec) -> dict[str, Any]:
    """The spec as the pipeline's arguments.

    KFP parameters cannot hold null or non-finite numbers: unset (None) keys are left
    out (the spec model restores them), an unset `output` is the empty string.

    Raises:
        InvalidSpec: a value KFP cannot carry, with the field named.
    """
    return _expressible(spec.model_dump(mode="json"))


def _expressible(values: dict[str, Any]) -> dict[str, Any]:
    import math

    def clean(value: Any, where: str) -> Any:
        if isinstance(value, dict):
            return {k: clean(v, f"{where}.{k}") for k, v in value.items() if v is not None}
        if isinstance(value, list):
            if any(v is None for v in value):
                raise InvalidSpec(f"{where}: a list with null items cannot be a KFP parameter")
            return [clean(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidSpec(f"{where}: {value} cannot be a KFP parameter (JSON numbers are finite)")
        return value

    cleaned = {name: clean(value, name) for name, value in values.items() if value is not None}
    cleaned["output"] = values.get("output") or ""
    return cleaned


def params_as_overrides(params: tuple[str, ...] | list[str]) -> list[str]:
    """Each `--param NAME=JSON` as the `--set` items that say the same: `NAME.KEY=VALUE` per key.

    A section's keys are merged into the spec (as `--set` does); `output` is replaced.

    Raises:
        InvalidSpec: unknown parameter, a value that is not JSON/YAML, or a section given a non-object.
    """
    import yaml

    from driftloop.spec import SECTIONS
    from driftloop.suggest import nearest

    overrides: list[str] = []
    for item in params:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InvalidSpec(f"--param {item!r}: expected NAME=JSON, e.g. train='{{\"epochs\": 30}}'")
        if name not in SECTIONS:
            close = nearest(name, list(SECTIONS), cutoff=0.5)
            hint = f"; did you mean {close!r}?" if close else f"; parameters are: {', '.join(SECTIONS)}"
            raise InvalidSpec(f"--param {name}: unknown pipeline parameter{hint}")
        try:  # JSON first: YAML 1.1 reads JSON's `1e-05` as a string
            value = _json_or_yaml(text)
        except yaml.YAMLError as e:
            raise InvalidSpec(f"--param {name}: not valid JSON/YAML: {str(e).splitlines()[0]}") from None
        if not _is_section(name):
            overrides.append(f"{name}={text}")
            continue
        if not isinstance(value, dict):
            raise InvalidSpec(f"--param {name}: expected a JSON object (got {value!r})")
        overrides += [f"{name}.{key}={_yaml_value(v)}" for key, v in value.items()]
    return overrides


def apply_params(spec: Spec, params: tuple[str, ...] | list[str]) -> Spec:
    """`spec` with each `--param NAME=JSON` applied, as the `--set` items it stands for.

    Raises:
        InvalidSpec: as `params_as_overrides`, or a value the spec rejects; named as `--param`.
    """
    from driftloop.spec import apply_override, validate_spec

    if not params:
        return spec
    raw: dict[str, Any] = spec.model_dump(mode="json")
    for item in params_as_overrides(params):
        try:
            apply_override(raw, item)
        except InvalidSpec as e:
            raise InvalidSpec(str(e).replace("--set ", "--param ", 1)) from None
    return validate_spec(raw, source="--param")


def _json_or_yaml(text: str) -> Any:
    import json

    import yaml

    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return yaml.safe_load(text)


def _yaml_value(value: Any) -> str:
    """`value` as the YAML `--set` reads back to the same value (JSON's `1e-05` would read as a string)."""
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, width=float("inf"), sort_keys=False)
    return text.removesuffix("\n...\n").strip()


def _is_section(name: str) -> bool:
    from pydantic import BaseModel

    from driftloop.spec import Spec

    annotation = Spec.model_fields[name].annotation
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)
