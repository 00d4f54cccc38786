"""A Granian worker's SIGINT and SIGTERM handler that stops it once, however many of those signals arrive.

Granian's worker handler calls `WorkerSignal.set` on every signal, and a second `set` on the same `WorkerSignal`
never returns (it blocks in a futex, no other thread needed). A worker gets two whenever a signal reaches the whole
process group (`timeout`, systemd's control-group stop, `kill -- -PGID`) and Granian's main process then stops it
with one of its own: 4 of 8 such stops hung until the worker was killed 30 s later, and its prediction log and
access log were never flushed (py-spy: the worker's main thread in `signal_handler` -> `WorkerSignal.set`).

Granian's worker looks `granian._signals.set_loop_signals` up when it starts serving, after it imported the app
(`driftloop.serve.rsgi`), which installs this one: so forked and spawned workers (macOS, and Linux where the
default start method is not fork) get it alike.
"""

from __future__ import annotations

import signal
from typing import Any


def install() -> None:
    """Replace Granian's worker-loop signal setup with `set_loop_signals` below."""
    from granian import _signals

    _signals.set_loop_signals = set_loop_signals


def set_loop_signals(loop: Any) -> Any:
    """Granian's `set_loop_signals`, whose handler sets the worker's `WorkerSignal` on the first signal only."""
    from granian._granian import WorkerSignal

    event = WorkerSignal()
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        if not stopping:  # runs on the worker's loop (or, below, between bytecodes of its thread): one at a time
            stopping = True
            event.set()

    signals = [signal.SIGINT, signal.SIGTERM, *([signal.SIGBREAK] if hasattr(signal, "SIGBREAK") else [])]
    try:
        for sig in signals:
            loop.add_signal_handler(sig, stop, sig, None)
    except NotImplementedError:  # a loop without signal support (Windows' proactor), as Granian falls back
        for sig in signals:
            signal.signal(sig, stop)
    return event
