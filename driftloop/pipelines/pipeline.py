"""The KFP pipeline: open run → validate + feature → train → evaluate + gate → dsl.If(passed) → deploy.

One task per step of `driftloop.components.steps.STEPS`, each logging to the MLflow run `open-run` opened.
Fused for cost (a task's start-up is seconds of imports): feature runs in the validate task, gate in evaluate.
Its parameters are the spec's top-level fields (`driftloop.spec.SECTIONS`), with the spec
model's defaults (or a given spec's values), so a KFP user edits in the UI exactly what
`driftloop.yaml` holds. An exit handler closes the MLflow run whatever happens inside.
"""

# No `from __future__ import annotations`: KFP reads the pipeline function's annotations as types.
import copy
import inspect
from typing import TYPE_CHECKING, Any

from driftloop.constants import CUDA_TAG_SUFFIX, GPU_TOLERATION, project_image

if TYPE_CHECKING:
    from kfp.dsl import PipelineTask
    from kfp.dsl.graph_component import GraphComponent

    from driftloop.spec import Spec

PIPELINE_NAME = "driftloop-training"
# The Secret whose keys become the tasks' environment (each key optional): MLflow and S3 access.
CREDENTIALS_SECRET = "driftloop-credentials"
# DRIFTLOOP_ADMIN_TOKEN: what deploy's `serving.reload_urls` calls send to a `driftloop serve --admin-token`.
CREDENTIAL_KEYS = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                   "MLFLOW_TRACKING_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                   "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "DRIFTLOOP_ADMIN_TOKEN")
# (cpu request, cpu limit, memory request, memory limit) per task.
RESOURCES = {
    "open-run": ("250m", "1", "512Mi", "1Gi"),
    "validate": ("500m", "2", "1Gi", "4Gi"),
    "train": ("2", "4", "4Gi", "8Gi"),
    "evaluate": ("1", "2", "2Gi", "4Gi"),
    "deploy": ("250m", "1", "512Mi", "1Gi"),
    "finish-run": ("250m", "1", "512Mi", "1Gi"),
    "end-run": ("250m", "1", "512Mi", "1Gi"),
    "drift": ("500m", "2", "1Gi", "4Gi"),
}
RETRIES = {"train": (2, "60s", 2.0), "deploy": (3, "30s", 2.0)}  # (retries, first backoff, factor)
GPU_RESOURCE = "nvidia.com/gpu"
# A step that runs inside another step's task (see the module docstring); every other step is its own task.
FUSED_INTO = {"feature": "validate", "gate": "evaluate"}


def task_steps() -> dict[str, tuple[str, ...]]:
    """Each step task's name and the steps it runs, in order."""
    from driftloop.components.steps import STEP_NAMES

    tasks: dict[str, tuple[str, ...]] = {}
    for name in STEP_NAMES:
        task = FUSED_INTO.get(name, name)
        tasks[task] = (*tasks.get(task, ()), name)
    return tasks


def build_training_pipeline(spec: "Spec | None" = None, *, image: str | None = None,
                            secret: str = CREDENTIALS_SECRET, final_status: bool = True,
                            retries: bool = True) -> "GraphComponent":
    """The pipeline, with defaults from `spec` and every task in `image` (GPU training in its `-cuda` variant).

    Args:
        spec: defaults for the parameters, and what decides compile-time settings
            (a GPU on train when `train.device` is `cuda`). None: the spec model's defaults.
        image: the project image; default `$DRIFTLOOP_IMAGE` or the one for this version, and for a GPU train
            task (`train.device: cuda`) that image's `-cuda` tag (a named image is used as it is).
        secret: Kubernetes Secret whose keys (`CREDENTIAL_KEYS`) become the tasks' environment.
        final_status: close the MLflow run in an exit handler that reads the run's final status.
            False (for backends without `PipelineTaskFinalStatus`, see `backends`): a task that
            fails closes it as FAILED, as always, and an `end-run` task closes it after deploy,
            or after a gate that did not pass. A pod killed from outside then leaves it open.
        retries: train and deploy retry with backoff (`RETRIES`), for a cluster's lost nodes and
            evicted pods. kfp-local runs without: a laptop has neither, and a retry of a user's
            error (a bad module) only makes them wait minutes for the same line.

    Example:
        >>> from kfp import compiler
        >>> compiler.Compiler().compile(build_training_pipeline(spec), "driftloop_pipeline.yaml")
    """
    from kfp import dsl

    from driftloop.pipelines import kfp_components as ops
    from driftloop.pipelines.parameters import pipeline_defaults, section_parameters

    gpus = 1 if spec is not None and spec.train.device == "cuda" else 0
    # GPU training runs in the image's CUDA variant (the default image has CPU-only torch, where
    # `train.device: cuda` fails at once), unless an image was named: then that one, as for every task
    cuda = cuda_image(project_image()) if gpus and image is None else None
    if image is not None:
        ops = ComponentsInImage(ops, image)  # type: ignore[assignment]
    train_ops = ComponentsInImage(ops, cuda) if cuda is not None else ops
    signature = inspect.Signature(section_parameters())

    def configured(task: "PipelineTask", *, gpus: int = 0) -> "PipelineTask":
        return configure_task(task, secret, gpus=gpus, retries=retries)

    def steps(parameters: dict[str, Any]) -> None:
        run = configured(ops.open_run(**parameters))
        spec_out, run_id, champion = run.outputs["spec"], run.outputs["run_id"], run.outputs["champion_version"]
        step = {"spec": spec_out, "run_id": run_id}
        checked = configured(ops.validate(**step, champion_version=champion, data_version=run.outputs["data_version"]))
        table, features = checked.outputs["table"], checked.outputs["features"]
        trained = configured(train_ops.train(**step, features=features), gpus=gpus)
        scored = configured(ops.evaluate(**step, champion_version=champion, model=trained.outputs["model"],
                                         features=features))
        # The gate's bool is the task's single output: kfp.local resolves a condition on `Output` only.
        with dsl.If(scored.outputs["Output"] == True, name="gate-passed"):  # noqa: E712 (a KFP condition, not Python)
            deployed = configured(ops.deploy(**step, table=table, features=features,
                                             blessing=scored.outputs["blessing"]))
            if not final_status:
                configured(ops.end_run(**step)).after(deployed)
        if not final_status:
            with dsl.Else(name="gate-not-passed"):
                configured(ops.end_run(**step))

    def training_pipeline(*sections: Any):  # the spec's sections, in `signature`'s order
        parameters = dict(zip(signature.parameters, sections, strict=True), kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER)
        if not final_status:
            steps(parameters)
            return
        closing = configured(ops.finish_run(**parameters))
        with dsl.ExitHandler(closing, name="driftloop-run"):
            steps(parameters)

    training_pipeline.__signature__ = signature  # type: ignore[attr-defined]
    return as_pipeline(training_pipeline, name=PIPELINE_NAME, docs=parameter_docs(),
                       defaults=pipeline_defaults(spec),
                       description="driftloop: validate → feature → train → evaluate → gated deploy, tracked in MLflow.")


def cuda_image(image: str) -> str | None:
    """The CUDA variant of a tagged image (`repo:1.2` → `repo:1.2-cuda`); None for one pinned by digest or without a
    tag, whose variant cannot be named from it (name the GPU image with --image then)."""
    last = image.rsplit("/", 1)[-1]
    return f"{image}{CUDA_TAG_SUFFIX}" if ":" in last and "@" not in image else None


def as_pipeline(function: Any, *, name: str, description: str, docs: str, defaults: dict[str, Any]) -> Any:
    """A KFP pipeline from `function`, its parameters documented and defaulted from the spec model."""
    from kfp import dsl

    function.__doc__ = docs
    signature = inspect.signature(function)
    function.__signature__ = signature.replace(parameters=[
        p.replace(default=defaults[p.name]) if p.name in defaults else p for p in signature.parameters.values()])
    return dsl.pipeline(name=name, description=description)(function)


def configure_task(task: "PipelineTask", secret: str, *, gpus: int = 0, retries: bool = True) -> "PipelineTask":
    """Retries, resources and credentials for one task, looked up by its component name; no caching.

    No task is cached: each logs to its pipeline run's own MLflow run, which a cache hit would skip.
    """
    from kfp import kubernetes

    name = task.component_spec.name.replace("_", "-")
    task.set_caching_options(enable_caching=False)
    cpu, cpu_limit, memory, memory_limit = RESOURCES[name]
    task.set_cpu_request(cpu).set_cpu_limit(cpu_limit).set_memory_request(memory).set_memory_limit(memory_limit)
    if retries and name in RETRIES:
        count, backoff, factor = RETRIES[name]
        task.set_retry(num_retries=count, backoff_duration=backoff, backoff_factor=factor)
    if gpus:
        task.set_accelerator_type(GPU_RESOURCE).set_accelerator_limit(gpus)
        kubernetes.add_toleration(task, **GPU_TOLERATION)  # GPU node pools are tainted so only GPU pods land there
    kubernetes.use_secret_as_env(task, secret_name=secret, secret_key_to_env={k: k for k in CREDENTIAL_KEYS},
                                 optional=True)
    task.set_env_variable("DRIFTLOOP_CREDENTIALS_SECRET", secret)  # named when the Secret gives no tracking URI
    return task


class ComponentsInImage:
    """The components module with every component's image replaced."""

    def __init__(self, module: Any, image: str) -> None:
        self._module, self._image = module, image
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name not in self._cache:
            component = copy.deepcopy(getattr(self._module, name))
            component.component_spec.implementation.container.image = self._image
            self._cache[name] = component
        return self._cache[name]


def parameter_docs() -> str:
    """The pipeline docstring: KFP shows each parameter's description, taken from the spec model."""
    from pydantic import BaseModel

    from driftloop.spec import Spec

    lines = ["Train a tabular model, gate it and promote it in MLflow.", "", "Args:"]
    for name, field in Spec.model_fields.items():
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            own = section.__dict__.get("__doc__") or ""
            doc = f"{own.strip().splitlines()[0] if own.strip() else f'The spec section {name!r}.'} "
            doc += f"Keys: {', '.join(section.model_fields)}."
        else:
            doc = field.description or name
        lines.append(f"    {name}: {doc}")
    return "\n".join(lines)
