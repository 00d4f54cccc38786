"""Rules the suite keeps so its tests stay independent of the order xdist runs them in."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).parent
MODEL_FLAG = re.compile(r'"--model",\s*"([\w.-]+)"')
MODEL_CONSTANT = re.compile(r'^\s*MODEL = "([\w.-]+)"', re.MULTILINE)
# `driftloop run --data NAME.csv` without --model registers the model NAME (the file's stem)
RUN_CALL = re.compile(r'"run",\s*"--data",\s*"([\w-]+)\.(?:csv|parquet)"([^)]*)\)')


# names that appear in a module without being trained there
NEVER_REGISTERED = {
    "d": {"test_bad_input.py", "test_bad_input_exit.py"},  # run against a dead tracking server
    "no_such_model": {"drift/test_drift_e2e.py", "serve/test_cli.py"},  # the model that does not exist
    "churn": {"operator/test_drift_render.py"},  # only rendered into a CronJob's arguments
}


def registered_names(source: str) -> set[str]:
    names = set(MODEL_FLAG.findall(source)) | set(MODEL_CONSTANT.findall(source))
    names |= {stem for stem, rest in RUN_CALL.findall(source) if "--model" not in rest}
    return names


def test_registered_model_names_belong_to_one_test_module() -> None:
    """Every module shares the session's one MLflow server, so two modules training the same model name see each
    other's champion (and its validation suite) in whichever order they happen to run: that failed CI once, as
    'column Age expected by the champion suite is missing'. A name may be reused within a module, not across."""
    owners: dict[str, set[str]] = defaultdict(set)
    for path in TESTS.rglob("*.py"):
        if path == Path(__file__):
            continue
        for name in registered_names(path.read_text()):
            owners[name].add(str(path.relative_to(TESTS)))
    shared = {name: sorted(paths) for name, paths in owners.items() if len(paths - NEVER_REGISTERED.get(name, set())) > 1}
    assert not shared, f"model names trained by more than one test module: {shared}"
