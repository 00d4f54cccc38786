"""Rendering a resource into the objects the operator owns: pure functions, no cluster."""

from __future__ import annotations

import copy

import pytest
import yaml

from driftloop.errors import InvalidSpec
from driftloop.operator import constants as k
from driftloop.operator.render import Owner, owned_name, render_children, render_job
from driftloop.operator.resource import parse_resource_spec
from driftloop.runner import stop_budget_s
from driftloop.spec import Spec

from ..conftest import REPO

EXAMPLE = yaml.safe_load((REPO / "examples" / "mltrainingjob.yaml").read_text())
OWNER = Owner("churn", "ml", "5b1e-uid", 3)


def spec(**changes: object):
    raw = copy.deepcopy(EXAMPLE["spec"]) | changes
    return parse_resource_spec(raw, where="ml/churn")


def spec_file(job: dict) -> str:
    """What the container finds at `--spec`: the file its volume makes of the pod's own field (downward API)."""
    template = job["spec"]["template"]
    container = template["spec"]["containers"][0]
    path = container["command"][container["command"].index("--spec") + 1]
    mount = next(m for m in container["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
    volume = next(v for v in template["spec"]["volumes"] if v["name"] == mount["name"])
    item = next(i for i in volume["downwardAPI"]["items"] if f"{mount['mountPath']}/{i['path']}" == path)
    key = item["fieldRef"]["fieldPath"].removeprefix("metadata.annotations['").removesuffix("']")
    return template["metadata"]["annotations"][key]


def run_spec_of(resource_spec) -> dict:
    return yaml.safe_load(spec_file(render_job(resource_spec, OWNER)))


def test_job_runs_the_whole_gated_pipeline_as_non_root_registering_once_per_generation() -> None:
    job = render_job(spec(resources={"cpu": "2", "memory": "4Gi", "gpu": 1}), OWNER)
    assert job["metadata"]["name"] == "churn-g3" and job["metadata"]["namespace"] == "ml"
    assert job["metadata"]["labels"]["driftloop.io/mltrainingjob"] == "churn"
    assert job["metadata"]["labels"]["driftloop.io/generation"] == "3"
    assert job["spec"]["backoffLimit"] == 1 and job["spec"]["activeDeadlineSeconds"] == 3600
    assert job["spec"]["ttlSecondsAfterFinished"] == 86400 and "completionMode" not in job["spec"]
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    command = container["command"]
    assert command[:5] == ["driftloop", "run", "--spec", "/etc/driftloop/spec.yaml", "--force"]
    assert "--no-deploy" not in command  # the pod registers and promotes, with the resource's credentials
    assert "driftloop.k8s.uid=5b1e-uid" in command and "driftloop.k8s.generation=3" in command
    once_by = [command[i + 1] for i, arg in enumerate(command) if arg == "--once-by"]
    assert once_by == ["driftloop.k8s.uid", "driftloop.k8s.generation"]  # exactly once per resource generation
    assert command[command.index("--json") + 1] == "/dev/termination-log"
    assert int(command[command.index("--json-max-bytes") + 1]) <= 3072  # well under the kubelet's 4 KiB
    assert pod["terminationGracePeriodSeconds"] == 20  # SIGTERM: the run's bounded KILLED write (15 s) fits
    # ... because the pod is told its grace period, and takes its budget from it (15 s: 5 s kept for the exit)
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DRIFTLOOP_TERMINATION_GRACE_S"] == "20" and stop_budget_s(env) == 15
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": 1}
    assert container["resources"]["requests"] == container["resources"]["limits"]
    assert container["envFrom"] == [{"secretRef": {"name": "driftloop-credentials"}}]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["runAsNonRoot"] is True and container["securityContext"]["readOnlyRootFilesystem"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["restartPolicy"] == "Never"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert {v["name"] for v in pod["volumes"]} == {"spec", "work"}


def test_the_pod_reads_a_valid_run_spec_from_its_own_template() -> None:
    run = Spec.model_validate(run_spec_of(spec(hyperparameters={"epochs": "12", "hidden_sizes": "[8, 4]"})))
    assert run.data.path == "s3://driftloop-data/customers/customers.csv" and run.data.target == "churned"
    assert run.train.epochs == 12 and run.train.hidden_sizes == [8, 4]
    assert run.gate.min == {"roc_auc": 0.75} and run.gate.vs_champion == {"roc_auc": 0.005}
    assert run.registry.model_name == "churn" and run.tracking.uri == "http://mlflow.driftloop.svc:5000"
    assert run.output == "s3://driftloop-data/runs"


def test_bad_hyperparameter_value_names_the_field() -> None:
    with pytest.raises(InvalidSpec) as caught:
        render_job(spec(hyperparameters={"epochs": "zero"}), OWNER)
    assert "spec.hyperparameters.epochs" in str(caught.value)


def test_hyperparameters_are_typed_once_when_the_resource_is_read() -> None:
    """The strings are parsed and checked on validation; rendering merges typed sections and parses nothing."""
    resource = spec(hyperparameters={"epochs": "12", "hidden_sizes": "[8, 4]", "lr": "0.01"})
    assert resource.train.epochs == 12 and resource.train.hidden_sizes == [8, 4] and resource.train.lr == 0.01
    assert resource.hyperparameters == {"epochs": "12", "hidden_sizes": "[8, 4]", "lr": "0.01"}  # the CRD's strings
    gpu = spec(resources={"cpu": "1", "memory": "1Gi", "gpu": 1})
    assert run_spec_of(gpu)["train"]["device"] == "cuda"
    for bad in ({"hidden_sizes": "[8,"}, {"hidden_sizes": "[0]"}):
        with pytest.raises(InvalidSpec, match=r"^ml/churn: spec\.hyperparameters\.hidden_sizes: "):
            spec(hyperparameters=bad)


def test_workers_render_an_indexed_job_a_headless_service_and_torchrun() -> None:
    service, job = render_children(spec(workers=2), OWNER)
    assert [service["kind"], job["kind"]] == ["Service", "Job"]
    assert service["spec"]["clusterIP"] == "None" and service["metadata"]["name"] == "churn-g3"
    assert service["spec"]["selector"] == {"driftloop.io/mltrainingjob": "churn", "driftloop.io/generation": "3"}
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 2
    pod = job["spec"]["template"]["spec"]
    assert pod["subdomain"] == "churn-g3"
    command = pod["containers"][0]["command"]
    assert command[:7] == ["torchrun", "--nnodes=$(WORLD_SIZE)", "--nproc-per-node=1", "--node-rank=$(NODE_RANK)",
                           "--rdzv-backend=static", "--master-addr=$(MASTER_ADDR)", "--master-port=$(MASTER_PORT)"]
    assert command[7:11] == ["-m", "driftloop", "run", "--spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["WORLD_SIZE"]["value"] == "2" and env["MASTER_ADDR"]["value"] == "churn-g3-0.churn-g3.ml.svc"
    assert env["NODE_RANK"]["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"


def test_owned_names_are_stable_short_and_distinct() -> None:
    assert owned_name("churn", 1) == owned_name("churn", 1) == "churn-g1"
    long_a, long_b = "a" * 60 + "x", "a" * 60 + "y"
    assert len(owned_name(long_a, 12345)) <= 52 and owned_name(long_a, 1) != owned_name(long_b, 1)


def test_job_fails_at_once_on_bad_spec_or_data_and_keeps_retries_for_oom_and_disruption() -> None:
    job = render_job(spec(), OWNER)
    policy = job["spec"]["podFailurePolicy"]["rules"]
    fail = next(r for r in policy if r["action"] == "FailJob")
    # 2: UsageError/InvalidSpec; 4: what `--bad-input-exit 4` makes of DataError/ValidationFailed
    assert fail["onExitCodes"] == {"containerName": "train", "operator": "In", "values": [2, 4]}
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--bad-input-exit") + 1] == "4"
    assert 137 not in fail["onExitCodes"]["values"] and 1 not in fail["onExitCodes"]["values"]  # OOM, step: Count
    assert {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]} in policy


def test_suspend_and_kueue_labels_reach_the_job() -> None:
    kueue = {"kueue.x-k8s.io/queue-name": "team-a", "kueue.x-k8s.io/priority-class": "high", "team": "x"}
    children = render_children(spec(suspend=True), OWNER, resource_labels=kueue)
    job = children[-1]
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert job["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == "high" and "team" not in job["metadata"]["labels"]
    assert render_job(spec(), OWNER)["spec"]["suspend"] is False


def test_only_training_fields_change_the_training_hash() -> None:
    from driftloop.operator.resource import training_hash

    base = copy.deepcopy(EXAMPLE["spec"])
    drift = {"schedule": "0 * * * *", "currentData": "s3://b/live.csv"}
    assert training_hash(base) == training_hash(base | {"drift": drift, "suspend": True})
    assert training_hash(base) != training_hash(base | {"retrainToken": "2"})
    bare = {key: value for key, value in base.items() if key not in ("workers", "modelType")}
    assert training_hash(bare) == training_hash(bare | {"workers": 1, "modelType": "pytorch"})  # defaults filled in
    assert training_hash(base | {"hyperparameters": {"epoch": "1"}}) != training_hash(base)  # refused: as written


SCHEDULING = {
    "nodeSelector": {"pool": "gpu"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}},
    "priorityClassName": "training-high"}
POD_TEMPLATE = {"labels": {"team": "risk", "driftloop.io/mltrainingjob": "spoofed"},
                "annotations": {"prometheus.io/scrape": "false"}, "serviceAccountName": "s3-reader",
                "imagePullSecrets": [{"name": "registry"}]}


def test_scheduling_and_pod_template_reach_the_pod_and_our_labels_win() -> None:
    job = render_job(spec(scheduling=SCHEDULING, podTemplate=POD_TEMPLATE), OWNER)
    template = job["spec"]["template"]
    pod = template["spec"]
    assert pod["nodeSelector"] == {"pool": "gpu"} and pod["priorityClassName"] == "training-high"
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["affinity"] == SCHEDULING["affinity"]
    assert pod["serviceAccountName"] == "s3-reader" and pod["imagePullSecrets"] == [{"name": "registry"}]
    assert pod["automountServiceAccountToken"] is False  # the pod still never calls the Kubernetes API
    assert template["metadata"]["labels"]["team"] == "risk"
    assert template["metadata"]["labels"]["driftloop.io/mltrainingjob"] == "churn"  # the Service selects on it
    assert template["metadata"]["annotations"] == {"prometheus.io/scrape": "false",
                                                   k.ANNOTATION_RUN_SPEC: spec_file(job)}
    plain = render_job(spec(), OWNER)["spec"]["template"]
    assert not {"nodeSelector", "tolerations", "affinity", "priorityClassName", "serviceAccountName",
                "imagePullSecrets"} & set(plain["spec"]) and set(plain["metadata"]["annotations"]) == {
        k.ANNOTATION_RUN_SPEC}


def test_the_run_spec_annotation_is_ours_and_within_what_a_pod_may_hold() -> None:
    spoofed = spec(podTemplate={"annotations": {k.ANNOTATION_RUN_SPEC: "train: {}\n"}})
    assert Spec.model_validate(run_spec_of(spoofed)).data.target == "churned"  # the user's cannot replace it
    # Every field is bounded, but the user's annotations can still fill what the API server allows a
    # pod: refused here, naming why, rather than as a 422 on the Job's create.
    crowded = spec(podTemplate={"annotations": {f"note-{i}": "x" * 4096 for i in range(64)}})
    with pytest.raises(InvalidSpec, match=r"^ml/churn: the run spec and spec.podTemplate.annotations take \d+ bytes, "
                                          r"over the 262144"):
        render_job(crowded, OWNER)


def test_scheduling_fields_are_checked_when_the_resource_is_read() -> None:
    with pytest.raises(InvalidSpec, match="spec.scheduling.tolerations.0.operator"):
        spec(scheduling={"tolerations": [{"key": "a", "operator": "Maybe"}]})
    with pytest.raises(InvalidSpec, match="spec.podTemplate.labels"):
        spec(podTemplate={"labels": {"bad key!": "x"}})
    with pytest.raises(InvalidSpec, match="spec.scheduling.nodeSelector"):
        spec(scheduling={"nodeSelector": {f"k{i}": "v" for i in range(65)}})


def test_gpus_default_to_the_cuda_image_and_tolerate_the_gpu_taint() -> None:
    from driftloop.operator.constants import DEFAULT_CUDA_IMAGE, DEFAULT_IMAGE, GPU_TOLERATION
    from driftloop.operator.drift_render import render_drift_cronjob

    raw = {k: v for k, v in EXAMPLE["spec"].items() if k != "image"}
    on_gpu = parse_resource_spec(raw | {"resources": {"gpu": 2}}, where="ml/churn")
    pod = render_job(on_gpu, OWNER)["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == DEFAULT_CUDA_IMAGE == f"{DEFAULT_IMAGE}-cuda"
    assert pod["tolerations"] == [GPU_TOLERATION]
    assert GPU_TOLERATION == {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    # The drift check compares tables on CPU: the CPU image, no GPU toleration.
    checked = render_drift_cronjob(parse_resource_spec(raw | {"resources": {"gpu": 2}, "drift": {
        "schedule": "@hourly", "currentData": "s3://lake/today.csv"}}, where="ml/churn"), OWNER)
    check_pod = checked["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert check_pod["containers"][0]["image"] == DEFAULT_IMAGE and "tolerations" not in check_pod

    on_cpu = render_job(parse_resource_spec(raw, where="ml/churn"), OWNER)["spec"]["template"]["spec"]
    assert on_cpu["containers"][0]["image"] == DEFAULT_IMAGE and "tolerations" not in on_cpu
    # An image the user names is used as named, GPUs or not; the CRD's former default counts as unnamed.
    named = render_job(parse_resource_spec(raw | {"resources": {"gpu": 1}, "image": "registry.local/t:1"},
                                           where="ml/churn"), OWNER)["spec"]["template"]["spec"]
    assert named["containers"][0]["image"] == "registry.local/t:1" and named["tolerations"] == [GPU_TOLERATION]
    stored = parse_resource_spec(raw | {"resources": {"gpu": 1}, "image": DEFAULT_IMAGE}, where="ml/churn")
    assert stored.image is None and stored.training_image == DEFAULT_CUDA_IMAGE


def test_a_users_gpu_toleration_is_not_doubled() -> None:
    raw = {k: v for k, v in EXAMPLE["spec"].items() if k != "image"} | {"resources": {"gpu": 1}}
    own = {"key": "nvidia.com/gpu", "operator": "Equal", "value": "a100", "effect": "NoSchedule"}
    pod = render_job(parse_resource_spec(raw | {"scheduling": {"tolerations": [own]}}, where="ml/churn"),
                     OWNER)["spec"]["template"]["spec"]
    assert pod["tolerations"] == [own]
    everything = {"operator": "Exists"}
    pod = render_job(parse_resource_spec(raw | {"scheduling": {"tolerations": [everything]}}, where="ml/churn"),
                     OWNER)["spec"]["template"]["spec"]
    assert pod["tolerations"] == [everything]
    other = {"key": "spot", "operator": "Exists", "effect": "NoSchedule"}
    pod = render_job(parse_resource_spec(raw | {"scheduling": {"tolerations": [other]}}, where="ml/churn"),
                     OWNER)["spec"]["template"]["spec"]
    assert pod["tolerations"] == [other, {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_model_type_and_evaluate_reach_the_run_spec() -> None:
    run = Spec.model_validate(run_spec_of(spec(modelType="gbm", evaluate={"slices": ["region"], "sliceBins": 3},
                                               gate={"slices": {"minRows": 40, "min": {"accuracy": 0.7}}})))
    assert run.train.model == "gbm"
    assert run.evaluate.slices == ["region"] and run.evaluate.slice_bins == 3
    assert run.gate.slices.min_rows == 40 and run.gate.slices.min == {"accuracy": 0.7}
    # the default modelType leaves the family to the `model` hyperparameter
    chosen = run_spec_of(spec(hyperparameters={"model": "linear"}))
    assert Spec.model_validate(chosen).train.model == "linear"
    with pytest.raises(InvalidSpec) as caught:
        spec(modelType="gbm", hyperparameters={"model": "linear"})
    assert "modelType 'gbm' and hyperparameters.model 'linear' disagree" in str(caught.value)


def test_model_type_is_the_family_a_search_space_is_checked_against() -> None:
    searched = spec(modelType="gbm", hyperparameters={"search": "{trials: 2, space: {gbm.max_iter: {low: 5, high: 9}}}"})
    assert searched.train.model == "gbm" and searched.train.search is not None
    with pytest.raises(InvalidSpec, match="gbm.max_iter"):
        spec(hyperparameters={"search": "{trials: 2, space: {gbm.max_iter: {low: 5, high: 9}}}"})  # the MLP trains


def test_the_data_source_carries_reading_and_target_options() -> None:
    source = copy.deepcopy(EXAMPLE["spec"]["dataSource"]) | {
        "read": {"sep": ";", "decimal": ",", "naValues": ["n/a"]}, "dropMissingTarget": False, "positiveClass": "yes"}
    data = Spec.model_validate(run_spec_of(spec(dataSource=source))).data
    assert (data.read.sep, data.read.decimal, data.read.na_values) == (";", ",", ["n/a"])
    assert data.drop_missing_target is False and data.positive_class == "yes"
    with pytest.raises(InvalidSpec, match=r"spec.dataSource.read.sep"):
        spec(dataSource=source | {"read": {"sep": ";;"}})
