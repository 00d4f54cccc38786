"""What a finished training Job's pod reported, read from its termination message: the operator asks no one else.

The pod runs the whole gated pipeline with the resource's own credentials (`secretRef`): it
trains, and when the gate passes it registers and promotes the model itself, exactly once (the
version is tagged with the resource's uid and generation, and a retried pod or a re-created Job
finds it instead of making a second, see `driftloop run --once-by`). It leaves its outcome in the
termination message, compact JSON from `driftloop run --json /dev/termination-log
--json-max-bytes`: run id, gate, version, promoted, already_registered, or its one-line error.
The operator holds no MLflow credentials and calls no user-named URL: it only reads that message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Outcome:
    """A finished generation, as `status` shows it."""

    run_id: str | None
    succeeded: bool
    gate_passed: bool = False
    gate_reasons: list[str] = field(default_factory=list)
    model_version: str | None = None
    promoted: bool = False
    already_registered: bool = False
    error: str | None = None
    readable: bool = True  # False: the pod left no message the operator can read, so gate and version are unknown


def parse_termination_message(message: str | None) -> dict[str, Any]:
    """The JSON `driftloop run --json` left in the termination log; {} if absent or cut short."""
    if not message:
        return {}
    try:
        parsed = json.loads(message)
    except ValueError:  # truncated at 4 KiB, or log lines (FallbackToLogsOnError)
        return {}
    return parsed if isinstance(parsed, dict) and "status" in parsed else {}


def succeeded_outcome(message: str | None, *, job: str) -> Outcome:
    """What the pod of a succeeded Job did: trained, gated and (gate passed) registered and promoted."""
    reported = parse_termination_message(message)
    if not reported:
        left = "no termination message" if not (message or "").strip() else "a termination message that is not " \
            "driftloop's JSON"
        return Outcome(None, True, readable=False,
                       error=f"Job {job} succeeded but its pod left {left}, so its gate and version are unknown")
    gate = reported.get("gate") if isinstance(reported.get("gate"), dict) else {}
    version = reported.get("model_version")
    return Outcome(reported.get("run_id"), True, bool(gate.get("passed")), [str(r) for r in gate.get("reasons") or []],
                   str(version) if version is not None else None, bool(reported.get("deployed")),
                   bool(reported.get("already_registered")))


def failure_message(message: str | None, *, job: str) -> str:
    """The pod's one-line error: its JSON's `error`, else its log's last line (FallbackToLogsOnError), else why not."""
    reported = parse_termination_message(message)
    if reported.get("error"):
        return str(reported["error"])
    lines = (message or "").strip().splitlines()
    if lines and not reported:
        return lines[-1]
    return f"Job {job} failed and its pod left no termination message"
