"""A SIGTERM that lands while Python looks a module up still ends the run as KILLED (`killed_on_sigterm`).

Python runs a signal handler in the main thread, wherever that thread was. Stopped in a module lookup
(a finder), it holds the global import lock, and the KILLED write, in another thread, waited on that
lock (MLflow's client tries an import on each request) until the budget was spent: the run was left
open with "MLflow did not answer" though MLflow was fine. Seen in the operator e2e test, with the main
thread importing boto3. Run in a child process, since the handler ends the process (exit 143).
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

    class Tracker:
        def end(self, status, **bounds):
            try:  # as MLflow's client does on each request: an import, which takes Python's import lock
                import driftloop_absent_module
            except ImportError:
                absent = True  # the point is the import's lock, taken either way
            print("ended", status, flush=True)
        def set_tags(self, tags, **bounds): print("tags", tags["driftloop.status"], flush=True)

    class Context:
        run_id, tracker = "r1", Tracker()

    class SlowFinder:  # a lookup that takes its time (a loaded disk): Python holds its import lock meanwhile
        def find_spec(self, name, path=None, target=None):
            if name == "driftloop_slow_to_find":
                os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, inside the import
                time.sleep(1)
            return None

    sys.meta_path.insert(0, SlowFinder())
    with runner.killed_on_sigterm(lambda result: print("reported", result.error, flush=True), budget_s=4):
        runner._running["ctx"] = Context()
        try:
            import driftloop_slow_to_find
        except ImportError:
            print("imported", flush=True)
        time.sleep(30)
''')


def test_a_sigterm_inside_an_import_ends_the_run_once_the_import_is_over() -> None:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60,
                          env=os.environ | {"PYTHONPATH": os.getcwd()})
    seconds = time.monotonic() - started
    lines = done.stdout.splitlines()
    assert done.returncode == 143, (lines, done.stderr[-2000:])
    assert lines == ["imported", "ended KILLED", "tags killed", "reported stopped by SIGTERM"], lines
    assert seconds < 30, seconds  # well before the child's 30 s sleep: the stop did not wait for it to end
