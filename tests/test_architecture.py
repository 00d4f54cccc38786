"""The layout holds: import-linter's contracts (no cycles, layers, one gateway each for MLflow and Kubernetes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import REPO, loaded_after


def test_import_contracts_are_kept(tmp_path: Path) -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(lint), "--cache-dir", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, report[-6000:]
    assert "0 broken" in report, report[-3000:]


def test_importing_the_cli_loads_no_heavy_library() -> None:
    """`driftloop --help` stays instant: the heavy libraries load inside the steps and commands that use them."""
    heavy = ("mlflow", "kubernetes", "kopf", "kfp", "torch", "great_expectations", "alibi_detect", "onnxruntime",
             "pandas")
    assert loaded_after("import driftloop.cli", heavy) == []
