"""What `kopf run -m driftloop.operator.main` (and `driftloop operator`) runs: importing it registers the handlers.

Kept apart from the package's `__init__` so that importing `driftloop.operator` (the renderers,
the resource model, the CRD generator) has no side effects.
"""

from __future__ import annotations

import kopf

from driftloop.operator import drift_policy as drift_policy  # noqa: F401  (the drift policy's handlers)
from driftloop.operator import handlers as handlers  # noqa: F401  (the training Job's handlers)


def run(*, namespaces: tuple[str, ...] = (), liveness: str | None = None, peering: str | None = None,
        log_format: str = "json", verbose: bool = False) -> None:
    """Run the operator in this process until it is stopped (what `driftloop operator` calls).

    Args:
        namespaces: watch these (globs allowed); none means the whole cluster.
        liveness: serve kopf's liveness probe at this URL, e.g. http://0.0.0.0:8080/healthz.
        peering: the KopfPeering that lets one replica act at a time; None runs standalone.
        log_format: kopf's log format, `json`, `plain` or `full`.
        verbose: debug logging.
    """
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat[log_format.upper()], log_prefix=False)
    kopf.run(clusterwide=not namespaces, namespaces=namespaces, liveness_endpoint=liveness,
             standalone=peering is None, peering_name=peering)
