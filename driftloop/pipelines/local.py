"""`driftloop run --runner kfp-local`: the KFP pipeline executed by `kfp.local.SubprocessRunner`.

Every component runs as its own subprocess in this Python environment, exactly as it
would in its pod, so this is full KFP fidelity without a cluster. Each step's record
(status, seconds) is the one its task printed in kfp.local's log; the outcome is read
back from MLflow (the run, its tags, metrics and the gate's blessing), the same place the in-process runner's outcome lands, so the two report alike.
"""

from __future__ import annotations

import io
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from driftloop.constants import (
    BLESSING_FILE,
    DEFAULT_HOME,
    EVALUATION_DIR,
    METRICS,
    RUN_TAG_DEPLOYED,
    RUN_TAG_ERROR,
    RUN_TAG_MODEL,
    RUN_TAG_MODEL_VERSION,
    RUN_TAG_STATUS,
)
from driftloop.runner import RunResult

if TYPE_CHECKING:
    from driftloop.console import Console
    from driftloop.mlflow_gateway import MLflowGateway
    from driftloop.spec import Spec

# kfp.local's own log lines, once colour codes are stripped.
_STARTED = re.compile(r"Executing task '([\w-]+)'")
_FINISHED = re.compile(r"Task '([\w-]+)' finished with status (\w+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# The last line of a Python traceback (`ValueError: ...`), or what the C runtime prints when a process dies.
_FATAL = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b|^Fatal Python error|^terminate called")


class _TaskLog(io.TextIOBase):
    """Where kfp.local prints: keeps the whole log, records each step as its task reports it.

    A step's record is the one its task printed (`runtime.step_record`); a task that failed
    before its step could report (an import, MLflow unreachable) fails that step. A task that
    failed without printing driftloop's error line (a crash, or kfp's executor failing after
    the step) gives the run's error from its own last output, naming the task, so the user is
    not sent looking for a line that was never printed.
    """

    def __init__(self, console: Console, result: RunResult, log_path: Path) -> None:
        from driftloop.pipelines.pipeline import task_steps

        self.console, self.result, self.log_path = console, result, log_path
        self.lines: list[str] = []
        self._partial = ""
        self._started: dict[str, float] = {}
        self._task_output: list[str] = []  # the running task's lines (kfp.local runs one task at a time)
        self._task_steps = task_steps()  # `open-run` and `finish-run` run no step

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._partial += text
        *complete, self._partial = self._partial.split("\n")
        for line in complete:
            self._line(_ANSI.sub("", line))
        return len(text)

    def _line(self, line: str) -> None:
        from driftloop.pipelines.runtime import ERROR_MARKER, STEP_MARKER

        self.lines.append(line)
        if ERROR_MARKER in line and self.result.error is None:
            self.result.error = line.split(ERROR_MARKER, 1)[1].strip()
        if STEP_MARKER in line:
            name, status, seconds = line.split(STEP_MARKER, 1)[1].split()[:3]
            self._record(name, status, float(seconds))
        elif started := _STARTED.search(line):
            self._started[started.group(1)] = time.perf_counter()
            self._task_output = []
            if started.group(1) in self._task_steps:
                self.console.info(f"… {started.group(1)}")
        elif (finished := _FINISHED.search(line)) and finished.group(2) != "SUCCESS":
            task = finished.group(1)
            if self.result.error is None:
                self.result.error = (f"pipeline task {task} failed without a driftloop error line; its last output: "
                                     f"{self._last_words()} (whole log: {self.log_path})")
            unreported = [n for n in self._task_steps.get(task, ()) if self.result.record(n).status == "skipped"]
            if unreported and not any(self.result.record(n).status == "failed" for n in self._task_steps[task]):
                self._record(unreported[0], "failed", time.perf_counter() - self._started.get(task, time.perf_counter()))
        elif line.strip():
            self._task_output.append(line.strip())

    def _last_words(self) -> str:
        """The running task's exception or crash line, else its last line."""
        fatal = [line for line in self._task_output if _FATAL.search(line)]
        return (fatal or self._task_output or ["(none)"])[-1]

    def _record(self, step: str, status: str, seconds: float) -> None:
        self.console.info(f"{'✓' if status == 'completed' else '✗'} {step:<10} {seconds:6.1f}s")
        record = self.result.record(step)
        record.status, record.seconds = status, seconds


def run_kfp_local(spec: Spec, *, console: Console, pipeline_root: Path | None = None) -> RunResult:
    """Run the compiled pipeline's components locally and report like the in-process runner.

    Raises (before any task starts):
        InvalidSpec: a spec value KFP parameters cannot carry.
        RegistryUnavailable: the MLflow tracking server does not answer.
    """
    import contextlib
    import logging
    import warnings

    from kfp import local

    from driftloop.mlflow_gateway import connect, validate_model_name
    from driftloop.pipelines.parameters import pipeline_arguments
    from driftloop.pipelines.pipeline import build_training_pipeline

    result = RunResult(model_name=validate_model_name(spec.model_name))
    arguments = pipeline_arguments(spec)
    gateway = connect(spec.tracking.uri)
    root = (pipeline_root or _pipeline_root(spec)).resolve()
    pipeline = build_training_pipeline(spec, retries=False)  # see its docstring
    # the workspace under the root too: left to kfp.local, every run leaves a kfp-workspace-* in /tmp
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root),
               workspace_root=str(root / "workspace"), raise_on_error=False)
    log = _TaskLog(console, result, root / "last-run.log")
    started_ms = int(time.time() * 1000)
    root_logger = logging.getLogger()
    level = root_logger.level
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(log):
            # kfp.local warns per task that Kubernetes resources and a non-"python" image mean nothing locally.
            warnings.simplefilter("ignore")
            root_logger.setLevel(logging.ERROR)  # its condition resolver logs on the root logger
            pipeline(**arguments)
    finally:
        root_logger.setLevel(level)
    root.mkdir(parents=True, exist_ok=True)
    log.log_path.write_text("\n".join(log.lines) + "\n", encoding="utf-8")
    _read_outcome(result, gateway, spec, started_ms)
    if result.status != "completed" and result.error is None:
        result.error = f"kfp-local run failed; see {log.log_path}"
    return result


def _pipeline_root(spec: Spec) -> Path:
    """Task outputs go under the spec's local `output`; kfp.local cannot write to s3://, so those stay local."""
    from driftloop.storage import is_s3

    if spec.output and not is_s3(spec.output):
        return Path(spec.output) / "kfp-local"
    return Path(DEFAULT_HOME) / "kfp-local"


def _read_outcome(result: RunResult, gateway: MLflowGateway, spec: Spec, started_ms: int) -> None:
    """Fill `result` from the MLflow run this pipeline run opened, and the blessing its gate task logged."""
    import tempfile

    from driftloop.components.context import experiment_of
    from driftloop.components.gate import Blessing
    from driftloop.errors import ArtifactNotFound
    from driftloop.pipelines.runtime import KFP_RUN_TAG

    run = gateway.find_run({RUN_TAG_MODEL: spec.model_name, KFP_RUN_TAG: ""}, experiment=experiment_of(spec),
                           started_after_ms=started_ms)
    if run is None:
        return
    tags, metrics = run.tags, run.metrics
    result.run_id = run.run_id
    completed = tags.get(RUN_TAG_STATUS) == "completed"
    result.status, result.exit_code = ("completed", 0) if completed else ("failed", 1)
    if not completed and result.error is None:
        result.error = tags.get(RUN_TAG_ERROR)
    result.metrics = {k: round(v, 6) for k, v in metrics.items() if k in METRICS}
    result.deployed = completed and tags.get(RUN_TAG_DEPLOYED) == "true"
    result.model_version = tags.get(RUN_TAG_MODEL_VERSION) if result.deployed else None
    with tempfile.TemporaryDirectory(prefix="driftloop-outcome-") as tmp:
        try:
            path = gateway.download_artifact(run.run_id, f"{EVALUATION_DIR}/{BLESSING_FILE}", Path(tmp))
        except ArtifactNotFound:  # the run failed before the gate
            return
        blessing = Blessing.load(path)
    result.gate = {"passed": blessing.passed, "reasons": blessing.reasons}
    champion = {k.removeprefix("champion_"): v for k, v in metrics.items() if k.startswith("champion_")}
    if champion:
        result.champion_version, result.champion_metrics = blessing.champion_version, champion
