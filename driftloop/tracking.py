"""MLflow tracking: where it lives, a bounded-retry connection check, and one run's logger."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.constants import DEFAULT_HOME
from driftloop.errors import RegistryUnavailable

if TYPE_CHECKING:
    from mlflow import MlflowClient

# MLflow's own HTTP retries default to minutes of backoff; an unreachable server
# should fail in seconds with one line. Users can still override these.
_RETRY_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


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


def connect(tracking_uri: str) -> MlflowClient:
    """A client whose server answered, or RegistryUnavailable naming the URI."""
    for key, value in _RETRY_DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        client.search_experiments(max_results=1)
    except Exception as e:  # requests, sqlalchemy and MLflow each raise their own types
        reason = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise RegistryUnavailable(f"MLflow tracking server unreachable at {tracking_uri} "
                                  f"(after {os.environ['MLFLOW_HTTP_REQUEST_MAX_RETRIES']} retries): {reason}") from e
    return client


def ensure_experiment(client: MlflowClient, name: str, tracking_uri: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    from mlflow.exceptions import MlflowException

    root = local_artifact_root(tracking_uri)
    location = f"{root}/{name}" if root else None
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException as e:  # a concurrent caller created it between our lookup and our create
        if e.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        return client.get_experiment_by_name(name).experiment_id


class Tracker:
    """Logs to one MLflow run; every step gets the same one, by run id, no global state."""

    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        self.client.log_batch(self.run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])

    def log_metrics(self, metrics: dict[str, float], *, step: int | None = None) -> None:
        self.log_metric_series([(metrics, step or 0)])

    def log_metric_series(self, series: list[tuple[dict[str, float], int]]) -> None:
        """Many steps' metrics in one request (MLflow accepts 1000 per batch)."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for values, step in series for k, v in values.items()]
        for start in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[start:start + 1000])

    def set_tags(self, tags: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_artifacts(self, directory: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(self.run_id, str(directory), artifact_path)
