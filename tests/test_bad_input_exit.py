"""`driftloop run --bad-input-exit CODE`: the exit code a Job's podFailurePolicy fails at once on.

Only failures no retry can fix (the data, the spec) get it; a server that is down keeps exit 1.
"""

from __future__ import annotations

import json

from driftloop.example import customers

from .conftest import Cli, free_port


def test_bad_data_exits_with_the_given_code_and_says_why_in_the_json(cli: Cli) -> None:
    customers(rows=100).drop(columns=["churned"]).to_csv(cli.cwd / "broken.csv", index=False)
    plain = cli("run", "--data", "broken.csv", "--target", "churned", "-q")
    assert plain.returncode == 1, plain.stderr  # unchanged without the option
    told = cli("run", "--data", "broken.csv", "--target", "churned", "-q", "--bad-input-exit", "4",
               "--json", "out.json")
    assert told.returncode == 4, told.stderr
    error = json.loads((cli.cwd / "out.json").read_text())["error"]
    assert "target column 'churned' not found" in error and f"error: {error}" in told.stderr


def test_an_unreachable_server_stays_retryable(cli: Cli) -> None:
    customers(rows=100).to_csv(cli.cwd / "d.csv", index=False)
    cli.env = cli.env | {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    down = cli("run", "--data", "d.csv", "--target", "churned", "-q", "--bad-input-exit", "4")
    assert down.returncode == 1 and "unreachable" in down.stderr, down.stderr
