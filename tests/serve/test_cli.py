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


def test_a_second_stop_signal_while_the_first_is_handled_returns_at_once() -> None:
    """Granian's stop handler sets a threading.Event; run again while the first run holds the Event's lock (a
    second SIGTERM landing inside `Event.set`, on the same thread), it used to wait for that lock forever."""
    import threading

    from driftloop.serve.command import _granian_server

    server = _granian_server()("driftloop.serve.rsgi:app")
    server.signal_handler_interrupt()  # the first signal: the server is stopping
    assert server.interrupt_signal and server.main_loop_interrupt.is_set()
    with server.main_loop_interrupt._cond:  # the Event's own lock, as the first handler holds it inside `set`
        second = threading.Thread(target=server.signal_handler_interrupt, daemon=True)
        second.start()
        second.join(timeout=5)
        assert not second.is_alive(), "the second stop signal waited for the Event's lock"
