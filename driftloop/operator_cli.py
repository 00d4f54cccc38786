"""`driftloop operator`: the MLTrainingJob operator, run locally against any kubeconfig.

It imports `driftloop.operator.main` (the module `kopf run -m` names, which registers the
kopf handlers and so loads kopf and the kubernetes client) only when the command runs:
`driftloop --help` must not pay for that. Only the operator package imports kopf.
"""

from __future__ import annotations

import os
import socket

import click

DEFAULT_LEASE = "driftloop-operator"


@click.command("operator")
@click.option("-n", "--namespace", "namespaces", multiple=True, metavar="NS",
              help="Watch these namespaces (repeatable; globs allowed). Default: all namespaces.")
@click.option("--liveness", "liveness", metavar="URL", help="Serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz.")
@click.option("--lease", default=DEFAULT_LEASE, show_default=True, metavar="NAME",
              help="Act only while holding this coordination.k8s.io Lease: replicas elect one leader.")
@click.option("--lease-namespace", metavar="NS", help="The Lease's namespace [the pod's, else the kubeconfig's].")
@click.option("--lease-duration", type=click.FloatRange(3, 300), default=15.0, show_default=True, metavar="SECONDS",
              help="A standby takes over when the leader has not renewed for this long.")
@click.option("--identity", metavar="ID", help="This replica's name in the Lease [$POD_NAME, else the host name].")
@click.option("--standalone", is_flag=True, help="No leader election: act at once (one replica only).")
@click.option("--log-format", type=click.Choice(["json", "plain", "full"]), default="json", show_default=True)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def operator(namespaces: tuple[str, ...], liveness: str | None, lease: str, lease_namespace: str | None,
             lease_duration: float, identity: str | None, standalone: bool, log_format: str, verbose: bool) -> None:
    """Run the MLTrainingJob operator (the same one the cluster's Deployment runs)."""
    from driftloop.k8s_gateway import current_namespace
    from driftloop.operator import main  # registers the handlers
    from driftloop.operator.leader import LeaseConfig

    # A restarted container keeps its pod's name, so it takes its own Lease back at once.
    config = None if standalone else LeaseConfig(
        namespace=lease_namespace or current_namespace(), name=lease, duration_s=lease_duration,
        identity=identity or os.environ.get("POD_NAME") or socket.gethostname())
    main.run(namespaces=namespaces, liveness=liveness, lease=config, log_format=log_format, verbose=verbose)
