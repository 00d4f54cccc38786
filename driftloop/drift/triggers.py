"""What a drift check does when it found drift: retrain locally, submit a KFP run, or ask the operator.

Each trigger only acts; deciding whether to act (dedupe, cooldown, in flight) is the
claim's job (`driftloop.drift.claims`, called by `driftloop.drift.retrain`), so every
trigger is idempotent in the same way. Triggers sit above the runners: a local one runs the
pipeline in this process, a KFP one submits it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from driftloop.constants import (
    ANNOTATION_RETRAIN_AT,
    ANNOTATION_RETRAIN_KEY,
    EXIT_DRIFT,
    RETRAIN_TOKEN_DRIFT_PREFIX,
    RETRAIN_TOKEN_FIELD,
    RUN_TAG_DEDUPE_KEY,
    RUN_TAG_RETRAIN_OF,
    SPEC_ARTIFACT,
    SUITE_CHANGES_ARTIFACT,
)
from driftloop.errors import ArtifactNotFound, DataError, DriftloopError, ModelNotFound, UsageError

if TYPE_CHECKING:
    import pandas as pd

    from driftloop.console import Console
    from driftloop.drift.claims import Claim
    from driftloop.mlflow_gateway import MLflowGateway
    from driftloop.spec import Spec

RETRAIN_TABLE = "retrain.parquet"
WINDOW_TABLE = "window.parquet"


@dataclass
class RetrainRequest:
    """Everything a trigger needs to start one retrain."""

    model_name: str
    key: str
    reference: pd.DataFrame | None
    current: pd.DataFrame
    target: str | None
    champion_run_id: str | None
    tracking_uri: str
    out_dir: Path
    retrain_data: str = "reference+current"
    window_holdout: float = 0.3
    overrides: list[str] = field(default_factory=list)
    drift_run_id: str | None = None
    claim: int = 0  # the claim's sequence number
    seed: int = 42
    mlflow: MLflowGateway | None = None  # the drift check's connection; made from tracking_uri when None

    def gateway(self) -> MLflowGateway:
        from driftloop.mlflow_gateway import connect

        if self.mlflow is None:
            self.mlflow = connect(self.tracking_uri)
        return self.mlflow


@dataclass
class TriggerResult:
    state: str  # completed | submitted | failed (the claim records it)
    outcome: str  # one line for people
    detail: dict[str, Any] = field(default_factory=dict)
    exit_code: int = EXIT_DRIFT  # drift found; 1 when the retrain itself failed
    trained: bool = True  # False: it failed before training, so its claim frees the cooldown
    remote: str | None = None  # where a submitted retrain runs, for `Trigger.failed_where`


class Trigger(Protocol):
    """What `driftloop.drift.retrain` asks of a trigger."""

    name: str

    def preflight(self) -> str | None:
        """Why a retrain is already under way (so none is claimed), or None."""

    def retrain(self, request: RetrainRequest, console: Console) -> TriggerResult:
        """Start (or run) one retrain; the claim is already held."""

    def failed_where(self, claim: Claim) -> str | None:
        """Why a retrain this trigger submitted (the claim says where: `Claim.remote`) failed where it ran, or
        None: still running, succeeded, or not known here."""


def champion_spec(request: RetrainRequest) -> Spec:
    """The spec stored with the champion's training run: the retrain uses the model's own recipe."""
    import yaml

    from driftloop.spec import validate_spec

    if request.champion_run_id is None:
        raise UsageError(f"a retrain needs the spec stored with @champion of {request.model_name!r}; pass --model "
                         "of a model with a champion")
    try:
        path = request.gateway().download_artifact(request.champion_run_id, SPEC_ARTIFACT,
                                                   request.out_dir / "champion")
    except ArtifactNotFound as e:
        cause = e.__cause__ or e  # MLflow's own words say why
        raise ModelNotFound(f"run {request.champion_run_id} of @champion has no {SPEC_ARTIFACT}: "
                            f"{str(cause).splitlines()[0]}") from e
    return validate_spec(yaml.safe_load(Path(path).read_text(encoding="utf-8")), source=f"champion {SPEC_ARTIFACT}")


def stage_retrain_data(request: RetrainRequest, spec: Spec, destination: str) -> tuple[str, str]:
    """Write the retrain table and the held-out window; return their URIs under `destination`.

    The window is a seeded share of the current rows that the candidate never trains on,
    so candidate and champion are compared on fresh data neither has seen.
    """
    import pandas as pd

    from driftloop.storage import is_s3, upload_dir

    target = spec.data.target
    if target not in request.current.columns:
        raise DataError(f"current data has no target column {target!r}: a local or KFP retrain needs labelled rows "
                        "(or use --retrain k8s, whose job reads its own data source)")
    # rows not yet labelled (a prediction log's newest) neither train nor judge: the window counts labelled rows
    labelled = request.current[target].notna()
    current = request.current.loc[labelled].sample(frac=1.0, random_state=request.seed).reset_index(drop=True)
    n_window = int(round(len(current) * request.window_holdout))
    if n_window < 20 or len(current) - n_window < 20:
        unlabelled = f" (and {int((~labelled).sum())} without a label)" if not labelled.all() else ""
        raise DataError(f"current data has {len(current)} labelled rows{unlabelled}: too few to hold out a window of "
                        f"{request.window_holdout:.0%} and still retrain (need 20 in each)")
    window, fresh = current.iloc[:n_window], current.iloc[n_window:]
    if request.retrain_data == "reference+current":
        if request.reference is None or target not in request.reference.columns:
            raise DataError(f"the reference sample has no target column {target!r}, so it cannot be retrained on; "
                            "set drift.retrain_data=current")
        columns = list(request.reference.columns)
        missing = [c for c in columns if c not in fresh.columns]
        if missing:
            raise DataError(f"current data lacks column {missing[0]!r} of the reference table")
        fresh = pd.concat([request.reference[columns], fresh[columns]], ignore_index=True)
    # absolute: the retrain spec resolves a relative data.path against its own folder, and lineage records absolute paths
    local = (request.out_dir / "retrain" / request.key).resolve()
    local.mkdir(parents=True, exist_ok=True)
    fresh.to_parquet(local / RETRAIN_TABLE, index=False)
    window.to_parquet(local / WINDOW_TABLE, index=False)
    if is_s3(destination):
        prefix = f"{destination.rstrip('/')}/retrain/{request.key}"
        upload_dir(local, prefix)
        return f"{prefix}/{RETRAIN_TABLE}", f"{prefix}/{WINDOW_TABLE}"
    return str(local / RETRAIN_TABLE), str(local / WINDOW_TABLE)


def retrain_spec(request: RetrainRequest, *, data_uri: str, window_uri: str) -> Spec:
    """The champion's spec pointed at the retrain data and window, plus the caller's `--set` overrides.

    The retrain re-profiles its expectation suite from the data it trains on (`validation.reprofile`):
    drift is new categories and wider ranges, and the champion's suite would reject exactly those.
    The caller's `--set validation.…` come after, so `validation.strict=true` keeps the champion's suite.
    """
    from driftloop.spec import load_spec

    spec = champion_spec(request)
    raw = spec.model_dump(mode="json")
    raw["data"].update({"path": data_uri, "format": "parquet"})
    raw["evaluate"]["window"] = window_uri
    raw["validation"]["reprofile"] = True
    raw["registry"]["model_name"] = request.model_name
    raw["tracking"]["uri"] = request.tracking_uri
    path = request.out_dir / "retrain" / request.key / "spec.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    import yaml

    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return load_spec(str(path), overrides=request.overrides)


def _overridden(spec: Spec, overrides: list[str]) -> Spec:
    """`spec` with the caller's `--set KEY=VALUE` overrides applied."""
    from driftloop.spec import apply_override, validate_spec

    raw = spec.model_dump(mode="json")
    for item in overrides:
        apply_override(raw, item)
    return validate_spec(raw, source="champion spec with --set")


class LocalTrigger:
    """Run the pipeline in this process; the same gate decides, plus the window comparison."""

    name = "local"

    def preflight(self) -> str | None:
        return None

    def failed_where(self, claim: Claim) -> str | None:
        return None  # it ran here, and its claim says how it ended

    def retrain(self, request: RetrainRequest, console: Console) -> TriggerResult:
        from driftloop.runner import run_pipeline

        spec = champion_spec(request)
        data_uri, window_uri = stage_retrain_data(request, spec, str(request.out_dir))
        spec = retrain_spec(request, data_uri=data_uri, window_uri=window_uri)
        console.info(f"retraining {request.model_name} in-process on {data_uri} (window {window_uri})")
        result = run_pipeline(spec, console=console)
        if result.run_id:
            request.gateway().set_run_tags(result.run_id, {RUN_TAG_RETRAIN_OF: request.drift_run_id or "",
                                                           RUN_TAG_DEDUPE_KEY: request.key})
        detail = {"run_id": result.run_id, "status": result.status, "deployed": result.deployed,
                  "model_version": result.model_version, "gate": result.gate, "error": result.error}
        changes = _suite_changes(request, result.run_id, request.out_dir / "retrain" / request.key)
        if changes is not None:
            detail["suite_changes"] = changes
        if result.status != "completed":
            trained = result.record("train").status != "skipped"
            return TriggerResult("failed", f"retrain failed: {result.error}", detail, exit_code=1, trained=trained)
        outcome = (f"retrained: v{result.model_version} promoted to @champion" if result.deployed
                   else "retrained: gate declined, @champion unchanged")
        return TriggerResult("completed", outcome, detail)


def _suite_changes(request: RetrainRequest, run_id: str | None, scratch: Path) -> dict[str, Any] | None:
    """What the retrain's re-profiled suite changed against the champion's (its run's `suite_changes.json`)."""
    import json

    if run_id is None:
        return None
    try:
        path = request.gateway().download_artifact(run_id, SUITE_CHANGES_ARTIFACT, scratch / "run")
    except ArtifactNotFound:  # not re-profiled: strict, a declared suite, or validation failed first
        return None
    return json.loads(Path(path).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@dataclass
class KfpTrigger:
    """Submit the training pipeline to Kubeflow Pipelines (the KFP engineer's `submit_pipeline`)."""

    host: str
    experiment: str = "driftloop"
    namespace: str | None = None
    token: str | None = None
    name: str = "kfp"

    def preflight(self) -> str | None:
        self._submit()
        return None

    def failed_where(self, claim: Claim) -> str | None:
        # not yet: learning it needs the run's state from the KFP API; a failed KFP run's drift waits for new data
        return None

    @staticmethod
    def _submit() -> Any:
        try:
            from driftloop.pipelines.submit import submit_pipeline
        except ImportError as e:
            raise DriftloopError("--retrain kfp needs driftloop.pipelines.submit (the Kubeflow Pipelines support), "
                                 f"which this installation lacks ({e})") from e
        return submit_pipeline

    def retrain(self, request: RetrainRequest, console: Console) -> TriggerResult:
        submit_pipeline = self._submit()
        spec = champion_spec(request)
        # the `--set` overrides count here too: the message below offers `--set output=…` as the fix
        output = _overridden(spec, request.overrides).output or ""
        if not output.startswith("s3://"):
            raise UsageError("--retrain kfp stages the retrain data where the cluster can read it: the champion's "
                             "spec needs output=s3://… (or pass --set output=s3://BUCKET/PREFIX)")
        data_uri, window_uri = stage_retrain_data(request, spec, output)
        spec = retrain_spec(request, data_uri=data_uri, window_uri=window_uri)
        run_name = f"{request.model_name}-drift-retrain-{request.key[:8]}"
        submitted = submit_pipeline(spec, host=self.host, experiment=self.experiment, namespace=self.namespace,
                                    token=self.token or os.environ.get("KFP_TOKEN"), run_name=run_name, wait=False)
        detail = {"run_id": submitted.run_id, "experiment_id": submitted.experiment_id, "state": submitted.state,
                  "url": submitted.url, "data": data_uri, "window": window_uri}
        return TriggerResult("submitted", f"submitted KFP run {submitted.run_id} ({submitted.url})", detail)


@dataclass
class K8sTrigger:
    """Ask the MLTrainingJob's operator for a new generation by changing `spec.retrainToken`."""

    job: str
    namespace: str = "default"
    name: str = "k8s"
    _seen: dict[str, Any] | None = field(default=None, init=False, repr=False)  # read by preflight

    def preflight(self) -> str | None:
        """A retrain the operator is already running suppresses another (the resource's status says so)."""
        self._seen = self.read()
        return self.in_flight(self._seen)

    def failed_where(self, claim: Claim) -> str | None:
        """The generation the claim's patch started, if the resource still reads as that generation, Failed."""
        where, _, generation = (claim.remote or "").rpartition("@")
        if where != f"{self.namespace}/{self.job}" or not generation.isdigit():
            return None
        resource = self._seen or self.read()
        status = resource.get("status") or {}
        if str((resource.get("metadata") or {}).get("generation")) != generation \
                or str(status.get("observedGeneration")) != generation or status.get("phase") != "Failed":
            return None
        return (f"MLTrainingJob {where} generation {generation} failed"
                + (f": {status['message'].splitlines()[0][:300]}" if status.get("message") else ""))

    def cluster(self) -> Any:
        """The Kubernetes gateway (`driftloop.k8s_gateway.Cluster`), closed by the caller's `with`."""
        from driftloop.k8s_gateway import Cluster, KubernetesNotConfigured

        try:
            return Cluster.connect()
        except KubernetesNotConfigured as e:
            raise UsageError(f"--retrain k8s: no Kubernetes configuration found ({e}); set KUBECONFIG") from e

    def read(self) -> dict[str, Any]:
        from driftloop.k8s_gateway import KubernetesApiError

        try:
            with self.cluster() as cluster:
                return cluster.read_training_job(self.namespace, self.job)
        except KubernetesApiError as e:
            if e.status == 404:
                raise ModelNotFound(f"MLTrainingJob {self.namespace}/{self.job} not found") from e
            if e.status is None:
                raise DriftloopError(f"Kubernetes API unreachable reading MLTrainingJob {self.namespace}/{self.job}: "
                                     f"{e.reason}") from e
            raise DriftloopError(f"Kubernetes API refused reading MLTrainingJob {self.namespace}/{self.job}: "
                                 f"{e.status} {e.reason}") from e

    def in_flight(self, resource: dict[str, Any]) -> str | None:
        """Why the resource already has a retrain under way, or None.

        A generation not yet observed, or a phase that is not final, means the operator is training.
        """
        status = resource.get("status") or {}
        generation = (resource.get("metadata") or {}).get("generation")
        observed = status.get("observedGeneration")
        phase = status.get("phase")
        if phase in ("Pending", "Running"):
            return f"MLTrainingJob {self.namespace}/{self.job} is {phase} (generation {generation})"
        if generation is not None and observed is not None and int(observed) < int(generation):
            return (f"MLTrainingJob {self.namespace}/{self.job} generation {generation} not yet observed "
                    f"(observedGeneration {observed})")
        return None

    def retrain(self, request: RetrainRequest, console: Console) -> TriggerResult:
        from driftloop.k8s_gateway import KubernetesApiError

        # one token per claim: a claim made after a failed generation must be a change the operator sees
        token = f"{RETRAIN_TOKEN_DRIFT_PREFIX}{request.key}-{request.claim}"
        current = (self.read().get("spec") or {}).get(RETRAIN_TOKEN_FIELD)
        if current == token:
            return TriggerResult("submitted", f"MLTrainingJob {self.namespace}/{self.job} already has "
                                 f"{RETRAIN_TOKEN_FIELD}={token}", {"token": token, "patched": False})
        body = {"metadata": {"annotations": {ANNOTATION_RETRAIN_KEY: request.key,
                                             ANNOTATION_RETRAIN_AT: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}},
                "spec": {RETRAIN_TOKEN_FIELD: token}}
        try:
            with self.cluster() as cluster:
                patched = cluster.patch_training_job(self.namespace, self.job, body)
        except KubernetesApiError as e:
            raise DriftloopError(f"Kubernetes API refused patching MLTrainingJob {self.namespace}/{self.job}: "
                                 f"{e.status} {e.reason}") from e
        generation = (patched.get("metadata") or {}).get("generation")
        console.info(f"asked MLTrainingJob {self.namespace}/{self.job} for a new generation ({RETRAIN_TOKEN_FIELD}={token})")
        return TriggerResult("submitted", f"patched MLTrainingJob {self.namespace}/{self.job} "
                             f"{RETRAIN_TOKEN_FIELD}={token}", {"token": token, "patched": True, "generation": generation},
                             remote=f"{self.namespace}/{self.job}@{generation}" if generation is not None else None)
