"""A drift check's outcome in well under 4 KiB: what a pod's termination message can carry.

The full report (every feature's statistics) lives in the MLflow drift run and the JSON/HTML
files; a Kubernetes termination message is cut at 4096 bytes, and a cut JSON document cannot
be parsed, so the operator reads this summary instead.
"""

from __future__ import annotations

import json
from typing import Any

from driftloop.constants import DRIFT_ARTIFACT_DIR, DRIFT_HTML_FILE

LIMIT_BYTES = 4096
_REASON_CHARS = 600
_NAMES = 8  # time columns named in the summary; the report has them all


def outcome_summary(data: dict[str, Any], *, exit_code: int) -> dict[str, Any]:
    """The decision, the drifted features, where the report is and what the retrain did."""
    retrain = data.get("retrain") or {}
    result = retrain.get("result") or {}
    run_id = data.get("run_id")
    summary: dict[str, Any] = {
        "exit_code": exit_code,
        "is_drift": bool(data.get("is_drift")),
        "drifted_features": list(data.get("drifted_features") or []),
        "features": sum(1 for f in data.get("features") or [] if f.get("tested")),  # the verdict is about these
        "model_name": data.get("model_name"),
        "champion_version": data.get("champion_version"),
        "checked_at": data.get("checked_at"),
        "run_id": run_id,
        "report": f"runs:/{run_id}/{DRIFT_ARTIFACT_DIR}/{DRIFT_HTML_FILE}" if run_id else None,
        "retrain": {"requested": retrain.get("requested"), "status": retrain.get("status"),
                    "reason": (retrain.get("reason") or "")[:_REASON_CHARS] or None,
                    "patched": result.get("patched"), "token": result.get("token")},
        "error": (data.get("error") or "")[:_REASON_CHARS] or None,
        # not part of the decision; named so an operator sees the model extrapolating in time
        "time_columns": [str(c["name"])[:80] for c in data.get("time_columns") or []][:_NAMES],
        "extrapolates_in": [str(c["name"])[:80] for c in data.get("time_columns") or [] if c.get("extrapolates")][:_NAMES],
        "quality_findings": len(data.get("quality") or []),
    }
    # Many drifted features: keep as many names as fit, and say how many there were.
    while len(json.dumps(summary).encode()) > LIMIT_BYTES - 64 and summary["drifted_features"]:
        summary["drifted_count"] = len(data.get("drifted_features") or [])
        summary["drifted_features"] = summary["drifted_features"][:len(summary["drifted_features"]) // 2]
    return summary
