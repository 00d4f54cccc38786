"""A typed facade over the MLflow model registry: aliases only, validated before any call.

`@champion` is the served version and `@previous` the one it replaced; the order of
champions is kept in a registered-model tag so `rollback` can walk back more than once.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.constants import CHAMPION_ALIAS, CHAMPION_HISTORY_TAG, MODEL_ARTIFACT_DIR, MODEL_FILE, PREVIOUS_ALIAS
from driftloop.errors import ModelNotFound, UsageError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}$")


@dataclass(frozen=True)
class Promotion:
    model_name: str
    version: str
    previous: str | None


def validate_model_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise UsageError(f"model name {name!r} is not valid: use letters, digits, '.', '_' or '-'")
    return name


class Registry:
    """Registered models, versions and the champion alias.

    Example:
        >>> registry = Registry(connect(uri), uri)
        >>> registry.champion("customers").version
        '3'
    """

    def __init__(self, client: MlflowClient, tracking_uri: str) -> None:
        self.client = client
        self.tracking_uri = tracking_uri

    def champion(self, name: str) -> ModelVersion | None:
        """The `@champion` version, or None when the model or the alias does not exist."""
        return self._by_alias(validate_model_name(name), CHAMPION_ALIAS)

    def by_alias(self, name: str, alias: str) -> ModelVersion | None:
        """The version `alias` points at, or None when the model or the alias does not exist."""
        return self._by_alias(validate_model_name(name), alias)

    def _by_alias(self, name: str, alias: str) -> ModelVersion | None:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version_by_alias(name, alias)
        except MlflowException as e:
            if e.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                return None
            raise

    def download_model(self, version: ModelVersion, destination: Path) -> Path:
        """The version's ONNX file, downloaded into `destination`."""
        from mlflow.artifacts import download_artifacts

        destination.mkdir(parents=True, exist_ok=True)
        local = download_artifacts(artifact_uri=f"runs:/{version.run_id}/{MODEL_ARTIFACT_DIR}/{MODEL_FILE}",
                                   dst_path=str(destination), tracking_uri=self.tracking_uri)
        return Path(local)

    def register_candidate(self, name: str, run_id: str, *, tags: dict[str, str]) -> ModelVersion:
        """A new version from the run's `model/` artifact, with lineage tags."""
        from mlflow.exceptions import MlflowException

        validate_model_name(name)
        try:
            self.client.create_registered_model(name)
        except MlflowException as e:
            if e.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        source = f"{self.client.get_run(run_id).info.artifact_uri}/{MODEL_ARTIFACT_DIR}"
        return self.client.create_model_version(name, source, run_id=run_id, tags=tags)

    def find_version(self, name: str, tags: dict[str, str]) -> ModelVersion | None:
        """The newest version carrying all of `tags`, or None; how a retried registration finds its own."""
        from mlflow.exceptions import MlflowException

        validate_model_name(name)
        clauses = [f"name='{name}'"] + [f"tags.`{key}`='{value}'" for key, value in tags.items()]
        try:
            found = self.client.search_model_versions(" and ".join(clauses))
        except MlflowException as e:
            if e.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return max(found, key=lambda v: int(v.version), default=None)

    def delete_version(self, name: str, version: str) -> None:
        self.client.delete_model_version(name, version)

    def promote(self, name: str, version: str, *, alias: str = CHAMPION_ALIAS) -> Promotion:
        """Move `@champion` to `version`; the former champion becomes `@previous`."""
        validate_model_name(name)
        current = self.champion(name)
        previous = current.version if current is not None and current.version != str(version) else None
        if previous is not None:
            self.client.set_registered_model_alias(name, PREVIOUS_ALIAS, previous)
        self.client.set_registered_model_alias(name, alias, str(version))
        history = self.history(name)
        if not history or history[-1] != str(version):
            history.append(str(version))
        self.client.set_registered_model_tag(name, CHAMPION_HISTORY_TAG, json.dumps(history))
        return Promotion(name, str(version), previous)

    def history(self, name: str) -> list[str]:
        """Versions that were champion, oldest first."""
        model = self._registered(name)
        return json.loads(model.tags.get(CHAMPION_HISTORY_TAG, "[]"))

    def rollback(self, name: str) -> Promotion:
        """`@champion` back to the champion before it; `@previous` to the one before that."""
        history = self.history(validate_model_name(name))
        if len(history) < 2:
            raise UsageError(f"model {name!r} has no previous champion to roll back to "
                             f"(champion history: {history or 'empty'})")
        rolled_back, restored = history.pop(), history[-1]
        self.client.set_registered_model_alias(name, CHAMPION_ALIAS, restored)
        if len(history) >= 2:
            self.client.set_registered_model_alias(name, PREVIOUS_ALIAS, history[-2])
        else:
            self.client.delete_registered_model_alias(name, PREVIOUS_ALIAS)
        self.client.set_model_version_tag(name, rolled_back, "driftloop.rolled_back", "true")
        self.client.set_registered_model_tag(name, CHAMPION_HISTORY_TAG, json.dumps(history))
        return Promotion(name, restored, rolled_back)

    def model_names(self) -> list[str]:
        return sorted(m.name for m in self.client.search_registered_models())

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Each version with its aliases, key metrics and lineage, newest first."""
        self._registered(name)
        rows = []
        for found in self.client.search_model_versions(f"name='{name}'"):
            # search results omit aliases in some stores; a direct get has them
            version = self.client.get_model_version(name, found.version)
            metrics = self.client.get_run(version.run_id).data.metrics if version.run_id else {}
            rows.append({"version": version.version, "aliases": sorted(version.aliases or []),
                         "metrics": metrics, "tags": dict(version.tags or {}), "run_id": version.run_id,
                         "created": version.creation_timestamp})
        return sorted(rows, key=lambda r: int(r["version"]), reverse=True)

    def _registered(self, name: str) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_registered_model(name)
        except MlflowException as e:
            if e.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise ModelNotFound(f"registered model {name!r} not found at {self.tracking_uri}") from e
            raise
