"""Run every benchmark in its own process and print one table of their results.

Separate processes so one benchmark's imports, threads and caches cannot colour another's.
A missed goal is a result, not an error: the exit status is non-zero only when a
benchmark crashes (non-zero exit or no result file).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
BENCHMARKS = ("runner_overhead", "train_throughput", "kfp_local_ratio", "serve", "serve_grpc", "operator_scale", "drift",
              "model_families", "corpus", "search_gain")
TIMEOUT_S = 1800


def run_one(name: str) -> dict[str, Any] | None:
    """The benchmark's result, or None if it crashed (its output is shown then)."""
    path = RESULTS_DIR / f"{name}.json"
    path.unlink(missing_ok=True)  # a stale file must not pass for this run's result
    print(f"running {name} …", flush=True)
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, str(BENCH_DIR / f"{name}.py")], cwd=BENCH_DIR.parent,
                              capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        print(f"  {name}: timed out after {TIMEOUT_S}s", file=sys.stderr)
        return None
    print(f"  done in {time.perf_counter() - started:.1f}s", flush=True)
    if done.returncode != 0 or not path.exists():
        print(f"  {name}: crashed (exit {done.returncode})\n{done.stdout[-4000:]}{done.stderr[-4000:]}", file=sys.stderr)
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _row(name: str, result: dict[str, Any] | None) -> list[str]:
    if result is None:
        return [name, "-", "-", "-", "-", "CRASHED"]
    goal = result["goal"]
    metric = goal["metric"]
    unit = result.get("unit", "")
    return [name, f"{result['measured']:,.2f} {unit}", f"{result['baseline']:,.2f} {unit}",
            f"{metric} {result[metric]:.3f}", f"{metric} {goal['op']} {goal['value']}",
            "yes" if result["passed_goal"] else "NO"]


def _print_table(title: str, rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"\n{title}")
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main() -> int:
    results = {name: run_one(name) for name in BENCHMARKS}
    rows = [["benchmark", "measured", "baseline", "result", "goal", "met"]] + [_row(n, r) for n, r in results.items()]
    _print_table("results", rows)
    for name, result in results.items():
        if result and result.get("table"):  # a benchmark's per-configuration figures, if it has them
            _print_table(name, [result["table"]["columns"]] + [[str(c) for c in r] for r in result["table"]["rows"]])
    print(f"\nJSON: {RESULTS_DIR}/<name>.json")
    return 1 if any(r is None for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
