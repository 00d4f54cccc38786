"""The CRD's `x-kubernetes-validations`, evaluated as the API server does, with the `cel` engine
(common-expression-language: the Rust CEL interpreter; cel-python's tree walker took 0.2-0.9 ms a rule,
which made the emulator, not the operator, the bottleneck of bench/operator_scale.py). One difference from
the API server's cel-go: a string's `size()` counts UTF-8 bytes, not code points; the CRD's one `size()` rule
is on `metadata.name`, which is ASCII.

A rule applies where it sits in the schema: `self` is the value there (each item of a list,
each value of a map), `oldSelf` the same value before an update. A rule that names `oldSelf`
is a transition rule and runs only on updates where the old value exists. A value that is
absent is not checked, nor, on an update, one that did not change (the API server's
validation ratcheting; it also keeps status writes from paying for the spec's rules). A failed rule answers as the API server words it:
`spec.dataSource: Invalid value: "object": <message>`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

_ABSENT = object()


@attrs.frozen
class Rule:
    path: tuple[str, ...]  # property names; "*" for every item of a list or value of a map
    rule: str
    message: str
    program: Any
    transition: bool


def compile_rules(schema: dict[str, Any]) -> list[Rule]:
    """Every rule in an openAPIV3Schema, compiled once (a rule that does not compile fails here, as a CRD would)."""
    import cel

    rules = []
    for path, node in _nodes(schema, ()):
        for item in node.get("x-kubernetes-validations") or []:
            program = cel.compile(item["rule"])
            rules.append(Rule(path=path, rule=item["rule"], message=item.get("message") or
                              f"failed rule: {item['rule']}", program=program, transition="oldSelf" in item["rule"]))
    return rules


def _nodes(node: dict[str, Any], path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    yield path, node
    for name, child in (node.get("properties") or {}).items():
        yield from _nodes(child, (*path, name))
    if isinstance(node.get("items"), dict):
        yield from _nodes(node["items"], (*path, "*"))
    if isinstance(node.get("additionalProperties"), dict):
        yield from _nodes(node["additionalProperties"], (*path, "*"))


def violations(rules: list[Rule], new: dict[str, Any], old: dict[str, Any] | None) -> list[str]:
    """What the rules reject in `new` (an update when `old` is given), each as `field: Invalid value: …`."""
    found = []
    for rule in rules:
        if rule.transition and old is None:
            continue
        for where, value in _values(new, rule.path, ()):
            previous = _at(old, where) if old is not None else _ABSENT
            if (rule.transition and previous is _ABSENT) or (previous is not _ABSENT and previous == value):
                continue  # an unchanged value is not judged again (validation ratcheting, Kubernetes >= 1.30)
            activation = {"self": value}
            if previous is not _ABSENT:
                activation["oldSelf"] = previous
            kind = "object" if isinstance(value, dict) else "array" if isinstance(value, list) else value
            try:
                holds = rule.program.execute(activation) is True
            except Exception as error:  # noqa: BLE001 (a missing key, no such overload: TypeError, ValueError …)
                # rejected, as the API server words an evaluation error (apiextensions-apiserver, cel/validation.go)
                said = f"no such key: {error.args[0]}" if isinstance(error, KeyError) and error.args else error
                found.append(f'{".".join(where)}: Invalid value: "{kind}": {said} evaluating rule: {rule.rule}')
                continue
            if not holds:
                found.append(f'{".".join(where)}: Invalid value: "{kind}": {rule.message}')
    return found


def _values(value: Any, path: tuple[str, ...], where: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    if not path:
        yield where, value
        return
    head, rest = path[0], path[1:]
    if head == "*":
        items = enumerate(value) if isinstance(value, list) else value.items() if isinstance(value, dict) else ()
        for key, child in items:
            yield from _values(child, rest, (*where, f"[{key}]" if isinstance(value, list) else str(key)))
    elif isinstance(value, dict) and head in value:
        yield from _values(value[head], rest, (*where, head))


def _at(value: Any, where: tuple[str, ...]) -> Any:
    for step in where:
        if isinstance(value, list) and step.startswith("["):
            index = int(step[1:-1])
            value = value[index] if index < len(value) else _ABSENT
        elif isinstance(value, dict) and step in value:
            value = value[step]
        else:
            return _ABSENT
    return value
