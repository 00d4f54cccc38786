"""kfp-local against in-process: `driftloop run` wall time on the bundled example, both runners.

What a user waits for, as they type it: `driftloop run --spec examples/customers.yaml`
with `--runner in-process` and with `--runner kfp-local`, each a fresh process with a
fresh SQLite MLflow store (so both do identical work: no champion, same gate). kfp-local
runs each component as its own subprocess (six: open-run, the step tasks of
`driftloop.pipelines.pipeline.task_steps()`, finish-run), so it pays interpreter start-up
and the imports of its own steps per task (MLflow's client in each, torch only in train).
Runs alternate (in-process, kfp-local, …) so load on the machine falls on both alike;
median of REPEATS each. Goal: ratio = kfp-local / in-process <= 2.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import median, write_result

NAME = "kfp_local_ratio"
REPEATS = 3
GOAL_MAX_RATIO = 2.0
REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "examples" / "customers.yaml"


def timed_run(work: Path, runner: str) -> dict[str, Any]:
    """One `driftloop run` in `work`, with its own store; returns wall seconds and the step seconds."""
    import json

    script = Path(sys.executable).with_name("driftloop")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "driftloop"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    started = time.perf_counter()
    subprocess.run([*command, "run", "--spec", str(work / "customers.yaml"), "--runner", runner, "-q",
                    "--json", str(work / "result.json")], cwd=work, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    result = json.loads((work / "result.json").read_text())
    if result["status"] != "completed" or not result["deployed"]:
        raise RuntimeError(f"{runner} run did not complete with a deploy: {result}")
    return {"wall_s": round(wall, 3), "steps_s": {s["name"]: s["seconds"] for s in result["steps"]}}


def prepare(root: Path, name: str) -> Path:
    from driftloop.example import customers

    work = root / name
    (work / "data").mkdir(parents=True)
    customers().to_csv(work / "data" / "customers.csv", index=False)
    shutil.copyfile(SPEC, work / "customers.yaml")  # its data path is relative to the spec file
    return work


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="driftloop-bench-kfp-"))
    runs: dict[str, list[dict[str, Any]]] = {"in-process": [], "kfp-local": []}
    try:
        for i in range(REPEATS):
            for runner in runs:
                runs[runner].append(timed_run(prepare(root, f"{runner}-{i}"), runner))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    inproc = median([r["wall_s"] for r in runs["in-process"]])
    local = median([r["wall_s"] for r in runs["kfp-local"]])
    ratio = local / inproc
    path = write_result(NAME, {
        "unit": "seconds", "measured": round(local, 3), "baseline": round(inproc, 3), "ratio": round(ratio, 3),
        "goal": {"metric": "ratio", "op": "<=", "value": GOAL_MAX_RATIO}, "passed_goal": ratio <= GOAL_MAX_RATIO,
        "notes": "measured = median `driftloop run --runner kfp-local` wall time; baseline = median "
                 "`--runner in-process`; examples/customers.yaml on the 5000-row example, fresh store per run",
        "runs": runs})
    print(f"{NAME}: kfp-local {local:.1f}s vs in-process {inproc:.1f}s, ratio {ratio:.2f} "
          f"(goal <= {GOAL_MAX_RATIO}) -> {path}")


if __name__ == "__main__":
    main()
