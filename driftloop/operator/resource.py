"""The MLTrainingJob resource as a typed model: the CRD schema is generated from it.

Where a field means the same as in `driftloop.spec` (the gate, the training knobs) the
model reuses that spec, so `kubectl apply`, the operator and `driftloop run` agree on
what is valid. Field names are camelCase, as Kubernetes users expect.

The spec is rendered once: the string hyperparameters are parsed and checked against
`TrainSpec` when the resource is validated (`MLTrainingJobSpec.train`), and `to_run_spec`
merges typed sections into the `driftloop.spec.Spec` whose YAML the Job's pod template carries.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from driftloop.constants import RETRAIN_TOKEN_DRIFT_PREFIX
from driftloop.errors import InvalidSpec
from driftloop.operator.constants import DEFAULT_CUDA_IMAGE, DEFAULT_IMAGE, LAST_HANDLED_MAX_CHARS
from driftloop.spec import (
    DataSpec,
    EvaluateSpec,
    GateSpec,
    ReadSpec,
    RegistrySpec,
    SliceGateSpec,
    Spec,
    TrackingSpec,
    TrainSpec,
    ValidationSpec,
)
from driftloop.suggest import nearest

_CPU = r"^([0-9]+(\.[0-9]+)?|[0-9]+m)$"
_MEMORY = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$"
# CronJob's own macros, or five fields; no `CRON_TZ=` / `TZ=` prefix, which the API server refuses on create
_CRON = r"^(@(hourly|daily|midnight|weekly|monthly|yearly|annually)|([^\s=]+\s+){4}[^\s=]+)$"
_TIME_ZONE = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$"  # an IANA name: UTC, Europe/Berlin, Etc/GMT+2
_DURATION = r"^([0-9]+(s|m|h|d))+$"
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

# Training knobs a resource may set as strings; each is parsed and checked by TrainSpec.
HYPERPARAMETERS = tuple(name for name in TrainSpec.model_fields if name != "device")
# Taken as written, not read as YAML: a file's text would lose its line breaks to YAML's folding.
VERBATIM_HYPERPARAMETERS = ("module", "module_source")


class HyperparameterError(ValueError):
    """One hyperparameter whose value TrainSpec rejects; `key` completes the field's path."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def parse_hyperparameters(values: dict[str, str]) -> TrainSpec:
    """The training knobs as TrainSpec types: each string read as a YAML scalar or list (`"[8, 4]"`), once.

    Raises:
        HyperparameterError: a value that is not YAML, or that TrainSpec rejects.
    """
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's when present: the same values, 5x faster
    parsed: dict[str, Any] = {}
    for key, value in values.items():
        if key in VERBATIM_HYPERPARAMETERS:
            parsed[key] = value
            continue
        try:
            parsed[key] = yaml.load(value, Loader=loader)  # noqa: S506 (a safe loader, C or Python)
        except yaml.YAMLError as e:
            raise HyperparameterError(key, f"not a YAML value: {str(e).splitlines()[0]}") from None
    try:
        return TrainSpec.model_validate(parsed)
    except ValidationError as e:
        first = e.errors()[0]
        raise HyperparameterError(str(first["loc"][0]), first["msg"].removeprefix("Value error, ")) from None


# Kubernetes-style field names (`naValues`) over the run spec's snake_case, unknown keys refused. Sections that
# reuse a run-spec model (`Read`, `Evaluate`, `Gate`) subclass it and take this config instead of `_Resource`'s base.
CAMEL = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class _Resource(BaseModel):
    model_config = CAMEL


class Read(ReadSpec):
    """`data.read` of `driftloop run`, with Kubernetes-style names (`naValues`)."""

    model_config = CAMEL


class DataSource(_Resource):
    """The training table: `uri`, or `s3Bucket` plus `path`."""

    uri: str | None = Field(None, min_length=1, description="s3:// URI or a path inside the training image.")
    s3_bucket: str | None = Field(None, min_length=3, max_length=63, description="S3 bucket (with `path`).")
    path: str | None = Field(None, min_length=1, description="Object key inside `s3Bucket`.")
    target: str = Field(min_length=1, description="Column to predict.")
    task: Literal["classification", "regression", "auto"] = "auto"
    format: Literal["auto", "csv", "parquet"] = "auto"
    read: Read = Field(default_factory=lambda: Read(), description="CSV parsing when sniffing guesses wrong "
                       "(`data.read`).")
    drop_missing_target: bool = Field(True, description="Drop rows whose target is missing (counted in the run).")
    positive_class: str | None = Field(None, max_length=253, description="Binary tasks: the positive class, matched "
                                       "as text; default: the minority class.")

    @model_validator(mode="after")
    def _one_location(self) -> DataSource:
        if (self.uri is None) == (self.s3_bucket is None and self.path is None) or \
                (self.s3_bucket is None) != (self.path is None):
            raise ValueError("give either uri, or both s3Bucket and path")
        return self

    @property
    def location(self) -> str:
        return self.uri if self.uri is not None else f"s3://{self.s3_bucket}/{self.path.lstrip('/')}"


class Resources(_Resource):
    """What one training pod asks for (requests = limits)."""

    cpu: str = Field("1", pattern=_CPU, description="CPU quantity, e.g. 2 or 500m.")
    memory: str = Field("2Gi", pattern=_MEMORY, description="Memory quantity, e.g. 4Gi.")
    gpu: int = Field(0, ge=0, le=8, description="nvidia.com/gpu per pod.")


class SecretRef(_Resource):
    name: str = Field(pattern=_DNS_LABEL, max_length=253, description="Secret whose keys become the pod's env.")


class MLflow(_Resource):
    tracking_uri: str = Field(min_length=1, description="MLflow tracking server, e.g. http://mlflow.driftloop:5000.")
    model_name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}$", max_length=255,
                                   description="Registered model name; defaults to the resource's name.")
    experiment: str | None = Field(None, min_length=1, description="Experiment; defaults to the model name.")
    secret_ref: SecretRef | None = Field(None, description="Credentials (MLFLOW_TRACKING_USERNAME/PASSWORD or "
                                         "_TOKEN, AWS_* …) as the env of the training and drift-check pods, which "
                                         "register and end their own runs; the operator never reads it.")


class Evaluate(EvaluateSpec):
    """`evaluate` of `driftloop run` (slices, the labelled window, latency samples), with Kubernetes-style names."""

    model_config = CAMEL


class SliceGate(SliceGateSpec):
    """`gate.slices` of `driftloop run`, with Kubernetes-style names (`minRows`)."""

    model_config = CAMEL


class Gate(GateSpec):
    """The promotion policy of `driftloop run`, with Kubernetes-style names."""

    model_config = CAMEL

    slices: SliceGate = Field(default_factory=SliceGate)


class RunPolicy(_Resource):
    backoff_limit: int = Field(1, ge=0, le=10, description="Pod retries before the Job fails.")
    active_deadline_seconds: int | None = Field(None, ge=1, description="Wall-clock bound on the whole Job.")
    ttl_seconds_after_finished: int | None = Field(None, ge=0, description="Delete the Job this long after it ends.")


class Drift(_Resource):
    """Scheduled drift checks against the champion's reference data (run by the drift tooling)."""

    schedule: str = Field(pattern=_CRON, description="Cron schedule of the drift check.")
    time_zone: str | None = Field(None, max_length=64, pattern=_TIME_ZONE, description="IANA time zone of the "
                                  "schedule (the CronJob's timeZone), e.g. Europe/Berlin; unset: the controller's.")
    current_data: str = Field(min_length=1, description="s3:// URI of the live table to compare.")
    cooldown: str = Field("6h", pattern=_DURATION, description="At most one retrain per this window, e.g. 6h.")
    retrain: bool = Field(True, description="Retrain (bump retrainToken) when drift is found.")
    read: Read = Field(default_factory=lambda: Read(), description="CSV parsing of currentData when sniffing "
                       "guesses wrong (as dataSource.read; `driftloop drift --read`).")


_LABEL_KEY = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
# A label value as the API server checks it (metav1 validation): <= 63 characters, alphanumeric at both ends;
# checked here, so a bad one is refused at `kubectl apply` rather than on the Job's create
LabelValue = Annotated[str, StringConstraints(max_length=63, pattern=r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")]
_MAX_ENTRIES = 64  # bounded maps and lists: a real API server's CEL cost budget needs the bound


class Toleration(_Resource):
    """A `core/v1` Toleration, e.g. for a tainted GPU pool."""

    key: str | None = Field(None, max_length=317, description="Taint key; empty with Exists tolerates every taint.")
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = Field(None, max_length=63)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = Field(None, ge=0, description="How long a NoExecute taint is tolerated.")


class Scheduling(_Resource):
    """Where the training pods may run: passed to the pod spec as written."""

    node_selector: dict[str, LabelValue] = Field(default_factory=dict, max_length=_MAX_ENTRIES)
    tolerations: list[Toleration] = Field(default_factory=list, max_length=_MAX_ENTRIES)
    affinity: dict[str, Any] | None = Field(None, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
                                            description="A core/v1 Affinity (nodeAffinity, podAffinity, podAntiAffinity).")
    priority_class_name: str | None = Field(None, pattern=_DNS_SUBDOMAIN, max_length=253)


class LocalObjectReference(_Resource):
    name: str = Field(pattern=_DNS_SUBDOMAIN, max_length=253)


class PodTemplate(_Resource):
    """Metadata and identity of the training pods (the operator's own labels win on a clash)."""

    labels: dict[str, LabelValue] = Field(default_factory=dict, max_length=_MAX_ENTRIES)
    annotations: dict[str, str] = Field(default_factory=dict, max_length=_MAX_ENTRIES)
    service_account_name: str | None = Field(None, pattern=_DNS_SUBDOMAIN, max_length=253,
                                             description="e.g. one bound to a cloud identity for S3 (its token is "
                                                         "not mounted: the pod never calls the Kubernetes API).")
    image_pull_secrets: list[LocalObjectReference] = Field(default_factory=list, max_length=_MAX_ENTRIES)

    @field_validator("labels", "annotations")
    @classmethod
    def _label_keys(cls, values: dict[str, str]) -> dict[str, str]:
        import re

        for key in values:
            if len(key) > 317 or not re.match(_LABEL_KEY, key):
                raise ValueError(f"{key!r} is not a valid label or annotation key")
        return values


class MLTrainingJobSpec(_Resource):
    """One training generation: change the spec (or `retrainToken`) and a new Job runs."""

    model_type: Literal["pytorch", "mlp", "gbm", "linear", "auto"] = Field(
        "pytorch", description="The model family (`train.model`): pytorch (the MLP, also called mlp), gbm, linear or "
        "auto. A `model` hyperparameter or a user `module` overrides it.")
    data_source: DataSource
    resources: Resources = Field(default_factory=Resources)
    # Bounded (as few entries as there are names): the CRD's CEL rule iterates it within the cost budget.
    hyperparameters: dict[str, Annotated[str, StringConstraints(max_length=256)]] = Field(
        default_factory=dict, max_length=len(HYPERPARAMETERS), description=f"Training knobs as strings: {', '.join(HYPERPARAMETERS)}.")
    output_path: str | None = Field(None, min_length=1, description="s3:// prefix for step outputs.")
    image: str | None = Field(None, min_length=1, description="Training image; default: this driftloop version's, "
                              "its -cuda variant when resources.gpu > 0.")
    mlflow: MLflow
    evaluate: Evaluate = Field(default_factory=Evaluate)
    gate: Gate = Field(default_factory=Gate)
    run_policy: RunPolicy = Field(default_factory=RunPolicy)
    workers: int = Field(1, ge=1, le=64, description="Pods training together (torchrun, DDP) when > 1.")
    retrain_token: str | None = Field(None, max_length=253, description="Change it to retrain on the same spec.")
    drift: Drift | None = None
    suspend: bool = Field(False, description="Create the Job suspended (or suspend it); false resumes it. "
                          "Kueue-compatible: a queue (kueue.x-k8s.io/queue-name label) admits it by unsuspending.")
    scheduling: Scheduling = Field(default_factory=Scheduling)
    pod_template: PodTemplate = Field(default_factory=PodTemplate)

    _train: TrainSpec = PrivateAttr(default_factory=TrainSpec)

    @property
    def training_image(self) -> str:
        """`image`, else this version's image: its CUDA variant when the pod gets GPUs (the CPU one has no CUDA torch)."""
        if self.image is not None:
            return self.image
        return DEFAULT_CUDA_IMAGE if self.resources.gpu > 0 else DEFAULT_IMAGE

    @property
    def check_image(self) -> str:
        """The drift check's image: `image`, else the CPU one (a check compares tables; it gets no GPU)."""
        return self.image or DEFAULT_IMAGE

    @field_validator("image")
    @classmethod
    def _default_image_is_no_choice(cls, value: str | None) -> str | None:
        # The CRD used to default `image` to the CPU image, so stored resources carry it as if chosen.
        # Read as unset, it picks the CUDA variant for GPUs and hashes as before (no retrain on upgrade).
        return None if value == DEFAULT_IMAGE else value

    @property
    def train(self) -> TrainSpec:
        """`hyperparameters`, typed (TrainSpec's defaults for the rest)."""
        return self._train

    @field_validator("hyperparameters")
    @classmethod
    def _known_hyperparameters(cls, values: dict[str, str]) -> dict[str, str]:
        for key in values:
            if key not in HYPERPARAMETERS:
                close = nearest(key, HYPERPARAMETERS, cutoff=0.5)
                hint = f"did you mean {close!r}?" if close else f"valid: {', '.join(HYPERPARAMETERS)}"
                raise ValueError(f"unknown hyperparameter {key!r}; {hint}")
        return values

    @model_validator(mode="after")
    def _typed_hyperparameters(self) -> MLTrainingJobSpec:
        chosen = self.hyperparameters.get("model")
        if chosen is not None and self.model_type not in ("pytorch", chosen):
            raise ValueError(f"modelType {self.model_type!r} and hyperparameters.model {chosen!r} disagree; set one")
        # the family first: a search space or family knobs are checked against the family that trains
        family = {} if chosen is not None or self.model_type == "pytorch" else {"model": self.model_type}
        self._train = parse_hyperparameters(self.hyperparameters | family)
        return self


class Condition(_Resource):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""
    last_transition_time: str
    observed_generation: int | None = None


class DriftStatus(_Resource):
    """The drift policy's CronJob and its latest finished check."""

    cron_job_name: str | None = None
    last_check_job: str | None = None
    last_check_time: str | None = None
    result: Literal["Drift", "NoDrift", "Failed"] | None = None
    drifted_features: list[str] = Field(default_factory=list)
    retrain: str | None = Field(None, description="What the check's retrain did: not_requested, not_needed, "
                                "submitted, suppressed or failed.")
    message: str | None = None
    run_id: str | None = Field(None, description="The MLflow run of the check (experiment `drift`).")
    report: str | None = Field(None, description="Where the HTML report is, e.g. runs:/<run id>/drift/drift.html.")


class MLTrainingJobStatus(_Resource):
    phase: Literal["Pending", "Suspended", "Queued", "Running", "Succeeded", "Failed"] | None = None
    conditions: list[Condition] = Field(default_factory=list)
    job_name: str | None = None
    run_id: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    gate: Literal["Passed", "Declined"] | None = None
    gate_reasons: list[str] = Field(default_factory=list)
    start_time: str | None = None
    completion_time: str | None = None
    message: str | None = None
    observed_generation: int | None = None
    training_hash: str | None = Field(None, description="Of the fields that train: a change to anything else "
                                      "(drift, suspend) starts no new Job.")
    drift: DriftStatus | None = None
    last_handled_configuration: str | None = Field(
        None, max_length=LAST_HANDLED_MAX_CHARS,
        description="The operator's (kopf's) record of the spec and metadata it last handled, as JSON: what "
                    "it tells a change from.")


def parse_resource_spec(raw: dict[str, Any], *, where: str) -> MLTrainingJobSpec:
    """The resource's spec, or InvalidSpec naming the `spec.` field."""
    try:
        return MLTrainingJobSpec.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        error = (first.get("ctx") or {}).get("error")
        if isinstance(error, HyperparameterError):
            field = f"spec.hyperparameters.{error.key}"
        else:
            field = ".".join(str(p) for p in ("spec", *first["loc"]))
        raise InvalidSpec(f"{where}: {field}: {first['msg'].removeprefix('Value error, ')}") from None


# Fields that do not change what trains: editing them starts no new generation's Job.
NOT_TRAINING = ("drift", "suspend")


def training_hash(raw: dict[str, Any], *, parsed: MLTrainingJobSpec | None = None) -> str:
    """A short digest of the spec's training fields (all but `NOT_TRAINING`).

    Defaults are left out, so a field the API server (or a newer CRD) fills with its default hashes
    as if absent: an upgrade retrains nothing. A spec the model refuses is hashed as written.
    `parsed`: `raw` already parsed (the operator's create path has it), so it is not validated twice.
    """
    import hashlib
    import json

    try:
        kept = (parsed or MLTrainingJobSpec.model_validate(raw)).model_dump(
            mode="json", by_alias=True, exclude_defaults=True, exclude=set(NOT_TRAINING))
    except ValidationError:
        kept = {key: value for key, value in raw.items() if key not in NOT_TRAINING}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]


def to_run_spec(spec: MLTrainingJobSpec, *, name: str, output: str) -> Spec:
    """The `driftloop run` spec the Job's container executes: typed sections merged, nothing re-parsed.

    Raises:
        InvalidSpec: the sections do not make a valid run spec together (e.g. the target listed as a feature).
    """
    train = spec.train.model_copy(update={"device": "cuda"}) if spec.resources.gpu > 0 else spec.train
    try:
        return Spec(
            data=DataSpec(path=spec.data_source.location, target=spec.data_source.target,
                          task=spec.data_source.task, format=spec.data_source.format,
                          read=ReadSpec.model_validate(spec.data_source.read.model_dump(by_alias=False)),
                          drop_missing_target=spec.data_source.drop_missing_target,
                          positive_class=spec.data_source.positive_class),
            # a generation the drift check asked for re-profiles its suite, as a local retrain does
            validation=ValidationSpec(reprofile=(spec.retrain_token or "").startswith(RETRAIN_TOKEN_DRIFT_PREFIX)),
            train=train,
            evaluate=EvaluateSpec.model_validate(spec.evaluate.model_dump(by_alias=False)),
            gate=GateSpec.model_validate(spec.gate.model_dump(by_alias=False)),  # Gate's camelCase names off
            registry=RegistrySpec(model_name=spec.mlflow.model_name or name),
            tracking=TrackingSpec(uri=spec.mlflow.tracking_uri, experiment=spec.mlflow.experiment),
            output=spec.output_path or output)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InvalidSpec(f"{name}: {field}: {first['msg'].removeprefix('Value error, ')}") from None
