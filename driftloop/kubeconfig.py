"""How every driftloop part finds its Kubernetes API: the pod's service account, else the kubeconfig."""

from __future__ import annotations

import os
from typing import Any


def kube_configuration() -> Any:
    """A `kubernetes.client.Configuration` as kubectl would resolve it.

    $KUBECONFIG is read now: the client library captures it once, when it is first imported.

    Raises:
        kubernetes.config.ConfigException: neither in a pod nor with a usable kubeconfig.
    """
    import kubernetes

    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(config_file=os.environ.get("KUBECONFIG"),
                                           client_configuration=configuration)
    return configuration
