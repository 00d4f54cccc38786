"""`driftloop operator`: the MLTrainingJob operator, run locally against any kubeconfig.

It lives outside `driftloop.operator` because importing that package registers the kopf
handlers (as `kopf run -m driftloop.operator` needs) and so imports kopf and the
kubernetes client; `driftloop --help` must not pay for that.
"""

from __future__ import annotations

import click


@click.command("operator")
@click.option("-n", "--namespace", "namespaces", multiple=True, metavar="NS",
              help="Watch these namespaces (repeatable; globs allowed). Default: all namespaces.")
@click.option("--liveness", "liveness", metavar="URL", help="Serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz.")
@click.option("--peering", "peering", metavar="NAME", help="KopfPeering to coordinate replicas (default: standalone).")
@click.option("--log-format", type=click.Choice(["json", "plain", "full"]), default="json", show_default=True)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def operator(namespaces: tuple[str, ...], liveness: str | None, peering: str | None, log_format: str,
             verbose: bool) -> None:
    """Run the MLTrainingJob operator (the same one the cluster's Deployment runs)."""
    import kopf

    import driftloop.operator  # noqa: F401  (registers the handlers)

    kopf.configure(verbose=verbose, log_format=kopf.LogFormat[log_format.upper()], log_prefix=False)
    kopf.run(clusterwide=not namespaces, namespaces=namespaces, liveness_endpoint=liveness,
             standalone=peering is None, peering_name=peering)
