"""deploy: register the blessed model with lineage and move `@champion`.

It reads only the blessing: a declined gate records `not_deployed` and touches nothing.
A registration that fails half-way is removed, so no half-written version remains, and
one already made by an earlier attempt (found by its `once_by` tags) is finished, not repeated.
Rolling serving onto the new version is serving's business: the runners do it after deploy.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from driftloop import __version__
from driftloop.components.gate import Blessing
from driftloop.constants import (
    CHAMPION_ALIAS,
    TAG_DATA_SHA256,
    TAG_DATA_URI,
    TAG_GATED_AGAINST,
    TAG_ROLLED_BACK,
    TAG_RUN_ID,
    TAG_SPEC_SHA256,
    TAG_TASK,
    TAG_VERSION,
)
from driftloop.errors import ChampionMoved

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
    """Register and promote the run's model when `blessing` passed, over the champion it was gated against.

    Args:
        tags: added to the lineage tags, e.g. the MLTrainingJob that asked for this version.
        once_by: keys of `tags` that identify this registration: a version already carrying
            them is promoted (if it is not yet) instead of registering a second one.

    Raises:
        ChampionMoved: `@champion` is no longer the version the gate compared with (another run promoted
            meanwhile); nothing is registered.
    """
    if not blessing.passed:
        return DeployResult(False, model_name, None, None)
    tags = dict(tags or {})
    identity = {key: tags[key] for key in once_by}
    existing = finish_registered(gateway, model_name, identity) if identity else None
    if existing is not None:
        return existing
    current = gateway.champion(model_name)
    _still_gated_against(model_name, current, blessing.champion_version, what="this run")
    lineage = {TAG_RUN_ID: run_id, TAG_DATA_URI: data_uri, TAG_DATA_SHA256: data_sha256,
               TAG_SPEC_SHA256: spec_sha256, TAG_VERSION: __version__, TAG_TASK: task,
               TAG_GATED_AGAINST: blessing.champion_version or NO_CHAMPION, **tags}
    version = gateway.register_candidate(model_name, run_id, tags=lineage)
    try:
        promotion = gateway.promote(model_name, version.version)
    except BaseException:
        with contextlib.suppress(Exception):  # the promotion's own error is the one to report
            _withdraw(gateway, model_name, str(version.version), restore=str(current.version) if current else None)
        raise
    return DeployResult(True, model_name, promotion.version, promotion.previous)


NO_CHAMPION = "none"  # TAG_GATED_AGAINST of a version gated when the model had no champion


def _still_gated_against(model_name: str, current: Any, gated_against: str | None, *, what: str) -> None:
    """ChampionMoved unless `@champion` is still `gated_against` (None: there was none)."""
    now = str(current.version) if current is not None else None
    if now != (str(gated_against) if gated_against is not None else None):
        was = f"v{gated_against}" if gated_against is not None else "no champion"
        raise ChampionMoved(f"{model_name}: @champion is now {f'v{now}' if now else 'gone'}, but {what} was gated "
                            f"against {was}: not promoted over a champion it was never compared with; run again to "
                            "compare with the current one")


def _withdraw(gateway: MLflowGateway, model_name: str, version: str, *, restore: str | None) -> None:
    """Delete a version whose promotion failed, `@champion` first put back if the alias had reached it (MLflow
    drops a deleted version's aliases: without this a failed write after the move left no champion at all)."""
    try:
        now = gateway.champion(model_name)
        if now is not None and str(now.version) == version:
            if restore is not None:
                gateway.set_alias(model_name, CHAMPION_ALIAS, restore)
            else:
                gateway.delete_alias(model_name, CHAMPION_ALIAS)
    finally:
        gateway.delete_version(model_name, version)
        gateway.drop_from_history(model_name, version)  # written before the alias: it never was champion


def finish_registered(gateway: MLflowGateway, model_name: str, identity: dict[str, str]) -> DeployResult | None:
    """The version an earlier attempt registered under `identity` (tags), promoted now if it never was; None if none.

    An attempt can die between registering and promoting (a pod killed, a node lost): its retry
    finishes that version instead of making a second one, over the champion it was gated against only.
    A version a user rolled back (`driftloop rollback`) is never promoted again by a retry.

    Raises:
        ChampionMoved: the version was never promoted and `@champion` moved since its gate.
    """
    existing = gateway.find_version(model_name, identity)
    if existing is None:
        return None
    version, previous, tags = str(existing.version), None, dict(existing.tags or {})
    if tags.get(TAG_ROLLED_BACK) == "true":
        return DeployResult(False, model_name, version, None, already_registered=True, run_id=existing.run_id)
    current = gateway.champion(model_name)
    # promoted already: champion now, or champion once and since replaced. Its place in the history is not
    # enough: the history is written before the alias moves, and an attempt can die between the two writes.
    if (current is None or str(current.version) != version) and not gateway.was_champion(model_name, version):
        gated = tags.get(TAG_GATED_AGAINST)
        if gated is not None:  # versions registered before the tag existed are finished as they always were
            _still_gated_against(model_name, current, None if gated == NO_CHAMPION else gated,
                                 what=f"v{version}, registered by an earlier attempt,")
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
