"""examples/ci: the workflow is valid YAML with the triggers it promises, and its command line parses."""

from __future__ import annotations

import shlex
import subprocess

import yaml

from driftloop.drift.cli import drift

from ..conftest import REPO

CI = REPO / "examples" / "ci"


def test_workflow_is_scheduled_dispatchable_and_calls_drift() -> None:
    workflow = yaml.safe_load((CI / "drift-check.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert triggers["schedule"][0]["cron"] and "workflow_dispatch" in triggers
    assert triggers["repository_dispatch"]["types"] == ["drift-alert"]
    steps = workflow["jobs"]["drift"]["steps"]
    script = next(s["run"] for s in steps if s.get("id") == "drift")
    command = next(line for line in script.splitlines() if "driftloop drift" in line)
    args = shlex.split(command.replace("\\", "").split("driftloop drift", 1)[1] + " --report drift.html --json drift.json")
    args = [a.replace("$MODEL", "customers").replace("$CURRENT", "live.csv").replace("$RETRAIN", "local")
            .replace("$COOLDOWN", "6h") for a in args]
    context = drift.make_context("drift", args)
    assert context.params["retrain"] == "local" and context.params["cooldown"] == "6h"


def test_shell_example_is_valid_bash_and_explains_itself() -> None:
    script = CI / "drift-check.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    usage = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert usage.returncode != 0 and "usage: drift-check.sh MODEL CURRENT_DATA" in usage.stderr
