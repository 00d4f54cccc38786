"""Shared by the benchmarks: where results go, what machine produced them, and how they are written."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """Enough to tell whether two result files are comparable (same cores, interpreter, torch build)."""
    import torch

    return {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": sys.version.split()[0],
            "torch": torch.__version__, "platform": platform.platform()}


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write `results/<name>.json`; via a `.tmp` (git-ignored) and a rename so a crash never leaves half a file."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    record = {"name": name, **payload, "machine": machine(), "timestamp": datetime.now(UTC).isoformat(timespec="seconds")}
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
