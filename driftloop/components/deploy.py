"""deploy: register the blessed model with lineage and move `@champion`.

It reads only the blessing: a declined gate records `not_deployed` and touches nothing.
A registration that fails half-way is removed, so no half-written version remains, and
one already made by an earlier attempt (found by its `once_by` tags) is finished, not repeated.
Rolling serving onto the new version is serving's business: the runners do it after deploy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from driftloop import __version__
from driftloop.components.gate import Blessing
from driftloop.constants import TAG_DATA_SHA256, TAG_DATA_URI, TAG_RUN_ID, TAG_SPEC_SHA256, TAG_TASK, TAG_VERSION

if TYPE_CHECKING:
    from driftloop.components.context import RunContext
    from driftloop.mlflow_gateway import MLflowGateway


@dataclass(frozen=True)
class DeployResult:
    deployed: bool
    model_name: str
    version: str | None
    previous: str | None
    already_registered: bool = False  # an earlier attempt had registered it; this one finished its promotion
    run_id: str | None = None  # the run the version came from, when an earlier attempt registered it


def run(blessing: Blessing, *, gateway: MLflowGateway, model_name: str, run_id: str, data_uri: str,
        data_sha256: str, spec_sha256: str, task: str, tags: dict[str, str] | None = None,
        once_by: tuple[str, ...] = ()) -> DeployResult:
    """Register and promote the run's model when `blessing` passed.

    Args:
        tags: added to the lineage tags, e.g. the MLTrainingJob that asked for this version.
        once_by: keys of `tags` that identify this registration: a version already carrying
            them is promoted (if it is not yet) instead of registering a second one.
    """
    if not blessing.passed:
        return DeployResult(False, model_name, None, None)
    tags = dict(tags or {})
    identity = {key: tags[key] for key in once_by}
    existing = finish_registered(gateway, model_name, identity) if identity else None
    if existing is not None:
        return existing
    lineage = {TAG_RUN_ID: run_id, TAG_DATA_URI: data_uri, TAG_DATA_SHA256: data_sha256,
               TAG_SPEC_SHA256: spec_sha256, TAG_VERSION: __version__, TAG_TASK: task, **tags}
    version = gateway.register_candidate(model_name, run_id, tags=lineage)
    try:
        promotion = gateway.promote(model_name, version.version)
    except BaseException:
        gateway.delete_version(model_name, version.version)
        raise
    return DeployResult(True, model_name, promotion.version, promotion.previous)


def finish_registered(gateway: MLflowGateway, model_name: str, identity: dict[str, str]) -> DeployResult | None:
    """The version an earlier attempt registered under `identity` (tags), promoted now if it never was; None if none.

    An attempt can die between registering and promoting (a pod killed, a node lost): its retry
    finishes that version instead of making a second one.
    """
    existing = gateway.find_version(model_name, identity)
    if existing is None:
        return None
    version, previous = str(existing.version), None
    if version not in gateway.history(model_name):
        previous = gateway.promote(model_name, version).previous
    return DeployResult(True, model_name, version, previous, already_registered=True, run_id=existing.run_id)


def execute(ctx: RunContext, blessing: Blessing, *, data_sha256: str, task: str, tags: dict[str, str] | None = None,
            once_by: tuple[str, ...] = ()) -> DeployResult:
    """Deploy the run's model per `blessing` (see `run`) and tag the run with the outcome."""
    from driftloop.constants import RUN_TAG_DEPLOYED, RUN_TAG_MODEL_VERSION
    from driftloop.table import full_uri

    spec = ctx.spec
    outcome = run(blessing, gateway=ctx.gateway, model_name=spec.model_name, run_id=ctx.run_id,
                  data_uri=full_uri(spec.data.path), data_sha256=data_sha256, spec_sha256=spec.digest(), task=task, tags=tags,
                  once_by=once_by)
    ctx.tracker.set_tags({RUN_TAG_DEPLOYED: str(outcome.deployed).lower(), RUN_TAG_MODEL_VERSION: outcome.version})
    return outcome
