"""Roll the serving targets onto a newly promoted version: the deploy step's last act.

Two kinds of target, both optional (`serving:` in the spec):

- `reload_urls`: running `driftloop serve` instances; each gets `POST /admin/reload`
  (with `Authorization: Bearer $DRIFTLOOP_ADMIN_TOKEN` when that is set) and must answer
  with the promoted version.
- `deployment`: a Kubernetes Deployment (`[namespace/]name`, e.g. the one in
  manifests/serving); its pod template gets the annotation `driftloop.io/model-version`,
  which rolls its pods like `kubectl rollout restart` does, readiness-gated on /readyz.

A target that cannot be rolled does not undo the promotion: the version is the champion
either way and servers also poll the registry. So nothing here raises; each target
yields one line saying what happened, for the run's output.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

MODEL_VERSION_ANNOTATION = "driftloop.io/model-version"
MODEL_ANNOTATION = "driftloop.io/model"
ADMIN_TOKEN_ENV = "DRIFTLOOP_ADMIN_TOKEN"


def roll_out(serving: Any, model_name: str, version: str) -> list[str]:
    """Reload every listed server and roll the Deployment; one line per target."""
    lines = [reload_server(url, version) for url in serving.reload_urls]
    if serving.deployment:
        lines.append(roll_deployment(serving.deployment, model_name, version))
    return lines


def reload_server(url: str, version: str, *, timeout: float = 120) -> str:
    endpoint = f"{url.rstrip('/')}/admin/reload"
    headers = {"Authorization": f"Bearer {os.environ[ADMIN_TOKEN_ENV]}"} if os.environ.get(ADMIN_TOKEN_ENV) else {}
    request = urllib.request.Request(endpoint, method="POST", data=b"", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as e:
        return f"warning: {endpoint} answered {e.code}: {e.read()[:200].decode(errors='replace')}"
    except (OSError, ValueError) as e:
        return f"warning: could not reload {endpoint}: {e}"
    if answer.get("version") != str(version):
        return f"warning: {endpoint} serves v{answer.get('version')}, not v{version} (is it following another alias?)"
    return f"reloaded {url} → v{version}"


def roll_deployment(target: str, model_name: str, version: str) -> str:
    """Patch the pod template's model-version annotation; Kubernetes rolls the pods."""
    from driftloop.k8s_gateway import Cluster, current_namespace

    namespace, _, name = target.rpartition("/")
    try:
        namespace = namespace or current_namespace()
        annotations = {MODEL_VERSION_ANNOTATION: str(version), MODEL_ANNOTATION: model_name}
        with Cluster.connect() as cluster:  # closes its connection pool: a run must not hold sockets open
            cluster.patch_pod_template(namespace, name, annotations=annotations)
    except Exception as e:  # no configuration, API unreachable, RBAC, no such Deployment: the line says which
        # (broad on purpose: a promoted version stays promoted whatever a serving target does)
        reason = getattr(e, "reason", None) or str(e).splitlines()[0][:200]
        return f"warning: could not roll deployment {namespace or 'default'}/{name}: {reason}"
    return f"rolling deployment {namespace}/{name} → v{version}"
