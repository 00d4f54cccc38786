"""Ending a generation's MLflow run as KILLED when its Job is stopped (superseded, or the resource deleted).

Bounded: MLflow may be down or hanging, and a delete must not wait on it. The call runs in
its own threads (a hung MLflow never takes the threads the Kubernetes calls need) and is
abandoned after `MLFLOW_BUDGET_S`; the caller records that the run was left open.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from dataclasses import dataclass
from typing import Any

from driftloop.errors import DriftloopError
from driftloop.operator.render import Owner

MLFLOW_BUDGET_S = 10.0  # the most a delete (or a supersede) waits on MLflow, all retries included


@dataclass(frozen=True)
class RunEnd:
    """What became of the run: `killed` (its id), `none` (no run in flight) or `left_open` (why)."""

    outcome: str
    detail: str = ""


def mlflow_location(spec: dict[str, Any], name: str) -> tuple[str | None, str]:
    """The tracking URI and experiment the generation's pod logged to (read raw: the spec may be invalid)."""
    mlflow = spec.get("mlflow") or {}
    return mlflow.get("trackingUri"), mlflow.get("experiment") or mlflow.get("modelName") or name


async def end_run(executor: concurrent.futures.Executor, spec: dict[str, Any], owner: Owner, *, reason: str,
                  budget_s: float = MLFLOW_BUDGET_S) -> RunEnd:
    """End `owner`'s generation's run as KILLED within `budget_s`; never raises."""
    from driftloop.operator.registration import kill_run

    uri, experiment = mlflow_location(spec, owner.name)
    if not uri:
        return RunEnd("none")
    call = functools.partial(kill_run, tracking_uri=uri, owner=owner, experiment=experiment, reason=reason)
    try:
        run_id = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(executor, call), budget_s)
    except TimeoutError:
        return RunEnd("left_open", f"MLflow at {uri} did not answer within {budget_s:g} s")
    except DriftloopError as e:
        return RunEnd("left_open", str(e))
    except Exception as e:  # MLflow's client raises its own types (a refused request, a server error)
        return RunEnd("left_open", f"MLflow at {uri}: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")
    return RunEnd("killed", run_id) if run_id else RunEnd("none")
