"""The install with the real kubectl: `kubectl apply -k manifests/overlays/dev` on the test cluster, from empty.

One pass creates every object of the build (the CRD, the namespace, RBAC, MLflow, the operator),
and a second pass changes nothing. kubectl speaks JSON to the emulator for every kind the install
has (its requests carry `Accept`/`Content-Type: application/json`; no protobuf). `--validate=false`
is the one concession: kubectl's client-side validation downloads the server's OpenAPI document
(/openapi/v3, else /openapi/v2), which the emulator does not serve; the server's own checks (the
CRD's schema and CEL rules) are what test_crd exercises.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .cluster import LocalCluster
from .conftest import kubectl
from .test_install import build

pytestmark = pytest.mark.slow


@pytest.fixture
def empty(tmp_path: Path) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path) as local:  # no CRD installed: the apply brings it
        yield local


def _apply(cluster: LocalCluster) -> list[str]:
    from ..conftest import REPO

    done = kubectl(cluster, "apply", "-k", str(REPO / "manifests" / "overlays" / "dev"), "--validate=false")
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_kubectl_apply_k_installs_the_dev_overlay_in_one_pass_and_a_second_changes_nothing(
        empty: LocalCluster) -> None:
    objects = build("overlays/dev")
    first = _apply(empty)
    assert len(first) == len(objects) and all(line.endswith(" created") for line in first), first
    for o in objects:  # each one stored as applied, in its namespace
        where = ["-n", o["metadata"]["namespace"]] if o["metadata"].get("namespace") else []
        group = o["apiVersion"].rpartition("/")[0]
        kind = f"{o['kind']}.{group}" if group else o["kind"]
        got = kubectl(empty, "get", kind, o["metadata"]["name"], *where, "-o", "name")
        assert got.returncode == 0, (o["kind"], o["metadata"]["name"], got.stderr)
    second = _apply(empty)
    assert len(second) == len(objects) and all(line.endswith(" unchanged") for line in second), second
