"""The CRD is generated from the resource model, and bad resources are rejected with the field named."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from driftloop.errors import InvalidSpec
from driftloop.operator.crd import crd_yaml, render_crd
from driftloop.operator.resource import parse_resource_spec

from ..conftest import REPO
from .cluster import LocalCluster
from .conftest import CRD_FILE, GROUP, PLURAL, VERSION, kubectl

EXAMPLE = yaml.safe_load((REPO / "examples" / "mltrainingjob.yaml").read_text())

# (change to the example's spec, the field the error must name, what the API server says)
BAD = [
    ({"resources": {"gpu": 9}}, "spec.resources.gpu", "less than or equal to 8"),
    ({"resources": {"memory": "lots"}}, "spec.resources.memory", "should match"),
    ({"modelType": "xgboost"}, "spec.modelType", "supported values: 'pytorch', 'mlp', 'gbm'"),
    ({"workers": 0}, "spec.workers", "greater than or equal to 1"),
    ({"runPolicy": {"backoffLimit": -1}}, "spec.runPolicy.backoffLimit", "greater than or equal to 0"),
    ({"dataSource": {"colour": "red"}}, "spec.dataSource.colour", "unknown field"),
    ({"mlflow": {"trackingUri": None}}, "spec.mlflow.trackingUri", "Required"),
    ({"hyperparameters": {"epochs": 40}}, "spec.hyperparameters.epochs", "must be of type string"),
    ({"drift": {"schedule": "hourly", "currentData": "s3://b/live.csv"}}, "spec.drift.schedule", "should match"),
    # the API server refuses a CronJob created with TZ in its schedule ("use timeZone field instead")
    ({"drift": {"schedule": "CRON_TZ=UTC 0 * * *", "currentData": "s3://b/live.csv"}}, "spec.drift.schedule",
     "should match"),
    ({"drift": {"schedule": "@daily", "timeZone": "Europe/Berlin; rm", "currentData": "s3://b/live.csv"}},
     "spec.drift.timeZone", "should match"),
    ({"scheduling": {"tolerations": [{"key": "gpu", "operator": "Maybe"}]}}, "spec.scheduling.tolerations.0.operator",
     "supported values: 'Exists', 'Equal'"),
    ({"scheduling": {"priorityClassName": "High!"}}, "spec.scheduling.priorityClassName", "should match"),
    ({"podTemplate": {"imagePullSecrets": [{}]}}, "spec.podTemplate.imagePullSecrets.0.name", "Required"),
    ({"hyperparameters": {"lr": "0." + "1" * 300}}, "spec.hyperparameters.lr", "may not be longer than 256"),
    # label values as the API server checks them on the Job's pods, which would otherwise refuse the Job
    ({"podTemplate": {"labels": {"team": "data science"}}}, "spec.podTemplate.labels.team", "should match"),
    ({"scheduling": {"nodeSelector": {"zone": "z" * 64}}}, "spec.scheduling.nodeSelector.zone",
     "may not be longer than 63"),
]
# What only the CRD's CEL rules (x-kubernetes-validations) reject: the schema lets them through.
BAD_BY_CEL = [
    ({"hyperparameters": {"epoch": "3"}}, "spec.hyperparameters", "unknown hyperparameter; valid: model, budget"),
    ({"dataSource": {"uri": "s3://b/x.csv"}}, "spec.dataSource", "give either uri, or both s3Bucket and path"),
    ({"dataSource": {"path": None}}, "spec.dataSource", "s3Bucket and path go together"),
]


def bad_resource(name: str, change: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLE)
    body["metadata"] = {"name": name, "namespace": "default"}
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(body["spec"].get(key), dict):
            for inner, inner_value in value.items():
                if inner_value is None:
                    body["spec"][key].pop(inner, None)
                else:
                    body["spec"][key][inner] = inner_value
        else:
            body["spec"][key] = value
    return body


def test_committed_crd_is_the_generated_one() -> None:
    assert CRD_FILE.read_text() == crd_yaml(), "run `python -m driftloop.operator.crd` and commit crds/"


def test_crd_is_a_valid_kubernetes_1_30_object() -> None:
    import kubernetes_validate

    kubernetes_validate.validate(render_crd(), "1.30", strict=True)
    version = render_crd()["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert [c["jsonPath"] for c in version["additionalPrinterColumns"]] == [
        ".status.phase", ".status.modelName", ".status.modelVersion", ".status.gate", ".metadata.creationTimestamp"]


def test_the_example_is_valid() -> None:
    spec = parse_resource_spec(EXAMPLE["spec"], where="example")
    assert spec.data_source.location == "s3://driftloop-data/customers/customers.csv"
    assert spec.gate.min == {"roc_auc": 0.75} and spec.gate.vs_champion == {"roc_auc": 0.005}


@pytest.mark.parametrize(("change", "field", "_said"), BAD, ids=[b[1] for b in BAD])
def test_model_rejects_bad_resources_naming_the_field(change: dict[str, Any], field: str, _said: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_resource_spec(bad_resource("bad", change)["spec"], where="default/bad")
    assert field in str(caught.value)


@pytest.mark.parametrize("change", [{"hyperparameters": {"epoch": "3"}},
                                    {"dataSource": {"uri": "s3://b/x.csv"}}])
def test_model_checks_what_the_schema_leaves_to_cel(change: dict[str, Any]) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_resource_spec(bad_resource("bad", change)["spec"], where="default/bad")
    assert "spec.hyperparameters" in str(caught.value) or "spec.dataSource" in str(caught.value)


def test_every_string_list_and_map_in_the_spec_is_bounded() -> None:
    """A real API server estimates each CEL rule's cost from these bounds; one unbounded value refuses the CRD."""
    spec = render_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    unbounded = []

    def walk(node: dict[str, Any], where: str) -> None:
        if node.get("x-kubernetes-preserve-unknown-fields"):
            return  # affinity: a core/v1 object the API server checks no CEL rule against
        if node.get("type") == "string" and "maxLength" not in node and "enum" not in node:
            unbounded.append(where)
        if node.get("type") == "array":
            if "maxItems" not in node:
                unbounded.append(where)
            walk(node["items"], f"{where}[]")
        if isinstance(node.get("additionalProperties"), dict):
            if "maxProperties" not in node:
                unbounded.append(where)
            walk(node["additionalProperties"], f"{where}{{}}")
        for name, child in (node.get("properties") or {}).items():
            walk(child, f"{where}.{name}")

    walk(spec, "spec")
    assert unbounded == []
    hyper = spec["properties"]["hyperparameters"]
    assert hyper["maxProperties"] == hyper["x-kubernetes-validations"][0]["rule"].count("'") // 2


def test_cel_rules_compile_and_the_example_passes_them() -> None:
    from .cel import compile_rules, violations

    rules = compile_rules(render_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    assert {r.path for r in rules} == {(), ("spec", "dataSource"), ("spec", "hyperparameters"), ("spec", "mlflow")}
    assert violations(rules, EXAMPLE, None) == [] and violations(rules, EXAMPLE, EXAMPLE) == []
    # Ratcheting: a value stored before a rule forbade it is judged when it changes, not on every write.
    stored = bad_resource("old", {"hyperparameters": {"epoch": "3"}})
    assert violations(rules, stored, None) and violations(rules, stored, stored) == []
    changed = bad_resource("old", {"hyperparameters": {"epoch": "4"}})
    [said] = violations(rules, changed, stored)
    assert said.startswith('spec.hyperparameters: Invalid value: "object": unknown hyperparameter; valid: '), said


def test_api_server_rejects_bad_resources_naming_the_field(cluster: LocalCluster, tmp_path: Any) -> None:
    for i, (change, field, said) in enumerate(BAD + BAD_BY_CEL):
        path = tmp_path / f"bad-{i}.yaml"
        path.write_text(yaml.safe_dump(bad_resource(f"bad-{i}", change)))
        done = kubectl(cluster, "create", "--validate=false", "-f", str(path))
        assert done.returncode != 0, f"{field} was accepted"
        assert field in done.stderr and said in done.stderr, done.stderr
        missing = kubectl(cluster, "get", "mltj", f"bad-{i}", "-o", "name")
        assert missing.returncode != 0  # nothing was stored
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(bad_resource("good", {})))
    created = kubectl(cluster, "create", "--validate=false", "-f", str(good))
    assert created.returncode == 0, created.stderr


@pytest.mark.parametrize("schedule", ["@annually", "@midnight", "@yearly", "@hourly", "*/30 * * * *"])
def test_every_schedule_a_cronjob_takes_as_a_macro_is_accepted(schedule: str) -> None:
    from driftloop.operator.resource import parse_resource_spec

    spec = bad_resource("macro", {"drift": {"schedule": schedule, "currentData": "s3://b/live.csv"}})["spec"]
    assert parse_resource_spec(spec, where="default/macro").drift.schedule == schedule


def test_names_the_jobs_labels_and_dns_cannot_take_are_refused_at_apply(cluster: LocalCluster, tmp_path: Any) -> None:
    """The name becomes a label value on the Job and its pods (<= 63 characters) and, with workers > 1, names the
    Service and the pods' DNS subdomain (a DNS label): refused by the CRD's CEL rules, not by the Job's create."""
    cases = [("n" * 64, {}, "at most 63 characters"),
             ("churn.v2", {"workers": 2}, "with workers > 1, a DNS label"),
             ("1model", {"workers": 2}, "with workers > 1, a DNS label")]
    for i, (name, change, said) in enumerate(cases):
        path = tmp_path / f"named-{i}.yaml"
        path.write_text(yaml.safe_dump(bad_resource(name, change)))
        done = kubectl(cluster, "create", "--validate=false", "-f", str(path))
        assert done.returncode != 0 and said in done.stderr, (name, done.stderr)
    for i, (name, change) in enumerate([("n" * 63, {}), ("churn.v2", {}), ("model-2", {"workers": 2})]):
        path = tmp_path / f"fine-{i}.yaml"
        path.write_text(yaml.safe_dump(bad_resource(name, change)))
        done = kubectl(cluster, "create", "--validate=false", "-f", str(path))
        assert done.returncode == 0, (name, done.stderr)


def test_cel_rejects_through_the_kubernetes_client(cluster: LocalCluster, kube: Any) -> None:
    import kubernetes

    api = kubernetes.client.CustomObjectsApi(kube)
    with pytest.raises(kubernetes.client.ApiException) as caught:
        api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL,
                                            bad_resource("cel-hyper", {"hyperparameters": {"learning_rate": "1"}}))
    assert caught.value.status == 422
    said = json.loads(caught.value.body)["message"]
    assert 'MLTrainingJob.driftloop.io "cel-hyper" is invalid: spec.hyperparameters: Invalid value: "object": ' \
           "unknown hyperparameter" in said, said
    created = api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL,
                                                  bad_resource("cel-rename", {"mlflow": {"modelName": "churn"}}))
    assert created["metadata"]["generation"] == 1
    # A transition rule: the same field may keep its value, never change it.
    api.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "cel-rename",
                                       {"spec": {"workers": 2, "mlflow": {"modelName": "churn"}}})
    with pytest.raises(kubernetes.client.ApiException) as caught:
        api.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "cel-rename",
                                           {"spec": {"mlflow": {"modelName": "churn-v2"}}})
    said = json.loads(caught.value.body)["message"]
    assert caught.value.status == 422 and 'spec.mlflow: Invalid value: "object": modelName is immutable' in said
    stored = api.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "cel-rename")
    assert stored["spec"]["mlflow"]["modelName"] == "churn" and stored["spec"]["workers"] == 2


def test_kubectl_patch_meets_the_transition_rule(cluster: LocalCluster, tmp_path: Any) -> None:
    path = tmp_path / "named.yaml"
    path.write_text(yaml.safe_dump(bad_resource("cel-kubectl", {"mlflow": {"modelName": "churn"}})))
    assert kubectl(cluster, "create", "--validate=false", "-f", str(path)).returncode == 0
    done = kubectl(cluster, "patch", "mltj", "cel-kubectl", "--type", "merge", "-p",
                   json.dumps({"spec": {"mlflow": {"modelName": "fraud"}}}))
    assert done.returncode != 0 and "spec.mlflow" in done.stderr and "modelName is immutable" in done.stderr, \
        done.stderr


def test_a_rule_that_cannot_be_evaluated_rejects_and_one_that_does_not_compile_fails_the_crd() -> None:
    """As an API server: an evaluation error (a key the value lacks, no such overload) is a rejection, not a pass."""
    from .cel import compile_rules, violations

    def schema(rule: str) -> dict[str, Any]:
        return {"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-validations": [
            {"rule": rule, "message": "checked"}]}}}

    [missing_key] = compile_rules(schema("self.workers <= 1"))
    assert violations([missing_key], {"spec": {"workers": 1}}, None) == []
    assert violations([missing_key], {"spec": {"workers": 2}}, None) == ['spec: Invalid value: "object": checked']
    [said] = violations([missing_key], {"spec": {}}, None)
    assert said == 'spec: Invalid value: "object": no such key: workers evaluating rule: self.workers <= 1', said
    [no_overload] = compile_rules(schema("self.name + 1 == 'a1'"))
    [said] = violations([no_overload], {"spec": {"name": "a"}}, None)
    assert said.endswith(" evaluating rule: self.name + 1 == 'a1'"), said
    with pytest.raises(Exception):  # noqa: B017 (the engine's own compile error)
        compile_rules(schema("self.("))
