"""`--param NAME=JSON`: a pipeline parameter (one spec section, or `output`) set from the command line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from driftloop.errors import InvalidSpec

if TYPE_CHECKING:
    from driftloop.spec import Spec


def apply_params(spec: Spec, params: tuple[str, ...] | list[str]) -> Spec:
    """Merge each `NAME=JSON` into the spec: a section's keys are merged, `output` is replaced.

    Raises:
        InvalidSpec: unknown parameter, value that is not JSON/YAML, or a value the spec rejects.
    """
    import yaml

    from driftloop.spec import Spec, validate_spec
    from driftloop.suggest import nearest

    if not params:
        return spec
    raw: dict[str, Any] = spec.model_dump(mode="json")
    for item in params:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InvalidSpec(f"--param {item!r}: expected NAME=JSON, e.g. train='{{\"epochs\": 30}}'")
        if name not in Spec.model_fields:
            close = nearest(name, list(Spec.model_fields), cutoff=0.5)
            hint = f"; did you mean {close!r}?" if close else f"; parameters are: {', '.join(Spec.model_fields)}"
            raise InvalidSpec(f"--param {name}: unknown pipeline parameter{hint}")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as e:
            raise InvalidSpec(f"--param {name}: not valid JSON/YAML: {str(e).splitlines()[0]}") from None
        if isinstance(raw.get(name), dict):
            if not isinstance(value, dict):
                raise InvalidSpec(f"--param {name}: expected a JSON object (got {value!r})")
            raw[name] = {**raw[name], **value}
        else:
            raw[name] = value
    return validate_spec(raw, source="--param")
