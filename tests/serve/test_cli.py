"""`driftloop serve` refuses what it cannot serve with one line and a non-zero exit, before starting workers."""

from __future__ import annotations

from ..conftest import Cli, free_port


def test_unknown_model(cli: Cli, champion) -> None:
    proc = cli("serve", "--model", "no_such_model", "--port", str(free_port()), timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("error: registered model 'no_such_model' not found at ")
    misspelt = cli("serve", "--model", champion.name[:-1], "--port", str(free_port()), timeout=120)
    assert misspelt.returncode == 1  # as predict says it: the nearest registered name, not "has no @champion"
    assert misspelt.stderr.strip().splitlines()[-1].endswith(f"did you mean {champion.name!r}?")


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


def test_a_stop_signal_landing_while_its_thread_holds_the_event_lock_does_not_hang_it() -> None:
    """Granian's handlers set a threading.Event. A signal that lands while the main thread holds the Event's
    lock (inside a first handler's `set`, or in Granian's own `wait`) runs the handler on that same thread:
    Granian's own handler then waits for that lock forever. Here, the thread goes on, and the server stops."""
    import threading

    from driftloop.serve.command import _granian_server

    for handler, flag in (("signal_handler_interrupt", "interrupt_signal"), ("signal_handler_reload", "reload_signal")):
        server = _granian_server()("driftloop.serve.rsgi:app")
        event = server.main_loop_interrupt

        def interrupted_while_holding_the_lock(server=server, handler=handler) -> None:
            with server.main_loop_interrupt._cond:  # the Event's own lock, as the interrupted thread holds it
                getattr(server, handler)()

        thread = threading.Thread(target=interrupted_while_holding_the_lock, daemon=True)
        thread.start()
        thread.join(timeout=5)
        assert not thread.is_alive(), f"{handler} waited for the lock its own thread held"
        assert getattr(server, flag) and event.wait(timeout=5), f"{handler} did not wake Granian's loop"


def test_a_worker_that_gets_a_second_stop_signal_stops_once() -> None:
    """A signal sent to the whole process group (`timeout`, systemd's stop, `kill -- -PGID`) reaches each worker, and
    Granian's main process then stops it with one of its own. Granian's worker handler called `WorkerSignal.set` again,
    which never returns: the worker hung until it was killed 30 s later (4 of 8 such stops), and its prediction log
    was never flushed. Importing the app (as each worker does before it serves) installs a handler that stops the
    worker once: here a worker loop gets three signals, sets its stop event once, and goes on."""
    import subprocess
    import sys

    code = """if True:
        import asyncio, os, signal
        import granian._granian, granian._signals
        import driftloop.serve.rsgi  # what a worker imports before Granian sets up its signals

        class Counted:  # the stop event, counting its sets; then the real one, which hangs on a second set
            sets = 0
            def set(self):
                Counted.sets += 1

        async def signalled():
            for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGINT):
                os.kill(os.getpid(), sig)
                await asyncio.sleep(0.1)

        real = granian._granian.WorkerSignal
        for event in (Counted, real):
            granian._granian.WorkerSignal = event
            loop = asyncio.new_event_loop()
            granian._signals.set_loop_signals(loop)
            loop.run_until_complete(signalled())
            loop.close()
        print("went on, set", Counted.sets)
    """
    # Granian's own handler blocks the loop for good in the second `set`, and swallows the SIGTERM of a timeout
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "went on, set 1", done.stdout + done.stderr[-2000:]
