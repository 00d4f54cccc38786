"""The CustomResourceDefinition, generated from the typed resource model.

`python -m driftloop.operator.crd` rewrites `crds/mltrainingjob.yaml`; a test checks the
committed file equals a fresh generation, so the schema never drifts from the model.

Pydantic emits JSON Schema; Kubernetes wants a *structural* OpenAPI v3 schema: no
`$ref`, no `anyOf` over types, no `title`, boolean `exclusiveMinimum`. Unknown fields are
pruned by the API server and rejected by `kubectl`'s strict field validation, so the
schema needs no `additionalProperties: false` (which structural schemas forbid).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from driftloop.operator import constants as k
from driftloop.operator.resource import HYPERPARAMETERS, MLTrainingJobSpec, MLTrainingJobStatus

CRD_PATH = Path("crds") / "mltrainingjob.yaml"

PRINTER_COLUMNS = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Model", "type": "string", "jsonPath": ".status.modelName"},
    {"name": "Version", "type": "string", "jsonPath": ".status.modelVersion"},
    {"name": "Gate", "type": "string", "jsonPath": ".status.gate"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]

# Rules the structural schema cannot say; the API server evaluates them (CEL, Kubernetes >= 1.25).
# A rule on `oldSelf` is a transition rule: it runs on updates only.
_CEL = {
    "mlflow": [{"rule": "has(self.modelName) == has(oldSelf.modelName)"
                        " && (!has(self.modelName) || self.modelName == oldSelf.modelName)",
                "message": "modelName is immutable: its versions, champion and drift reference belong to one "
                           "model; create a new MLTrainingJob for another"}],
    "dataSource": [{"rule": "has(self.uri) != (has(self.s3Bucket) && has(self.path))",
                    "message": "give either uri, or both s3Bucket and path"},
                   {"rule": "has(self.s3Bucket) == has(self.path)", "message": "s3Bucket and path go together"}],
    "hyperparameters": [{"rule": "self.all(k, k in [" + ", ".join(f"'{h}'" for h in HYPERPARAMETERS) + "])",
                         "message": f"unknown hyperparameter; valid: {', '.join(HYPERPARAMETERS)}"}],
}


# Rules on the whole object: the name labels the Job, its pods and (workers > 1) names their Service and DNS
# subdomain, so it must fit what those take; refused at `kubectl apply`, not by the Job's create later.
_ROOT_CEL = [
    {"rule": "self.metadata.name.size() <= 63",
     "message": "metadata.name: at most 63 characters: it is the value of the driftloop.io/mltrainingjob label "
                "on the training Job and its pods"},
    {"rule": "!has(self.spec.workers) || self.spec.workers <= 1"
             ' || !self.metadata.name.matches("^[0-9]|[.]")',  # a name is a DNS subdomain already: no dot, no digit first
     "message": "metadata.name: with workers > 1, a DNS label (lowercase letters, digits and '-', starting with "
                "a letter, no '.'): it names the Service that gives the pods their DNS names"},
]


# Upper bounds for what the model leaves open. The API server estimates a CEL rule's worst-case
# cost from the sizes the schema allows; an unbounded string, list or map makes that estimate
# infinite and the CRD is refused. Generous enough for any real value.
MAX_STRING = 4096
MAX_ENTRIES = 64


def bounded(node: dict[str, Any]) -> dict[str, Any]:
    """`node` with a maxLength on every string, maxItems on every list, maxProperties on every map."""
    node = dict(node)
    if node.get("type") == "string" and "maxLength" not in node and "enum" not in node \
            and node.get("format") != "date-time":
        node["maxLength"] = MAX_STRING
    if node.get("type") == "array":
        node.setdefault("maxItems", MAX_ENTRIES)
        node["items"] = bounded(node["items"])
    if isinstance(node.get("additionalProperties"), dict):
        node.setdefault("maxProperties", MAX_ENTRIES)
        node["additionalProperties"] = bounded(node["additionalProperties"])
    if "properties" in node:
        node["properties"] = {name: bounded(child) for name, child in node["properties"].items()}
    return node


def structural(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """One pydantic JSON-Schema node as a structural OpenAPI v3 node."""
    if "$ref" in schema:
        return structural(defs[schema["$ref"].rsplit("/", 1)[-1]] | {k_: v for k_, v in schema.items() if k_ != "$ref"},
                          defs)
    if "anyOf" in schema:  # Optional[X] is X, not required; pydantic spells it anyOf [X, null]
        kinds = [s for s in schema["anyOf"] if s.get("type") != "null"]
        if len(kinds) != 1:
            raise ValueError(f"cannot express {schema} structurally")
        rest = {k_: v for k_, v in schema.items() if k_ not in ("anyOf", "default")}
        node = structural(kinds[0] | rest, defs)
        if schema.get("default") is not None:
            node["default"] = schema["default"]
        return node
    out: dict[str, Any] = {}
    if "description" in schema:
        out["description"] = " ".join(schema["description"].split())
    if "const" in schema:
        out["enum"] = [schema["const"]]
    for key in ("type", "enum", "pattern", "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems",
                "minProperties", "maxProperties", "format"):
        if key in schema:
            out[key] = schema[key]
    out |= {key: value for key, value in schema.items() if key.startswith("x-kubernetes-")}  # e.g. a free-form field
    for key in ("exclusiveMinimum", "exclusiveMaximum"):
        if key in schema:
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = schema[key]
            out[key] = True
    if "const" in schema and "type" not in out:
        out["type"] = "string"
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if schema.get("type") == "object" or "properties" in schema:
        out["type"] = "object"
        if "properties" in schema:
            out["properties"] = {name: structural(node, defs) for name, node in schema["properties"].items()}
            required = schema.get("required")
            if required:
                out["required"] = list(required)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            out["additionalProperties"] = structural(extra, defs)
    if schema.get("type") == "array":
        out["items"] = structural(schema["items"], defs)
    if "default" in schema and schema["default"] not in ({}, []) and not isinstance(schema["default"], dict):
        out["default"] = schema["default"]
    return out


def _schema_of(model: type) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    node = structural(raw, raw.get("$defs", {}))
    node.pop("description", None)
    return node


def render_crd() -> dict[str, Any]:
    spec = bounded(_schema_of(MLTrainingJobSpec))
    for field, rules in _CEL.items():
        spec["properties"][field]["x-kubernetes-validations"] = rules
    status = _schema_of(MLTrainingJobStatus)
    status["properties"]["conditions"]["x-kubernetes-list-type"] = "map"
    status["properties"]["conditions"]["x-kubernetes-list-map-keys"] = ["type"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": k.CRD_NAME},
        "spec": {
            "group": k.GROUP,
            "scope": "Namespaced",
            "names": {"kind": k.KIND, "plural": k.PLURAL, "singular": k.SINGULAR, "shortNames": list(k.SHORT_NAMES),
                      "listKind": f"{k.KIND}List", "categories": ["driftloop"]},
            "versions": [{
                "name": k.VERSION, "served": True, "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": PRINTER_COLUMNS,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "Trains a model as a Kubernetes Job and registers it in MLflow behind a gate.",
                    "required": ["spec"],
                    "x-kubernetes-validations": _ROOT_CEL,
                    "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                   "metadata": {"type": "object"}, "spec": spec, "status": status},
                }},
            }],
        },
    }


def crd_yaml() -> str:
    import yaml

    header = "# Generated from driftloop.operator.resource by `python -m driftloop.operator.crd`; do not edit.\n"
    return header + yaml.safe_dump(render_crd(), sort_keys=False, width=100)


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else CRD_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(crd_yaml(), encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
