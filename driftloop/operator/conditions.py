"""`metav1.Condition` lists as `status.conditions` holds them: pure functions, no kopf."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def utc_now() -> str:
    """Now, as Kubernetes writes times (RFC 3339, seconds, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(conditions: list[dict[str, Any]], type_: str, status: bool, reason: str,
                  message: str = "", *, generation: int | None = None) -> list[dict[str, Any]]:
    """The list with `type_` set (one per type); its transition time moves only when its status changes.

    Args:
        reason: CamelCase, as `metav1.Condition` wants it.
        generation: the resource's `metadata.generation` the condition was judged at (`observedGeneration`).
    """
    value = "True" if status else "False"
    old = next((c for c in conditions if c.get("type") == type_), None)
    when = old["lastTransitionTime"] if old and old.get("status") == value else utc_now()
    new = {"type": type_, "status": value, "reason": reason, "message": message[:1000], "lastTransitionTime": when}
    if generation is not None:
        new["observedGeneration"] = generation
    return [c for c in conditions if c.get("type") != type_] + [new]
