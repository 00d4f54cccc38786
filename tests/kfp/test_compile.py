"""The compiled pipeline: committed and deterministic, loadable by KFP, parameters from the spec, task settings."""

# No `from __future__ import annotations`: KFP reads the test pipeline's annotations as types.
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from driftloop import __version__
from driftloop.components.steps import STEP_NAMES
from driftloop.errors import InvalidSpec
from driftloop.pipelines.compile import compile_pipeline
from driftloop.pipelines.parameters import pipeline_arguments
from driftloop.pipelines.pipeline import CREDENTIAL_KEYS, FUSED_INTO, task_steps
from driftloop.spec import SECTIONS, Spec, load_spec

from ..conftest import REPO, Cli, loaded_after

COMMITTED_PIPELINE = REPO / "pipelines" / "driftloop_pipeline.yaml"

# The step tasks (one per step of the table, but for the fused ones), plus the two that open and close the run.
STEP_TASKS = {"open-run", *task_steps(), "finish-run"}


def documents(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    pipeline, platform = yaml.safe_load_all(path.read_text(encoding="utf-8"))
    return pipeline, platform


def tasks(pipeline: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every task of every DAG (root, exit handler, condition), by its display name."""
    dags = [pipeline["root"]["dag"]] + [c["dag"] for c in pipeline["components"].values() if "dag" in c]
    return {task["taskInfo"]["name"]: task for dag in dags for task in dag["tasks"].values()}


def test_cli_compile_reproduces_the_committed_file(tmp_path: Path) -> None:
    user = Cli(tmp_path, {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp_path)})
    proc = user("compile", "-o", "fresh.yaml")
    assert proc.returncode == 0, proc.stderr
    fresh = (tmp_path / "fresh.yaml").read_text(encoding="utf-8")
    assert fresh == COMMITTED_PIPELINE.read_text(encoding="utf-8"), "pipeline graph changed: run `make compile`"


def test_loads_back_with_kfps_loader_and_nests_in_another_pipeline(tmp_path: Path) -> None:
    from kfp import compiler, components, dsl

    from driftloop.pipelines import training_pipeline

    loaded = components.load_component_from_file(str(COMMITTED_PIPELINE))
    assert loaded.name == "driftloop-training" and set(loaded.component_spec.inputs) == set(Spec.model_fields)

    @dsl.pipeline(name="drift-then-retrain")
    def outer(current: str) -> None:
        training_pipeline(data={"path": current, "target": "churned"}, train={"epochs": 5})
        loaded(data={"path": current, "target": "churned"})

    compiler.Compiler().compile(outer, str(tmp_path / "outer.yaml"))
    pipeline, _ = documents(tmp_path / "outer.yaml")
    outer_tasks = pipeline["root"]["dag"]["tasks"]
    assert {t["componentRef"]["name"] for t in outer_tasks.values()} == {"comp-driftloop-training",
                                                                        "comp-driftloop-training-2"}


def test_parameters_match_the_spec_fields_types_and_defaults() -> None:
    pipeline, _ = documents(COMMITTED_PIPELINE)
    parameters = pipeline["root"]["inputDefinitions"]["parameters"]
    assert set(parameters) == set(Spec.model_fields)
    data = {"path": "t.csv", "target": "y"}
    defaults = Spec.model_validate({"data": data})
    for name, field in Spec.model_fields.items():
        declared = parameters[name]
        is_section = isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        assert declared["parameterType"] == ("STRUCT" if is_section else "STRING"), name
        assert declared.get("description"), name
        if field.is_required():
            assert "defaultValue" not in declared and not declared.get("isOptional"), name
            continue
        # the default, read back through the spec model, is the spec's own default
        value = None if declared["defaultValue"] == "" else declared["defaultValue"]  # KFP has no null string
        assert getattr(Spec.model_validate({"data": data, name: value}), name) == getattr(defaults, name), name


def test_task_settings() -> None:
    pipeline, platform = documents(COMMITTED_PIPELINE)
    by_name = tasks(pipeline)
    assert STEP_TASKS == set(by_name) - {"gate-passed", "driftloop-run"}
    # every step logs into its run's MLflow run: a cache hit would leave that run without the step's records
    cached = {name for name, t in by_name.items() if t.get("cachingOptions", {}).get("enableCache")}
    assert cached == set()
    retried = {name: t["retryPolicy"] for name, t in by_name.items() if "retryPolicy" in t}
    assert set(retried) == {"train", "deploy"}
    assert all(int(p["maxRetryCount"]) >= 2 and p["backoffDuration"] and p["backoffFactor"] > 1
               for p in retried.values())
    gate = by_name["gate-passed"]["triggerPolicy"]["condition"]
    assert "evaluate-Output" in gate and "deploy" in pipeline["components"]["comp-condition-2"]["dag"]["tasks"]
    assert by_name["finish-run"]["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    executors = pipeline["deploymentSpec"]["executors"]
    assert {e["container"]["image"] for e in executors.values()} == {f"ghcr.io/driftloop/driftloop:{__version__}"}
    for name, executor in executors.items():
        resources = executor["container"]["resources"]
        assert {"cpuRequest", "cpuLimit", "memoryRequest", "memoryLimit"} <= set(resources), name
        assert resources["cpuLimit"] >= resources["cpuRequest"] and resources["memoryLimit"] >= resources["memoryRequest"]
        assert "accelerator" not in resources, name
    secrets = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(secrets) == set(executors)
    for executor in secrets.values():
        [secret] = executor["secretAsEnv"]
        assert secret["secretName"] == "driftloop-credentials" and secret["optional"] is True
        assert {k["envVar"] for k in secret["keyToEnv"]} == set(CREDENTIAL_KEYS)


def test_a_gpu_spec_puts_an_accelerator_on_train_and_the_image_is_configurable(tmp_path: Path) -> None:
    spec = load_spec(None, data="s3://lake/t.csv", target="y", overrides=["train.device=cuda", "train.epochs=9"])
    compile_pipeline(tmp_path / "gpu.yaml", spec=spec, image="registry.local/driftloop:dev", secret="mlops-creds")
    pipeline, platform = documents(tmp_path / "gpu.yaml")
    executors = pipeline["deploymentSpec"]["executors"]
    accelerators = {name: e["container"]["resources"].get("accelerator") for name, e in executors.items()}
    train = accelerators.pop("exec-train")
    assert (train["type"], train["count"]) == ("nvidia.com/gpu", "1")
    assert set(accelerators.values()) == {None}
    assert {e["container"]["image"] for e in executors.values()} == {"registry.local/driftloop:dev"}
    parameters = pipeline["root"]["inputDefinitions"]["parameters"]
    assert parameters["data"]["defaultValue"]["path"] == "s3://lake/t.csv"
    assert parameters["train"]["defaultValue"]["epochs"] == 9
    secrets = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert {e["secretAsEnv"][0]["secretName"] for e in secrets.values()} == {"mlops-creds"}


def test_a_gpu_train_task_runs_in_the_cuda_image_and_tolerates_the_gpu_taint(tmp_path: Path) -> None:
    """The default image has CPU-only torch: `train.device: cuda` there fails at once ("no CUDA device")."""
    from driftloop.constants import project_image

    spec = load_spec(None, data="s3://lake/t.csv", target="y", overrides=["train.device=cuda"])
    compile_pipeline(tmp_path / "gpu.yaml", spec=spec)
    pipeline, platform = documents(tmp_path / "gpu.yaml")
    images = {name: e["container"]["image"] for name, e in pipeline["deploymentSpec"]["executors"].items()}
    assert images.pop("exec-train") == f"{project_image()}-cuda"
    assert set(images.values()) == {project_image()}
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors["exec-train"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists",
                                                        "effect": "NoSchedule"}]
    assert all("tolerations" not in e for name, e in executors.items() if name != "exec-train")


def test_the_cuda_variant_is_named_only_from_a_tag() -> None:
    from driftloop.pipelines.pipeline import cuda_image

    assert cuda_image("ghcr.io/driftloop/driftloop:0.1.0") == "ghcr.io/driftloop/driftloop:0.1.0-cuda"
    assert cuda_image("registry:5000/team/driftloop:dev") == "registry:5000/team/driftloop:dev-cuda"
    assert cuda_image("ghcr.io/driftloop/driftloop@sha256:" + "a" * 64) is None  # a digest names one image
    assert cuda_image("registry:5000/team/driftloop") is None  # no tag: `-cuda` would name another repository


def test_components_are_thin_wrappers_over_the_shared_steps() -> None:
    pipeline, _ = documents(COMMITTED_PIPELINE)
    for name, executor in pipeline["deploymentSpec"]["executors"].items():
        source = executor["container"]["command"][-1]
        body = source.split("\ndef ", 1)[1]
        assert "from driftloop." in body, name
        assert len(body.strip().splitlines()) <= 30, f"{name} is no longer a thin wrapper"
        assert "pip install" not in " ".join(executor["container"]["command"]), name


def test_values_kfp_cannot_carry_are_rejected_with_the_field_named(tmp_path: Path) -> None:
    spec = load_spec(None, data="t.csv", target="y", overrides=["gate.max.latency_p99_ms=.nan"])
    with pytest.raises(InvalidSpec, match=r"^gate\.max\.latency_p99_ms: nan cannot be a KFP parameter"):
        pipeline_arguments(spec)
    (tmp_path / "s.yaml").write_text("data: {path: t.csv, target: y}\ngate: {min: {roc_auc: .inf}}\n")
    user = Cli(tmp_path, {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp_path)})
    proc = user("compile", "--spec", "s.yaml", "-o", "x.yaml")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: gate.min.roc_auc: inf cannot be a KFP parameter "
                                                "(JSON numbers are finite)"]
    assert not (tmp_path / "x.yaml").exists()


def test_help_does_not_import_kfp(tmp_path: Path) -> None:
    code = ("import driftloop.cli; from click.testing import CliRunner; "
            "r = CliRunner().invoke(driftloop.cli.cli, ['submit', '--help']); assert r.exit_code == 0, r.output")
    assert loaded_after(code, ("kfp", "kfp_server_api", "mlflow"), cwd=tmp_path) == []


def test_committed_component_specs_are_up_to_date(tmp_path: Path) -> None:
    from driftloop.pipelines.compile import COMPONENTS, compile_components

    compile_components(tmp_path)
    committed = REPO / "components"
    assert {p.name for p in committed.glob("*.yaml")} == {f"{name}.yaml" for name in COMPONENTS}
    for name in COMPONENTS:
        fresh = (tmp_path / f"{name}.yaml").read_text(encoding="utf-8")
        assert fresh == (committed / f"{name}.yaml").read_text(encoding="utf-8"), f"{name}: run `make compile`"


def test_components_refuses_the_pipelines_options_instead_of_dropping_them(tmp_path: Path) -> None:
    """A component spec is written as it is: a 2.3 target or a Secret given with --components would be lost."""
    user = Cli(tmp_path, {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp_path)})
    refused = user("compile", "--components", "c", "--target-backend", "2.3", "--secret", "other")
    assert refused.returncode == 2 and not (tmp_path / "c").exists()
    assert "--secret, --target-backend: not used with --components" in refused.stderr, refused.stderr
    written = user("compile", "--components", "c", "--image", "registry.example/driftloop:1")
    assert written.returncode == 0, written.stderr
    assert "registry.example/driftloop:1" in (tmp_path / "c" / "train.yaml").read_text(encoding="utf-8")


def test_section_names_spelled_out_in_the_run_components_are_the_specs() -> None:
    """KFP ships a component's source, so `open_run` and `finish_run` name the sections literally."""
    import inspect

    from driftloop.pipelines import kfp_components

    for component in (kfp_components.open_run, kfp_components.finish_run):
        parameters = set(inspect.signature(component.python_func).parameters) - {"kfp_run_id", "status"}
        assert parameters == set(SECTIONS), component.name


def test_each_step_runs_its_executor_in_exactly_one_task() -> None:
    pipeline, _ = documents(COMMITTED_PIPELINE)
    executors = pipeline["deploymentSpec"]["executors"]
    mapping = task_steps()
    assert sorted(step for steps in mapping.values() for step in steps) == sorted(STEP_NAMES)
    assert {task for task, steps in mapping.items() if len(steps) > 1} == set(FUSED_INTO.values())
    docstring = (REPO / "driftloop" / "pipelines" / "pipeline.py").read_text(encoding="utf-8").split('"""')[1]
    assert "Fused for cost" in docstring and all(f"{s} runs in the {t} task" in docstring or f"{s} in {t}" in docstring
                                                 for s, t in FUSED_INTO.items())
    for task, steps in mapping.items():
        body = executors[f"exec-{task}"]["container"]["command"][-1].split("\ndef ", 1)[1]
        for name in STEP_NAMES:
            runs = f"{name}.execute(ctx" in body and f'step_record("{name}")' in body
            assert runs == (name in steps), (task, name)
