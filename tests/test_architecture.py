"""The layout holds: import-linter's contracts (no cycles, layers, one gateway each for MLflow and Kubernetes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import REPO


def test_import_contracts_are_kept(tmp_path: Path) -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(lint), "--cache-dir", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, report[-6000:]
    assert "0 broken" in report, report[-3000:]


def test_importing_the_package_and_the_cli_loads_no_heavy_library() -> None:
    """`driftloop --help` stays instant: mlflow, kubernetes, kopf, kfp and torch load inside the steps that use them."""
    code = ("import sys, driftloop.cli; heavy = {'mlflow', 'kubernetes', 'kopf', 'kfp', 'torch', 'great_expectations',"
            " 'alibi_detect', 'onnxruntime'}; print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", proc.stdout


def test_importing_the_operator_package_registers_no_handlers() -> None:
    code = "import sys, driftloop.operator; print('kopf' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False", "importing driftloop.operator loaded kopf (and registered handlers)"
