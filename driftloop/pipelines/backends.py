"""What the IR may use on a given KFP backend (`driftloop compile --target-backend VERSION`).

The SDK writes IR for the newest backend. Older 2.x backends refuse two things in it:

- `secretAsEnv` entries with `optional` (and `secretNameParameter`): an older driver stops with
  `unknown field "optional" in kfp_kubernetes.SecretAsEnv` (kubeflow/pipelines#12495). Without
  them the Secret must exist and hold every key (`CREDENTIAL_KEYS`; an empty value is fine): a pod
  whose env names a key the Secret lacks does not start (CreateContainerConfigError).
- an exit task that takes `dsl.PipelineTaskFinalStatus`: an older backend refuses the run with
  `task final status not supported yet` (support: kubeflow/pipelines#11953). Without it the
  tasks close the MLflow run themselves (see `build_training_pipeline(final_status=False)`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from driftloop.errors import UsageError

LATEST = "latest"
# The first backend release (major, minor) that takes each feature.
FINAL_STATUS_SINCE = (2, 14)
OPTIONAL_SECRETS_SINCE = (2, 15)


@dataclass(frozen=True)
class Backend:
    """A KFP backend release; `version` None is the newest (what the SDK writes for)."""

    version: tuple[int, int] | None = None

    @property
    def final_status(self) -> bool:
        return self.version is None or self.version >= FINAL_STATUS_SINCE

    @property
    def optional_secrets(self) -> bool:
        return self.version is None or self.version >= OPTIONAL_SECRETS_SINCE


def parse_backend(text: str | None) -> Backend:
    """`latest`, or a KFP 2.x backend release such as `2.3` or `2.0.5`.

    Raises:
        UsageError: anything else, in one line.
    """
    if text is None or text == LATEST:
        return Backend()
    found = re.fullmatch(r"(\d+)\.(\d+)(?:\.\d+)?", text.strip())
    if not found or int(found.group(1)) != 2:
        raise UsageError(f"--target-backend {text!r}: expected a KFP 2.x backend release such as 2.3, or {LATEST}")
    return Backend((2, int(found.group(2))))


def for_backend(ir_text: str, backend: Backend) -> str:
    """The compiled IR YAML rewritten for `backend`: without the secret fields it would refuse.

    The final-status exit handler is a graph choice, made when the pipeline is built.
    """
    if backend.optional_secrets:
        return ir_text
    import yaml

    lines = ir_text.split("\n")
    header = [line for line in lines[:next((i for i, line in enumerate(lines) if not line.startswith("#")), 0)]]
    documents = [doc for doc in yaml.safe_load_all("\n".join(lines[len(header):])) if doc is not None]
    for document in documents:
        for executor in _executors(document):
            for entry in executor.get("secretAsEnv") or []:
                entry.pop("optional", None)
                entry.pop("secretNameParameter", None)
    body = "---\n".join(yaml.safe_dump(doc, sort_keys=False, width=120) for doc in documents)
    return "\n".join(header + [body])


def _executors(document: dict[str, Any]) -> list[dict[str, Any]]:
    platform = ((document.get("platforms") or {}).get("kubernetes") or {}).get("deploymentSpec") or {}
    return list((platform.get("executors") or {}).values())
