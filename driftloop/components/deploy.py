"""deploy: register the blessed model with lineage and move `@champion`.

It reads only the blessing: a declined gate records `not_deployed` and touches nothing.
A registration that fails half-way is removed, so no half-written version remains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from driftloop import __version__
from driftloop.components.gate import Blessing
from driftloop.constants import TAG_DATA_SHA256, TAG_DATA_URI, TAG_RUN_ID, TAG_SPEC_SHA256, TAG_TASK, TAG_VERSION

if TYPE_CHECKING:
    from driftloop.registry import Registry
    from driftloop.spec import ServingSpec


@dataclass(frozen=True)
class DeployResult:
    deployed: bool
    model_name: str
    version: str | None
    previous: str | None
    rollout: tuple[str, ...] = ()  # one line per serving target rolled onto the version


def run(blessing: Blessing, *, registry: Registry, model_name: str, run_id: str, data_uri: str,
        data_sha256: str, spec_sha256: str, task: str, serving: ServingSpec | None = None,
        tags: dict[str, str] | None = None) -> DeployResult:
    """`tags` are added to the lineage tags, e.g. the MLTrainingJob that asked for this version."""
    if not blessing.passed:
        return DeployResult(False, model_name, None, None)
    tags = {TAG_RUN_ID: run_id, TAG_DATA_URI: data_uri, TAG_DATA_SHA256: data_sha256,
            TAG_SPEC_SHA256: spec_sha256, TAG_VERSION: __version__, TAG_TASK: task, **(tags or {})}
    version = registry.register_candidate(model_name, run_id, tags=tags)
    try:
        promotion = registry.promote(model_name, version.version)
    except BaseException:
        registry.delete_version(model_name, version.version)
        raise
    rollout: tuple[str, ...] = ()
    if serving is not None:
        from driftloop.serve.rollout import roll_out

        rollout = tuple(roll_out(serving, model_name, promotion.version))
    return DeployResult(True, model_name, promotion.version, promotion.previous, rollout)
