"""`driftloop operator`: the MLTrainingJob operator, run locally against any kubeconfig.

It imports `driftloop.operator.main` (the module `kopf run -m` names, which registers the
kopf handlers and so loads kopf and the kubernetes client) only when the command runs:
`driftloop --help` must not pay for that. Only the operator package imports kopf.
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
    from driftloop.operator import main  # registers the handlers

    main.run(namespaces=namespaces, liveness=liveness, peering=peering, log_format=log_format, verbose=verbose)
