"""A SIGTERM while the MLflow run is being opened still ends that run as KILLED (`killed_on_sigterm`).

The server makes the run before the client has its id; a pod stopped in that moment used to exit
with nothing to end, and the run stayed RUNNING for good. Each case runs in a child process,
since the handler ends the process (exit 143).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

CHILD = textwrap.dedent('''
    import os, signal, sys, time
    from driftloop import runner

    class Tracker:  # `deadline` and `attempt_s` bound each write; these answer at once
        def set_tags(self, tags, **bounds): print("tags", tags["driftloop.status"], flush=True)
        def end(self, status, **bounds): print("ended", status, flush=True)

    class Context:
        run_id, tracker = "r1", Tracker()

    with runner.killed_on_sigterm(lambda result: print("reported", result.status, flush=True), budget_s=2):
        runner._running["opening"] = True
        os.kill(os.getpid(), signal.SIGTERM)  # mid-open: the handler must not exit yet
        print("still opening", flush=True)
        if sys.argv[1] == "opens":
            runner._running["ctx"] = Context()
            runner._act_on_deferred_stop()
        time.sleep(30)  # a hung open: the deferred stop gives up on it half-way through the budget
''')


def _child(case: str) -> tuple[int, list[str], float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", CHILD, case], capture_output=True, text=True, timeout=60,
                          env=os.environ | {"PYTHONPATH": os.getcwd()})
    return done.returncode, done.stdout.splitlines(), time.monotonic() - started


def test_a_sigterm_mid_open_ends_the_run_once_its_id_is_known() -> None:
    code, lines, _ = _child("opens")
    assert code == 143, lines
    # the status first: it is what says the run is over, should MLflow answer only one request in time
    assert lines == ["still opening", "ended KILLED", "tags killed", "reported killed"], lines


def test_a_sigterm_mid_open_still_exits_in_time_when_the_open_hangs() -> None:
    code, lines, seconds = _child("hangs")
    assert code == 143 and lines == ["still opening", "reported killed"], lines
    assert seconds < 10, seconds  # half the 2 s budget, plus the interpreter's start
