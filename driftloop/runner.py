"""The in-process runner: the steps of `components.steps.STEPS` in order, in one process, one MLflow run.

This is what `driftloop run` does, and what an MLTrainingJob's container runs. Each
step is its executor, called with the outputs of the steps before it; after a deploy,
the serving targets are rolled onto the new version (`roll_out_serving`).
"""

from __future__ import annotations

import _imp  # the import lock's state (CPython's importlib uses it too)
import contextlib
import functools
import json
import math
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from driftloop.components.steps import STEP_NAMES, step
from driftloop.console import Console
from driftloop.constants import (
    DEFAULT_HOME,
    ENV_TERMINATION_GRACE_S,
    EVALUATION_DIR,
    FEATURES_DIR,
    METRICS,
    PARAM_DROPPED_MISSING_TARGET,
    RUN_TAG_DEPLOYED,
    RUN_TAG_ERROR,
    RUN_TAG_STATUS,
    TERMINATION_GRACE_S,
    TRAIN_DIR,
    VALIDATION_DIR,
)
from driftloop.errors import DriftloopError
from driftloop.spec import Spec

if TYPE_CHECKING:
    from driftloop.components.context import RunContext
    from driftloop.components.deploy import DeployResult


@dataclass
class StepRecord:
    name: str
    status: str = "skipped"  # completed | failed | skipped
    seconds: float = 0.0


@dataclass
class RunResult:
    status: str = "failed"
    deployed: bool = False
    gate: dict[str, Any] = field(default_factory=lambda: {"passed": False, "reasons": []})
    metrics: dict[str, float] = field(default_factory=dict)
    model_name: str = ""
    model_version: str | None = None
    run_id: str | None = None
    steps: list[StepRecord] = field(default_factory=lambda: [StepRecord(n) for n in STEP_NAMES])
    error: str | None = None  # the one line a user sees
    traceback: str | None = None  # only for internal errors, shown with --debug
    exit_code: int = 1
    retryable: bool = True  # False when the failure was the input's (data, spec): no retry can succeed
    champion_metrics: dict[str, float] | None = None
    champion_version: str | None = None
    trained_model: str | None = None  # the family served (mlp, gbm, linear, module); for the summary
    candidates: dict[str, float] = field(default_factory=dict)  # train.model auto: family -> validation score
    candidate_metric: str = ""
    already_registered: bool = False  # an earlier attempt (same `once_by` tags) had registered the version

    def to_json(self) -> dict[str, Any]:
        """The documented `--json` shape, exactly; a failed (or killed) run adds its one-line `error`, and a
        run that found its version registered by an earlier attempt adds `already_registered`.

        The outcome travels in the JSON because a training pod's termination message is this JSON:
        the operator reads what the pod did (version, gate, error) from it, without asking MLflow.
        """
        shown = {"status": self.status, "deployed": self.deployed, "gate": self.gate, "metrics": self.metrics,
                 "model_name": self.model_name, "model_version": self.model_version, "run_id": self.run_id,
                 "steps": [{"name": s.name, "status": s.status, "seconds": round(s.seconds, 3)} for s in self.steps]}
        if self.already_registered:
            shown["already_registered"] = True
        return shown | ({"error": self.error} if self.status in ("failed", "killed") and self.error else {})

    def to_brief_json(self, max_bytes: int) -> dict[str, Any]:
        """`to_json` cut to at most `max_bytes` of compact JSON: step times, then metrics, then gate reasons go.

        A pod's termination message holds 4 KiB and the kubelet cuts what is longer, which leaves
        JSON no one can parse; what stays (status, version, run id, gate, error) is what the operator reads.
        """
        shown = self.to_json()
        for dropped in ("steps", "metrics"):
            if _size(shown) <= max_bytes:
                return shown
            shown.pop(dropped)
        reasons = list(shown["gate"]["reasons"])
        kept = len(reasons)
        while kept and _size(shown) > max_bytes:
            kept -= 1
            more = [f"… {len(reasons) - kept} more in the run's evaluation report"]
            shown["gate"] = {"passed": shown["gate"]["passed"], "reasons": [r[:300] for r in reasons[:kept]] + more}
        if _size(shown) > max_bytes and shown.get("error"):
            shown["error"] = shown["error"][:max(80, max_bytes - _size(shown | {"error": ""}) - 8)] + "…"
        return shown

    def record(self, name: str) -> StepRecord:
        return next(s for s in self.steps if s.name == name)


def _size(shown: dict[str, Any]) -> int:
    return len(brief_text(shown).encode())


def brief_text(shown: dict[str, Any]) -> str:
    """JSON without the spaces `--json`'s indented form spends (a termination message counts bytes)."""
    return json.dumps(shown, separators=(",", ":"), ensure_ascii=False, default=str)


class _Pipeline:
    """Runs each step's executor under the console's progress line and records its status and time."""

    def __init__(self, ctx: RunContext, console: Console, result: RunResult) -> None:
        self.ctx, self.console, self.result = ctx, console, result

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        record = self.result.record(name)
        started = time.perf_counter()
        try:
            with self.console.step(name):
                yield
        except BaseException:
            record.status, record.seconds = "failed", time.perf_counter() - started
            raise
        record.status, record.seconds = "completed", time.perf_counter() - started

    def run(self, name: str, *args: Any, **kwargs: Any) -> Any:
        with self.timed(name):
            return step(name).execute(self.ctx, *args, **kwargs)


def run_pipeline(spec: Spec, *, console: Console, deploy: bool = True, tags: dict[str, str] | None = None,
                 force: bool = False, once_by: tuple[str, ...] = ()) -> RunResult:
    """Run validate → feature → train → evaluate → gate → deploy.

    Never raises for a failure a user can cause: the result says `failed`, carries the
    one-line error and exit code 1, the MLflow run is marked FAILED and nothing is promoted (a
    failure after the promotion, closing the run say, leaves `deployed` and `model_version` set:
    `@champion` did move).

    Args:
        deploy: False stops after the gate and leaves registration to the caller.
        tags: extra tags on the MLflow run and on the version it registers, e.g. the resource that asked for it.
        force: train even when a registered version came from the same data and spec
            (otherwise that version is reported, see `identical_version`, and nothing runs).
        once_by: keys of `tags` that name one registration (an MLTrainingJob's uid and generation):
            a version already carrying their values is finished (promoted if it is not yet) and
            reported, and nothing trains; so a retried pod or a re-created Job registers once.
    """
    from driftloop.components.context import finish_run, start_run

    if deploy and once_by:
        try:
            earlier = registered_by_earlier_attempt(spec, {key: (tags or {})[key] for key in once_by})
        except DriftloopError as e:  # e.g. ChampionMoved: reported as a run's failure, with its JSON and exit code
            return RunResult(model_name=spec.model_name, status="failed", exit_code=1, error=error_line(e),
                             retryable=e.retryable)
        if earlier is not None:
            return earlier
    if deploy and not force:
        unchanged = identical_version(spec)
        if unchanged is not None:
            return unchanged
    result = RunResult(model_name=spec.model_name)
    _running["result"] = result  # what a SIGTERM reports, and (once open) the run it ends: see `killed_on_sigterm`

    def opened(ctx: RunContext) -> None:
        result.run_id = ctx.run_id
        _running["ctx"] = ctx
        _act_on_deferred_stop()

    # The server makes the run before its answer (the id) is back: a SIGTERM meanwhile waits for it.
    _running["opening"] = True
    try:
        ctx = start_run(spec, tags=tags, opened=opened)
    finally:
        _act_on_deferred_stop()  # the open failed with a stop waiting: no run to end, exit as stopped
    local_out, upload_to = _output_dir(spec, ctx.run_id)
    console.info(f"run {ctx.run_id} · model {result.model_name} · tracking {ctx.tracking_uri}")
    try:
        _steps(_Pipeline(ctx, console, result), local_out, stop_at_gate=not deploy, tags=tags or {}, once_by=once_by)
        result.status, result.exit_code = "completed", 0
        finish_run(ctx, None)
    except Exception as e:
        result.error = error_line(e)
        result.status, result.exit_code = "failed", 1
        result.retryable = not isinstance(e, DriftloopError) or e.retryable
        # deployed and model_version stay as the steps left them: a failure after the promotion (closing the MLflow
        # run, a tag) does not move @champion back, and a result saying "not deployed" would hide that it moved
        if not isinstance(e, DriftloopError):
            result.traceback = traceback.format_exc()
        try:
            finish_run(ctx, result.error)
        except Exception:  # the tracking server itself may be what failed; the error line says so
            pass
    finally:
        _running.pop("ctx", None)  # ended (FINISHED or FAILED): a SIGTERM from here on has no run to end
        if upload_to is not None:
            _upload_and_remove(local_out, f"{upload_to.rstrip('/')}/{result.run_id}")
    return result


def _upload_and_remove(local_out: Path, uri: str) -> None:
    """The run's outputs to their s3:// home, then the local scratch copy gone, uploaded or not: a drift loop or a
    notebook that retrains in one process (or on one node) would otherwise fill its disk, run by run."""
    import shutil

    from driftloop.storage import upload_dir

    try:
        upload_dir(local_out, uri)
    finally:
        shutil.rmtree(local_out, ignore_errors=True)


def registered_by_earlier_attempt(spec: Spec, identity: dict[str, str]) -> RunResult | None:
    """The version an earlier attempt registered under `identity` (its tags), as this run's result; None if none.

    Promoted now if that attempt died before promoting it. Checked before a run opens, so a retry
    after a registration trains nothing and opens no second MLflow run.
    """
    from driftloop.components.deploy import finish_registered
    from driftloop.mlflow_gateway import connect

    found = finish_registered(connect(spec.tracking.uri), spec.model_name, identity)
    if found is None:
        return None
    named = ", ".join(f"{key}={value}" for key, value in identity.items())
    reason = (f"PASS v{found.version} was registered for {named} by an earlier attempt; it is @champion"
              if found.deployed else f"PASS v{found.version} was registered for {named} by an earlier attempt and "
                                     "then rolled back; it is not promoted again")
    return RunResult(status="completed", deployed=found.deployed, gate={"passed": True, "reasons": [reason]},
                     model_name=spec.model_name, model_version=found.version, run_id=found.run_id, exit_code=0,
                     already_registered=True)


# The run in flight in this process, for the SIGTERM handler: `ctx` and `result` once the run is open;
# `opening` while it is being opened, and `stop`, a SIGTERM's stop deferred until the open ends.
_running: dict[str, Any] = {}
# What a SIGTERM'd run keeps of the grace period for after its KILLED write: the report (the termination
# message), the exit, and with workers > 1 torchrun passing the signal on and exiting after its worker.
STOP_MARGIN_S = 5.0
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143, as a shell reports a process SIGTERM ended


def stop_budget_s(environ: Mapping[str, str] = os.environ) -> float:
    """The most a SIGTERM'd run waits on MLflow to record KILLED: the grace period less STOP_MARGIN_S.

    The grace period is the pod's terminationGracePeriodSeconds, which the operator also sets as the
    env var ENV_TERMINATION_GRACE_S (one value, so the two cannot drift apart); outside Kubernetes, or
    with a value that is no positive number, it is the operator's default: 20 s, a budget of 15 s. A grace
    period under twice the margin keeps half of it for the margin.
    """
    try:
        grace_s = float(environ.get(ENV_TERMINATION_GRACE_S) or TERMINATION_GRACE_S)
    except ValueError:
        grace_s = TERMINATION_GRACE_S
    if not (math.isfinite(grace_s) and grace_s > 0):
        grace_s = TERMINATION_GRACE_S
    return grace_s - min(STOP_MARGIN_S, grace_s / 2)


@contextmanager
def killed_on_sigterm(report: Callable[[RunResult], None], *, budget_s: float | None = None,
                      reason: str = "stopped by SIGTERM") -> Iterator[None]:
    """While inside, a SIGTERM ends the run as KILLED in MLflow (tags `driftloop.status: killed` and
    `driftloop.error: reason`), passes the result to `report`, and exits 143.

    How a training pod stops when its Job is deleted (superseded, the resource deleted) or the pod
    is evicted: the kubelet sends SIGTERM, then SIGKILL after the grace period. MLflow may be slow or
    hang, so the KILLED write runs in a thread given `budget_s` (default `stop_budget_s()`); past it the
    run is left open and the pod still exits in time. The handler exits itself (not an exception up the
    stack), so no cleanup on the way (an S3 upload, a half-made version's removal) can outlast the grace period.
    """
    budget_s = stop_budget_s() if budget_s is None else budget_s
    once = threading.Lock()  # the signal handler and the deferred stop's timer: whichever comes first ends it

    def end_and_exit(deadline: float) -> None:
        if not once.acquire(blocking=False):
            threading.Event().wait()  # the other one is ending the run and exits the process: never train on
        ctx, result = _running.get("ctx"), _running.get("result") or RunResult()
        # what it did so far stays (a version deployed before the signal was deployed): only the status changes
        result.status, result.error, result.exit_code = "killed", reason, EXIT_TERMINATED
        if ctx is not None:
            result.error += _end_killed(ctx, reason, budget_s, deadline)
        try:
            report(result)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_TERMINATED)

    signalled: list[float] = []  # the first SIGTERM's deadline: the budget runs from it, however long the stop waits

    def stop(signum: int, frame: FrameType | None) -> None:
        if not signalled:
            signalled.append(time.monotonic() + budget_s)
            # should the stop still be waiting on an import (below) when the budget is spent: exit regardless
            _after(budget_s, end_and_exit, signalled[0])
        deadline = signalled[0]
        if _imp.lock_held():
            # The main thread was stopped while looking a module up, holding Python's global import lock:
            # blocked here, it would hold it while the KILLED write, in a thread, waits on it (MLflow's client
            # tries an import on each request) until the budget is spent. Let the lookup end (a moment; not
            # the whole import, whose module body runs without that lock); the signal comes again.
            _after(_IMPORT_RECHECK_S, signal.pthread_kill, threading.main_thread().ident, signal.SIGTERM)
            return
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut this one short
        if _running.get("opening") and _running.get("ctx") is None:
            # Mid-open, the run may exist on the server already with no id here to end it by: exiting
            # now would leave it RUNNING for good. The open's end acts on the stop; a hung open is cut
            # short half-way through the budget, so the pod still exits in its grace period.
            _running["stop"] = functools.partial(end_and_exit, deadline)
            _after(max(deadline - budget_s / 2 - time.monotonic(), 0.0), end_and_exit, deadline)
            return
        end_and_exit(deadline)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        with _signals_interrupt_the_main_thread(signal.SIGTERM):
            yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _running.clear()


@contextmanager
def _signals_interrupt_the_main_thread(signum: int) -> Iterator[None]:
    """While inside, a `signum` sent to the process interrupts whatever the main thread waits on.

    Python runs a signal's handler in the main thread, but the kernel may deliver a process's signal to
    any of its threads (torch's, MLflow's); a main thread blocked in a socket read (a metrics write to
    an overloaded MLflow, with its 20 s timeout and retries) then sees it only once that read ends, which
    can spend the grace period. Python writes each signal's number to a wakeup fd from whichever thread
    got it; a watcher thread reads it and sends the signal on to the main thread, whose read is then
    interrupted and its handler run at once. Nothing is done when the wakeup fd is another's (an asyncio loop's).
    """
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    if previous != -1:
        signal.set_wakeup_fd(previous)
        reader.close()
        writer.close()
        yield
        return

    def forward() -> None:
        with contextlib.suppress(OSError):  # closed on the way out
            while got := reader.recv(64):
                if signum in got:
                    # once is enough: the handler looks again on its own when it defers (mid-lookup)
                    signal.pthread_kill(threading.main_thread().ident or 0, signum)
                    return

    threading.Thread(target=forward, name="signal-to-main", daemon=True).start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(-1)
        writer.close()
        reader.close()


_IMPORT_RECHECK_S = 0.05  # how soon a SIGTERM that came mid-lookup of a module is looked at again


def _after(seconds: float, action: Callable[..., Any], *args: Any) -> None:
    """`action(*args)` in a daemon thread after `seconds`: nothing waits on it at exit."""
    timer = threading.Timer(seconds, action, args=args)
    timer.daemon = True
    timer.start()


def _act_on_deferred_stop() -> None:
    """The open is over (the run's id is known, or it failed): a SIGTERM that came meanwhile ends it now."""
    _running.pop("opening", None)
    deferred = _running.pop("stop", None)
    if deferred is not None:
        deferred()


def _end_killed(ctx: RunContext, reason: str, budget_s: float, deadline: float) -> str:
    """End the run as KILLED by `deadline` (`time.monotonic()`, `budget_s` after the SIGTERM); '' when done,
    else what was not written and why.

    The status first, in one request: it is what says the run is over (an overloaded MLflow that
    answers only one request in time still ends it); the tags, which say why, next. Each request may
    take half the budget before it is sent again: a lost one is retried in time, a slow server still
    has 7.5 s of 15 to answer one (and the tags the rest).
    """
    bounds = {"deadline": deadline, "attempt_s": budget_s / 2}
    written: list[str] = []
    failure: list[BaseException] = []

    def end() -> None:
        try:
            ctx.tracker.end("KILLED", **bounds)
            written.append("status")
            ctx.tracker.set_tags({RUN_TAG_STATUS: "killed", RUN_TAG_ERROR: reason}, **bounds)
            written.append("tags")
        except Exception as e:  # MLflow's own error types, or an unreachable server
            failure.append(e)

    ender = threading.Thread(target=end, name="end-run-killed", daemon=True)  # daemon: a hung call never holds exit
    ender.start()
    ender.join(max(deadline - time.monotonic(), 0.0))
    if "tags" in written:
        return ""
    timed_out = ender.is_alive() or (bool(failure) and isinstance(failure[0], TimeoutError))
    why = (f"MLflow did not answer within {budget_s:g} s" if timed_out or not failure
           else f"{type(failure[0]).__name__}: {str(failure[0]).splitlines()[0][:200] if str(failure[0]) else ''}")
    if "status" in written:
        return f"; run {ctx.run_id} was ended KILLED, but its tags were not written: {why}"
    if timed_out:
        return f"; {why}, so run {ctx.run_id} was left open"
    return f"; run {ctx.run_id} could not be ended: {why}"


def identical_version(spec: Spec) -> RunResult | None:
    """The registered version trained on the same data (content hash) with the same spec, as an `unchanged` result.

    Checked before any step runs, by the lineage tags deploy writes on every version, so an identical
    rerun trains nothing, opens no MLflow run and registers nothing. None when there is no such version,
    or when the data cannot be read (the run then reports that, as its first step).
    """
    from driftloop.constants import TAG_DATA_SHA256, TAG_SPEC_SHA256
    from driftloop.mlflow_gateway import connect
    from driftloop.storage import read_bytes, sha256

    try:
        data_sha256 = sha256(read_bytes(spec.data.path))
    except DriftloopError:
        return None
    found = connect(spec.tracking.uri).find_version(spec.model_name, {TAG_DATA_SHA256: data_sha256,
                                                                     TAG_SPEC_SHA256: spec.digest()})
    if found is None:
        return None
    reason = (f"SKIP v{found.version} was trained on the same data (sha256 {data_sha256[:12]}) with the same spec; "
              f"nothing trained or registered (--force re-trains)")
    # no gate ran: `passed` is null, not false, so a script reading it does not take the rerun for a declined one
    return RunResult(status="unchanged", gate={"passed": None, "reasons": [reason]}, model_name=spec.model_name,
                     model_version=str(found.version), run_id=found.run_id, exit_code=0)


def roll_out_serving(spec: Spec, deployed: DeployResult) -> list[str]:
    """Roll the spec's serving targets onto a newly deployed version; one line per target.

    Every runner calls this after a successful deploy: serving follows deploy, and the
    deploy step itself knows nothing about serving.
    """
    if not deployed.deployed or deployed.version is None:
        return []
    if not (spec.serving.reload_urls or spec.serving.deployment):
        return []
    from driftloop.serve.rollout import roll_out

    return list(roll_out(spec.serving, deployed.model_name, deployed.version))


def run_worker(console: Console) -> int:
    """A torchrun rank other than 0: wait for rank 0's training inputs, train its replica, exit."""
    from driftloop.components.train import fit
    from driftloop.distributed import NO_DISTRIBUTED_FIT, TrainingInputs, active_world, share_training_inputs

    inputs = share_training_inputs(None)
    if inputs == NO_DISTRIBUTED_FIT:
        console.info(f"rank {active_world().rank}: the model trained in rank 0 alone (not a torch model); done")
        return 0
    if not isinstance(inputs, TrainingInputs):
        console.error("rank 0 stopped before training; see its log for the reason")
        return 1
    fit(inputs.x_train, inputs.y_train, inputs.x_val, inputs.y_val, spec=inputs.spec, task=inputs.task,
        n_outputs=inputs.n_outputs)
    console.info(f"rank {active_world().rank}: training done")
    return 0


def error_line(error: BaseException) -> str:
    """The one line a user sees for a failed run."""
    message = str(error) if isinstance(error, DriftloopError) else f"internal error: {type(error).__name__}: {error}"
    return (message.splitlines() or [type(error).__name__])[0]


def _output_dir(spec: Spec, run_id: str) -> tuple[Path, str | None]:
    from driftloop.storage import is_s3

    if spec.output and is_s3(spec.output):
        return Path(tempfile.mkdtemp(prefix="driftloop-")), spec.output
    base = Path(spec.output) if spec.output else Path(DEFAULT_HOME) / "runs"
    out = base / run_id
    out.mkdir(parents=True, exist_ok=True)
    return out, None


def _steps(p: _Pipeline, out: Path, *, stop_at_gate: bool = False, tags: dict[str, str] | None = None,
           once_by: tuple[str, ...] = ()) -> None:
    """Each step's executor, in the table's order, fed the outputs of the steps before it."""
    from driftloop.table import dropped_line, load_training_table

    ctx, result = p.ctx, p.result
    spec = ctx.spec
    champion = ctx.gateway.champion(result.model_name)
    scratch = out / "champion"
    with p.timed("validate"):  # reading the table is part of validating it
        table, dropped = load_training_table(spec.data, left_out=spec.feature.leaves_out)
        ctx.tracker.log_params({PARAM_DROPPED_MISSING_TARGET: dropped})
        if dropped:
            p.console.info(dropped_line(dropped, spec.data))
        validation = step("validate").execute(ctx, table, champion=champion, out_dir=out / VALIDATION_DIR,
                                              scratch=scratch, console=p.console)
    features = p.run("feature", table, roles_path=validation.roles_path, out_dir=out / FEATURES_DIR, champion=champion)
    p.console.info(features.task_line())
    trained = p.run("train", out / FEATURES_DIR, out_dir=out / TRAIN_DIR)
    result.trained_model, result.candidates = trained.model, trained.candidates
    result.candidate_metric = trained.candidate_metric
    evaluation = p.run("evaluate", trained.model_path, out / FEATURES_DIR, onnx_max_abs_diff=trained.onnx_max_abs_diff,
                       onnx_output_scale=trained.onnx_output_scale, champion=champion, out_dir=out / EVALUATION_DIR,
                       scratch=scratch)
    result.metrics = {k: round(v, 6) for k, v in evaluation.metrics.items() if k in METRICS}
    if evaluation.champion and "metrics" in evaluation.champion:
        result.champion_version = evaluation.champion["version"]
        result.champion_metrics = evaluation.champion["metrics"]
    blessing = p.run("gate", evaluation, out_dir=out / EVALUATION_DIR)
    result.gate = {"passed": blessing.passed, "reasons": blessing.reasons}
    if not blessing.passed or stop_at_gate:
        ctx.tracker.set_tags({RUN_TAG_DEPLOYED: "false"})  # registration, if any, is the caller's
        return
    with p.timed("deploy"):  # the rollout follows deploy and is timed with it
        deployed = step("deploy").execute(ctx, blessing, data_sha256=table.sha256, task=features.task, tags=tags,
                                          once_by=once_by)
        # recorded at once: whatever fails from here on, @champion has moved, and the result must say so
        result.deployed, result.model_version = deployed.deployed, deployed.version
        result.already_registered = deployed.already_registered
        for line in roll_out_serving(spec, deployed):
            p.console.info(line)
