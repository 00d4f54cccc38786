"""What `kopf run -m driftloop.operator.main` (and `driftloop operator`) runs: importing it registers the handlers.

Kept apart from the package's `__init__` so that importing `driftloop.operator` (the renderers,
the resource model, the CRD generator) has no side effects.
"""

from __future__ import annotations

import logging
import os
import threading

import kopf

from driftloop.operator import drift_policy as drift_policy  # noqa: F401  (the drift policy's handlers)
from driftloop.operator import handlers as handlers  # noqa: F401  (the training Job's handlers)
from driftloop.operator.leader import LeaderElector, LeaseConfig
from driftloop.operator.standby import standby_health

EXIT_LEADERSHIP_LOST = 3  # the pod restarts and comes back as a standby
logger = logging.getLogger("driftloop.operator.leader")


def run(*, namespaces: tuple[str, ...] = (), liveness: str | None = None, lease: LeaseConfig | None = None,
        log_format: str = "json", verbose: bool = False) -> None:
    """Run the operator in this process until it is stopped (what `driftloop operator` calls).

    Args:
        namespaces: watch these (globs allowed); none means the whole cluster.
        liveness: serve kopf's liveness probe at this URL, e.g. http://0.0.0.0:8080/healthz.
        lease: act only while holding this Lease (replicas elect one leader); None acts at once, alone.
        log_format: kopf's log format, `json`, `plain` or `full`.
        verbose: debug logging.
    """
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat[log_format.upper()], log_prefix=False)
    if lease is None:
        kopf.run(clusterwide=not namespaces, namespaces=namespaces, liveness_endpoint=liveness, standalone=True)
        return
    from driftloop.k8s_gateway import Cluster

    elector = LeaderElector(Cluster.connect(), lease)
    with standby_health(liveness):  # a standby is healthy: its probe must not restart it
        elector.acquire()
    stop = threading.Event()
    threading.Thread(target=_lead, args=(elector, stop), name="lease-renewal", daemon=True).start()
    try:
        # No `stop_flag`: kopf would wait for a threading.Event in its default executor, whose shutdown
        # then hangs on SIGTERM until the kill (and a Lease never released). A lost Lease exits the process.
        kopf.run(clusterwide=not namespaces, namespaces=namespaces, liveness_endpoint=liveness, standalone=True)
    finally:
        stop.set()
        elector.release()


def _lead(elector: LeaderElector, stop: threading.Event) -> None:
    """Renew the Lease; once it is lost, exit at once: a standby may be acting within the lease duration."""
    if not elector.renew_until_lost(stop):
        logger.error(f"lost lease {elector.config.namespace}/{elector.config.name}; exiting")
        logging.shutdown()
        os._exit(EXIT_LEADERSHIP_LOST)
