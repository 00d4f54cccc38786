"""`driftloop serve` refuses what it cannot serve with one line and a non-zero exit, before starting workers."""

from __future__ import annotations

from ..conftest import Cli, free_port


def test_unknown_model(cli: Cli, champion) -> None:
    proc = cli("serve", "--model", "no_such_model", "--port", str(free_port()), timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("error: model 'no_such_model' has no @champion version")


def test_unknown_alias(cli: Cli, champion) -> None:
    proc = cli("serve", "--model", champion.name, "--alias", "staging", "--port", str(free_port()), timeout=120)
    assert proc.returncode == 1 and "has no @staging version" in proc.stderr


def test_registry_unreachable(cli: Cli) -> None:
    cli.env |= {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    proc = cli("serve", "--model", "x", "--tracking-uri", f"http://127.0.0.1:{free_port()}", timeout=120)
    assert proc.returncode == 1 and "unreachable" in proc.stderr and "Traceback" not in proc.stderr


def test_usage_errors(cli: Cli) -> None:
    proc = cli("serve", "--prediction-log-rate", "0.5", timeout=120)
    assert proc.returncode == 2 and "--prediction-log-rate needs --prediction-log" in proc.stderr
    proc = cli("serve", "--prediction-log-rate", "1.5", timeout=120)
    assert proc.returncode == 2


def test_port_in_use(cli: Cli) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = cli("serve", "--port", str(port), timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
