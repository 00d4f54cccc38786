"""The one gateway to MLflow: tracking runs, artifacts and the model registry, in driftloop's terms.

No other module imports mlflow's client (an import-linter contract in `make lint` says so).
Like MLflow's own `MlflowClient`, this is a thin, typed facade: each method validates its
arguments, makes one or two delegated calls, and answers with driftloop's records or
errors, so callers never handle `MlflowException` error codes themselves.

`@champion` is the served version and `@previous` the one it replaced; the order of
champions is kept in a registered-model tag so `rollback` can walk back more than once.

Example:
    >>> mlflow = connect("http://127.0.0.1:5000")
    >>> mlflow.champion("customers").version
    '3'
    >>> tracker = mlflow.start_run("customers", run_name="customers-train", tags={})
    >>> tracker.log_metrics({"accuracy": 0.91})
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.constants import (
    CHAMPION_ALIAS,
    CHAMPION_HISTORY_MAX,
    CHAMPION_HISTORY_TAG,
    DEFAULT_HOME,
    MODEL_ARTIFACT_DIR,
    MODEL_FILE,
    PREVIOUS_ALIAS,
    RUN_TAG_RETRY_PARAM_PREFIX,
    TAG_GATED_AGAINST,
    TAG_PROMOTED,
    TAG_ROLLED_BACK,
)
from driftloop.errors import ArtifactNotFound, ModelNotFound, RegistryUnavailable, UsageError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}$")
# MLflow's own HTTP retries default to minutes of backoff; an unreachable server
# should fail in seconds with one line. Users can still override these.
_RETRY_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}
_MISSING = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")
RUN_STATUSES = ("FINISHED", "FAILED", "KILLED")


@dataclass(frozen=True)
class Promotion:
    model_name: str
    version: str
    previous: str | None


@dataclass(frozen=True)
class RunRecord:
    """One MLflow run as driftloop reads it: its state and everything it was tagged and logged with."""

    run_id: str
    status: str  # RUNNING | FINISHED | FAILED | KILLED
    start_time: int  # ms since the epoch
    experiment_id: str
    artifact_uri: str
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ExperimentRecord:
    experiment_id: str
    name: str
    tags: dict[str, str]
    creation_time: int | None  # ms since the epoch, as the server recorded it
    lifecycle_stage: str


def resolve_tracking_uri(explicit: str | None = None) -> str:
    """The spec's URI, then MLFLOW_TRACKING_URI, then a SQLite store under ./.driftloop/."""
    if explicit:
        return explicit
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    home = Path(DEFAULT_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'mlflow.db'}"


def local_artifact_root(tracking_uri: str) -> str | None:
    """For the local SQLite store, artifacts go beside it rather than into ./mlruns."""
    if tracking_uri.startswith("sqlite:///"):
        return (Path(tracking_uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri()
    return None


def _all_pages(search: Any, **query: Any) -> Iterator[Any]:
    """Every result of an MLflow `search_*` call: the server answers a page at a time (100 by default for
    registered models) with a token for the next."""
    token = None
    while True:
        page = search(max_results=1000, page_token=token, **query)  # within every search's threshold
        yield from page
        token = page.token
        if not token:
            return


def validate_model_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise UsageError(f"model name {name!r} is not valid: use letters, digits, '.', '_' or '-'")
    return name


def connect(tracking_uri: str | None = None) -> MLflowGateway:
    """A gateway whose server answered, or RegistryUnavailable naming the URI.

    Args:
        tracking_uri: as in a spec's `tracking.uri`; None resolves it as `resolve_tracking_uri` does.
    """
    uri = resolve_tracking_uri(tracking_uri)
    for key, value in _RETRY_DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # MLflow prints "View run ... at: URL" to stdout when a run on a server ends; stdout is `--json -`'s alone
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read as mlflow is imported: its level, set there
    import logging

    from mlflow import MlflowClient

    # after the import, which sets mlflow's own logger to INFO: a new SQLite store's "Creating initial MLflow
    # database tables..." would otherwise reach stderr, past `-q`
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.WARNING)

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        client.search_experiments(max_results=1)
    except Exception as e:  # requests, sqlalchemy and MLflow each raise their own types
        reason = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise RegistryUnavailable(f"MLflow tracking server unreachable at {uri} "
                                  f"(after {os.environ['MLFLOW_HTTP_REQUEST_MAX_RETRIES']} retries): {reason}") from e
    return MLflowGateway(client, uri)


def _error_code(error: BaseException) -> str | None:
    return getattr(error, "error_code", None)


class MLflowGateway:
    """Runs, artifacts, experiments and registered models of one tracking server."""

    def __init__(self, client: MlflowClient, tracking_uri: str) -> None:
        self._client = client
        self.tracking_uri = tracking_uri

    # ---- experiments and runs -------------------------------------------------------------

    def ensure_experiment(self, name: str) -> str:
        """The experiment's id, created (with artifacts beside a local store) when missing."""
        from mlflow.exceptions import MlflowException

        experiment = self._client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        root = local_artifact_root(self.tracking_uri)
        try:
            return self._client.create_experiment(name, artifact_location=f"{root}/{name}" if root else None)
        except MlflowException as e:  # a concurrent caller created it between our lookup and our create
            if _error_code(e) != "RESOURCE_ALREADY_EXISTS":
                raise
            return self._client.get_experiment_by_name(name).experiment_id

    def start_run(self, experiment: str, *, run_name: str, tags: dict[str, str]) -> Tracker:
        """A new run in `experiment` (created when missing), tagged with `tags`."""
        run = self._client.create_run(self.ensure_experiment(experiment), run_name=run_name, tags=tags)
        return Tracker(self, run.info.run_id)

    def tracker(self, run_id: str) -> Tracker:
        """Log to an existing run, e.g. one another process (a KFP task, a pod) opened."""
        return Tracker(self, run_id)

    def start_child_run(self, parent_run_id: str, *, run_name: str, tags: dict[str, str]) -> Tracker:
        """A run nested under `parent_run_id` (in its experiment, tagged `mlflow.parentRunId`), e.g. a search trial."""
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        parent = self._client.get_run(parent_run_id)
        run = self._client.create_run(parent.info.experiment_id, run_name=run_name,
                                      tags=tags | {MLFLOW_PARENT_RUN_ID: parent_run_id})
        return Tracker(self, run.info.run_id)

    def get_run(self, run_id: str) -> RunRecord:
        return _run_record(self._client.get_run(run_id))

    def find_run(self, tags: dict[str, str], *, experiment: str,
                 started_after_ms: int | None = None) -> RunRecord | None:
        """The newest run of `experiment` carrying all of `tags` (a tag value '' means: any, but present)."""
        found = self._client.get_experiment_by_name(experiment)
        if found is None:
            return None
        clauses = [f"tags.`{key}` != ''" if value == "" else f"tags.`{key}` = '{value}'" for key, value in tags.items()]
        if started_after_ms is not None:
            clauses.append(f"attributes.start_time >= {started_after_ms}")
        runs = self._client.search_runs([found.experiment_id], " and ".join(clauses),
                                        order_by=["attributes.start_time DESC"], max_results=1)
        return _run_record(runs[0]) if runs else None

    def set_run_tags(self, run_id: str, tags: dict[str, Any], *, deadline: float | None = None,
                     attempt_s: float | None = None) -> None:
        """Set tags on a run; with a `deadline`, in bounded attempts (see `_post_before`)."""
        from mlflow.entities import RunTag

        if deadline is not None and (store := self._rest_store()) is not None:
            # MLflow's REST API (https://mlflow.org/docs/latest/rest-api.html): runs/log-batch
            body = {"run_id": run_id, "tags": [{"key": k, "value": str(v)} for k, v in tags.items()]}
            _post_before(store, "/api/2.0/mlflow/runs/log-batch", body, deadline=deadline, attempt_s=attempt_s)
            return
        self._client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def end_run(self, run_id: str, status: str, *, deadline: float | None = None,
                attempt_s: float | None = None) -> None:
        """Give a run its terminal `status`; with a `deadline`, in bounded attempts (see `_post_before`)."""
        if status not in RUN_STATUSES:
            raise ValueError(f"run status {status!r}: expected one of {RUN_STATUSES}")
        if deadline is not None and (store := self._rest_store()) is not None:
            # MLflow's REST API: runs/update, what `set_terminated` sends (less its flush of async logging)
            body = {"run_id": run_id, "run_uuid": run_id, "status": status, "end_time": int(time.time() * 1000)}
            _post_before(store, "/api/2.0/mlflow/runs/update", body, deadline=deadline, attempt_s=attempt_s)
            return
        self._client.set_terminated(run_id, status)

    def reopen_run(self, run_id: str, *, drop_tags: tuple[str, ...], tags: dict[str, str]) -> None:
        """Put an ended run back to RUNNING, without `drop_tags` and with `tags` (a retried task's run).

        The tags first and the status last: if MLflow fails midway, the run is still ended, and the
        next attempt reopens it again, rather than RUNNING with the failed attempt's error on it.
        """
        if tags:
            self.set_run_tags(run_id, tags)
        for key in drop_tags:
            self._client.delete_tag(run_id, key)
        self._client.update_run(run_id, status="RUNNING")

    def _rest_store(self) -> Any:
        """The tracking server's REST store (its address and credentials, as MLflow resolved them); None for a
        local file or database, where a write is no request that can be lost or wait on a server."""
        from mlflow.store.tracking.rest_store import RestStore

        store = self._client._tracking_client.store
        return store if isinstance(store, RestStore) else None

    def download_artifact(self, run_id: str, artifact_path: str, destination: Path) -> Path:
        """One artifact (file or directory) of a run, downloaded into `destination`.

        Raises:
            ArtifactNotFound: the run has no such artifact (or cannot be read).
        """
        from mlflow.artifacts import download_artifacts
        from mlflow.exceptions import MlflowException

        destination.mkdir(parents=True, exist_ok=True)
        try:
            return Path(download_artifacts(artifact_uri=f"runs:/{run_id}/{artifact_path}", dst_path=str(destination),
                                           tracking_uri=self.tracking_uri))
        except (MlflowException, OSError) as e:
            raise ArtifactNotFound(f"run {run_id} has no artifact {artifact_path!r} at {self.tracking_uri}") from e

    # ---- experiments as records (retrain claims) -------------------------------------------

    def search_experiments(self, filter_string: str, *, include_deleted: bool = False) -> list[ExperimentRecord]:
        """Every experiment matching `filter_string`, all pages."""
        from mlflow.entities import ViewType

        view = ViewType.ALL if include_deleted else ViewType.ACTIVE_ONLY
        return [ExperimentRecord(e.experiment_id, e.name, dict(e.tags or {}), e.creation_time, e.lifecycle_stage)
                for e in _all_pages(self._client.search_experiments, view_type=view, filter_string=filter_string)]

    def create_experiment(self, name: str, *, tags: dict[str, str], artifact_location: str | None = None) -> str | None:
        """The new experiment's id, or None when one of that name exists (a concurrent creator won)."""
        from mlflow.exceptions import MlflowException

        try:
            return self._client.create_experiment(name, artifact_location=artifact_location, tags=tags)
        except MlflowException as e:
            if _error_code(e) != "RESOURCE_ALREADY_EXISTS":
                raise
            return None

    def set_experiment_tags(self, experiment_id: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self._client.set_experiment_tag(experiment_id, key, value)

    # ---- the model registry ------------------------------------------------------------------

    def champion(self, name: str) -> ModelVersion | None:
        """The `@champion` version, or None when the model or the alias does not exist."""
        return self.by_alias(name, CHAMPION_ALIAS)

    def by_alias(self, name: str, alias: str) -> ModelVersion | None:
        """The version `alias` points at, or None when the model or the alias does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            return self._client.get_model_version_by_alias(validate_model_name(name), alias)
        except MlflowException as e:
            if _error_code(e) in _MISSING:
                return None
            raise

    def model_version(self, name: str, version: str | None) -> ModelVersion | None:
        """Version `version` of `name`; None for no version or one that does not exist."""
        from mlflow.exceptions import MlflowException

        if not version:
            return None
        try:
            return self._client.get_model_version(validate_model_name(name), str(version))
        except MlflowException as e:
            if _error_code(e) in _MISSING:
                return None
            raise

    def download_model(self, version: ModelVersion, destination: Path) -> Path:
        """The version's ONNX file, downloaded into `destination`."""
        return self.download_artifact(version.run_id, f"{MODEL_ARTIFACT_DIR}/{MODEL_FILE}", destination)

    def register_candidate(self, name: str, run_id: str, *, tags: dict[str, str]) -> ModelVersion:
        """A new version from the run's `model/` artifact, with lineage tags."""
        from mlflow.exceptions import MlflowException

        validate_model_name(name)
        try:
            self._client.create_registered_model(name)
        except MlflowException as e:
            if _error_code(e) != "RESOURCE_ALREADY_EXISTS":
                raise
        source = f"{self._client.get_run(run_id).info.artifact_uri}/{MODEL_ARTIFACT_DIR}"
        return self._client.create_model_version(name, source, run_id=run_id, tags=tags)

    def find_version(self, name: str, tags: dict[str, str]) -> ModelVersion | None:
        """The newest version carrying all of `tags`, or None; how a retried registration finds its own."""
        from mlflow.exceptions import MlflowException

        validate_model_name(name)
        clauses = [f"name='{name}'"] + [f"tags.`{key}`='{value}'" for key, value in tags.items()]
        try:
            found = self._client.search_model_versions(" and ".join(clauses))
        except MlflowException as e:
            if _error_code(e) == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return max(found, key=lambda v: int(v.version), default=None)

    def delete_version(self, name: str, version: str) -> None:
        self._client.delete_model_version(validate_model_name(name), str(version))

    def set_version_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        validate_model_name(name)
        for key, value in tags.items():
            self._client.set_model_version_tag(name, str(version), key, value)

    def promote(self, name: str, version: str, *, alias: str = CHAMPION_ALIAS) -> Promotion:
        """Move `@champion` to `version`; the former champion becomes `@previous`.

        The history is written first and the alias last: a write that fails before the alias moved leaves
        `@champion` where it was (its caller can delete the new version), and a history entry the alias never
        reached is mended by `rollback`, which starts from the real `@champion`.
        """
        validate_model_name(name)
        current = self.champion(name)
        # a local SQLite store answers versions as ints, a server as strings: compare as strings
        previous = str(current.version) if current is not None and str(current.version) != str(version) else None
        history = self.history(name)
        if not history or history[-1] != str(version):
            history.append(str(version))
        self._client.set_registered_model_tag(name, CHAMPION_HISTORY_TAG, json.dumps(history[-CHAMPION_HISTORY_MAX:]))
        if previous is not None:
            self._client.set_registered_model_alias(name, PREVIOUS_ALIAS, previous)
        self._client.set_registered_model_alias(name, alias, str(version))
        self._client.set_model_version_tag(name, str(version), TAG_PROMOTED, "true")
        return Promotion(name, str(version), previous)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._client.set_registered_model_alias(validate_model_name(name), alias, str(version))

    def delete_alias(self, name: str, alias: str) -> None:
        self._client.delete_registered_model_alias(validate_model_name(name), alias)

    def drop_from_history(self, name: str, version: str) -> None:
        """Take `version` off the end of the champion history (a promotion that failed after writing it)."""
        history = self.history(name)
        if history and history[-1] == str(version):
            self._client.set_registered_model_tag(name, CHAMPION_HISTORY_TAG, json.dumps(history[:-1]))

    def history(self, name: str) -> list[str]:
        """Versions that were champion, oldest first."""
        model = self._registered(name)
        return json.loads(model.tags.get(CHAMPION_HISTORY_TAG, "[]"))

    def rollback(self, name: str) -> Promotion:
        """`@champion` back to the champion before it; `@previous` to the one before that.

        From the real `@champion`: the history is made to end with it first (two promotions at once can lose an
        entry, a promotion that failed after writing it can leave one the alias never reached).
        """
        history = self.history(validate_model_name(name))
        champion = self.champion(name)
        if champion is not None:
            current = str(champion.version)
            history = history[:len(history) - history[::-1].index(current)] if current in history else [*history, current]
        while len(history) >= 2 and not self.was_champion(name, history[-2], history=history):
            del history[-2]  # deleted since, or never reached by the alias (its promotion failed half-way)
        if len(history) < 2:
            raise UsageError(f"model {name!r} has no previous champion to roll back to "
                             f"(champion history: {history or 'empty'})")
        rolled_back, restored = history.pop(), history[-1]
        self._client.set_registered_model_alias(name, CHAMPION_ALIAS, restored)
        if len(history) >= 2:
            self._client.set_registered_model_alias(name, PREVIOUS_ALIAS, history[-2])
        else:
            self._client.delete_registered_model_alias(name, PREVIOUS_ALIAS)
        self._client.set_model_version_tag(name, rolled_back, TAG_ROLLED_BACK, "true")
        self._client.set_registered_model_tag(name, CHAMPION_HISTORY_TAG, json.dumps(history))
        return Promotion(name, restored, rolled_back)

    def was_champion(self, name: str, version: str, *, history: list[str] | None = None) -> bool:
        """Whether `@champion` ever reached `version` (and it still exists): its `driftloop.promoted` tag, or, for a
        version registered before that tag existed, its place in the history (`history`: read already)."""
        from mlflow.exceptions import MlflowException

        try:
            found = self._client.get_model_version(name, str(version))
        except MlflowException as e:
            if _error_code(e) == "RESOURCE_DOES_NOT_EXIST":
                return False
            raise
        tags = dict(found.tags or {})
        if tags.get(TAG_PROMOTED) == "true":
            return True
        return TAG_GATED_AGAINST not in tags and str(version) in (history if history is not None else self.history(name))

    def model_names(self) -> list[str]:
        return sorted(m.name for m in _all_pages(self._client.search_registered_models))

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Each version with its aliases, key metrics and lineage, newest first."""
        self._registered(name)
        rows = []
        for found in _all_pages(self._client.search_model_versions, filter_string=f"name='{name}'"):
            # search results omit aliases in some stores; a direct get has them
            version = self._client.get_model_version(name, found.version)
            metrics = self._client.get_run(version.run_id).data.metrics if version.run_id else {}
            rows.append({"version": str(version.version), "aliases": sorted(version.aliases or []),
                         "metrics": metrics, "tags": dict(version.tags or {}), "run_id": version.run_id,
                         "created": version.creation_timestamp})
        return sorted(rows, key=lambda r: int(r["version"]), reverse=True)

    def _registered(self, name: str) -> Any:
        """The registered model, or ModelNotFound naming the nearest registered name."""
        from mlflow.exceptions import MlflowException

        from driftloop.suggest import nearest

        try:
            return self._client.get_registered_model(name)
        except MlflowException as e:
            if _error_code(e) != "RESOURCE_DOES_NOT_EXIST":
                raise
            try:
                close = nearest(name, self.model_names())
            except MlflowException:  # a server that will not list its models: the miss is still the answer
                close = None
            raise ModelNotFound(f"registered model {name!r} not found at {self.tracking_uri}"
                                + (f"; did you mean {close!r}?" if close else "")) from e

    def require_model(self, name: str) -> None:
        """ModelNotFound (with the nearest name) unless `name` is a registered model."""
        self._registered(name)


class Tracker:
    """Logs to one MLflow run; every step gets the same one, by run id, no global state."""

    def __init__(self, gateway: MLflowGateway, run_id: str) -> None:
        self.gateway = gateway
        self.run_id = run_id
        # an attempt of a task KFP retries: an earlier attempt, failed or killed (an OOM kill leaves the run
        # RUNNING), may have logged other values (`log_params`)
        self.params_may_change = False

    @property
    def _client(self) -> MlflowClient:
        return self.gateway._client

    def log_params(self, params: dict[str, Any]) -> None:
        """Log params. In an attempt of a task KFP retries (`params_may_change`), a value this attempt chose
        otherwise than an earlier one (`model: auto` under its time budget) goes to the tag
        `driftloop.retry_param.<key>`, as MLflow never changes a param; elsewhere a conflict raises."""
        from mlflow.entities import Param, RunTag
        from mlflow.exceptions import MlflowException

        batch = [Param(k, str(v)[:6000]) for k, v in params.items()]
        try:
            self._client.log_batch(self.run_id, params=batch)
        except MlflowException as error:
            if _error_code(error) != "INVALID_PARAMETER_VALUE" or not self.params_may_change:
                raise
            run = self._client.get_run(self.run_id)
            logged, tags = run.data.params, run.data.tags
            fresh = [p for p in batch if p.key not in logged]
            changed = [RunTag(f"{RUN_TAG_RETRY_PARAM_PREFIX}{p.key}", p.value) for p in batch
                       if p.key in logged and logged[p.key] != p.value]
            if fresh or changed:
                self._client.log_batch(self.run_id, params=fresh, tags=changed)
            for p in batch:  # an attempt back on the first one's value: no stale tag says otherwise
                if logged.get(p.key) == p.value and f"{RUN_TAG_RETRY_PARAM_PREFIX}{p.key}" in tags:
                    self._client.delete_tag(self.run_id, f"{RUN_TAG_RETRY_PARAM_PREFIX}{p.key}")

    def log_metrics(self, metrics: dict[str, float], *, step: int | None = None) -> None:
        self.log_metric_series([(metrics, step or 0)])

    def log_metric_series(self, series: list[tuple[dict[str, float], int]]) -> None:
        """Many steps' metrics in one request (MLflow accepts 1000 per batch)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for values, step in series for k, v in values.items()]
        for start in range(0, len(metrics), 1000):
            self._client.log_batch(self.run_id, metrics=metrics[start:start + 1000])

    def set_tags(self, tags: dict[str, Any], *, deadline: float | None = None, attempt_s: float | None = None) -> None:
        self.gateway.set_run_tags(self.run_id, tags, deadline=deadline, attempt_s=attempt_s)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self._client.log_artifact(self.run_id, str(path), artifact_path)

    def log_artifacts(self, directory: Path, artifact_path: str | None = None) -> None:
        self._client.log_artifacts(self.run_id, str(directory), artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        self._client.log_text(self.run_id, text, artifact_file)

    def log_onnx_model(self, model_path: Path, local_dir: Path, artifact_path: str = MODEL_ARTIFACT_DIR) -> None:
        """Log the ONNX file as an MLflow `onnx` model under `artifact_path`, so MLflow tools can load it."""
        import shutil

        import mlflow.onnx
        import onnx

        if local_dir.exists():
            shutil.rmtree(local_dir)
        # One self-contained file: external weight files would not travel with model.onnx.
        mlflow.onnx.save_model(onnx.load(str(model_path)), str(local_dir), save_as_external_data=False,
                               pip_requirements=["onnxruntime", "onnx", "numpy", "pandas"])
        self.log_artifacts(local_dir, artifact_path)

    def end(self, status: str, *, deadline: float | None = None, attempt_s: float | None = None) -> None:
        """End the run with `status`; with a `deadline` (`time.monotonic()`), never past it (see `_post_before`)."""
        self.gateway.end_run(self.run_id, status, deadline=deadline, attempt_s=attempt_s)


_RESEND_AFTER_S = 0.25  # between attempts: a refused connection or a 503 answers at once, and would spin


def _post_before(store: Any, endpoint: str, body: dict[str, Any], *, deadline: float,
                 attempt_s: float | None) -> None:
    """POST `body` to the tracking server until it is accepted, each attempt bounded, none past `deadline`.

    For a write with a hard end (a SIGTERM'd pod's grace period). MLflow's own client waits up to
    MLFLOW_HTTP_REQUEST_TIMEOUT (20 s) for an answer, then backs off between retries, so one request
    lost on the way (a dead connection, a restarted server) could spend all the time there is. Here an
    attempt gets `attempt_s` at most (None: all that is left) and no more than is left, and another is
    sent while time is left; a slow server still gets `attempt_s` to answer each. An answer from MLflow
    (a `RestException`: the run is gone, the request is invalid) is final; anything else (no answer in
    time, no connection, a 5xx or 429) is tried again.

    Args:
        deadline: a `time.monotonic()` value: no attempt is started, or waited on, past it.

    Raises:
        TimeoutError: the deadline passed with the write not accepted.
        RestException: MLflow refused it.
    """
    from mlflow.exceptions import RestException
    from mlflow.utils.rest_utils import http_request, verify_rest_response

    last: Exception | None = None
    while (left := deadline - time.monotonic()) > 0:
        try:
            # max_retries=0: the retries are this loop's, within the deadline, not MLflow's backoff
            answer = http_request(store.get_host_creds(), endpoint, "POST", max_retries=0,
                                  timeout=left if attempt_s is None else min(attempt_s, left), json=body)
            verify_rest_response(answer, endpoint)
            return
        except RestException:
            raise
        except Exception as e:  # MlflowException wrapping requests' timeout, connection and retry errors
            last = e
            time.sleep(max(0.0, min(_RESEND_AFTER_S, deadline - time.monotonic())))
    raise TimeoutError(f"{endpoint}: no answer before the deadline"
                       + (f" ({str(last).splitlines()[0][:160]})" if last and str(last) else "")) from last


def _run_record(run: Any) -> RunRecord:
    return RunRecord(run.info.run_id, run.info.status, run.info.start_time or 0, run.info.experiment_id,
                     run.info.artifact_uri, dict(run.data.tags), dict(run.data.params), dict(run.data.metrics))
