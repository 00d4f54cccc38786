"""The operator's code is `driftloop.operator` (under driftloop/), and never shadows the standard library's `operator`."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib.machinery import PathFinder
from pathlib import Path

import pytest

from ..conftest import REPO, loaded_after


def test_repo_root_cannot_shadow_the_stdlib_operator() -> None:
    # -S skips `site`, which would otherwise have imported the real `operator` already and hide a shadow.
    proc = subprocess.run([sys.executable, "-S", "-c", "import operator; print(operator.__file__)"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    found = Path(proc.stdout.strip())
    assert found.name == "operator.py" and found.is_relative_to(Path(sys.base_prefix)), found
    spec = PathFinder.find_spec("operator", [str(REPO)])
    assert spec is None or spec.origin is None, f"{spec.origin} would shadow the standard library"  # namespace only


def test_operator_package_imports_from_the_checkout_and_kopf_module_name_works() -> None:
    code = ("import operator, driftloop.operator, driftloop.operator.handlers as h; "
            "print(operator.__file__); print(driftloop.operator.__file__); print(h.start_training.__module__)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    stdlib, package, module = proc.stdout.split()
    assert Path(stdlib).is_relative_to(Path(sys.base_prefix)) and Path(stdlib).name == "operator.py"
    assert Path(package) == REPO / "driftloop" / "operator" / "__init__.py"
    assert module == "driftloop.operator.handlers"


def test_importing_the_operator_package_registers_nothing() -> None:
    """`driftloop.operator` and its pure modules load neither kopf nor the kubernetes client."""
    code = ("import driftloop.operator, driftloop.operator.render, driftloop.operator.crd, "
            "driftloop.operator.outcome, driftloop.operator.drift_render")
    assert loaded_after(code, ("kopf", "kubernetes")) == []


def test_the_module_kopf_runs_registers_every_handler() -> None:
    """What `kopf run -m driftloop.operator.main`, `driftloop operator` and the Deployment run."""
    # the handler modules register with kopf's default registry as they are imported
    loaded = loaded_after("import driftloop.operator.main",
                          ("kopf", "driftloop.operator.handlers", "driftloop.operator.drift_policy"))
    assert loaded == ["kopf", "driftloop.operator.handlers", "driftloop.operator.drift_policy"]
    cli = (REPO / "driftloop" / "operator_cli.py").read_text()
    assert "from driftloop.operator import main" in cli
    assert "driftloop.operator.main" in (REPO / "operator" / "README.md").read_text()


@pytest.mark.slow
def test_plain_pip_install_ships_the_operator(tmp_path: Path) -> None:
    """What the Dockerfile does: `pip install .` (no editable finder), then import outside the checkout."""
    target = tmp_path / "site"
    build = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                            "--target", str(target), str(REPO)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    assert not (target / "operator").exists()
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import operator, driftloop.operator.render as r, "
            "driftloop.operator.crd; print(operator.__file__); print(r.__file__)")
    proc = subprocess.run([sys.executable, "-c", code, str(target)], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    stdlib, render = proc.stdout.split()
    assert Path(stdlib).name == "operator.py" and not Path(stdlib).is_relative_to(target)
    assert Path(render) == target / "driftloop" / "operator" / "render.py"


# What reaches MLflow: the gateway, MLflow itself, and the steps and runner that use the gateway.
MLFLOW_REACHING = ("mlflow", "driftloop.mlflow_gateway", "driftloop.components", "driftloop.runner")


def test_the_operator_never_imports_what_reaches_mlflow() -> None:
    """The training pod registers with the resource's credentials; the operator only reads what it reported.

    Every import in the package, function-level ones included (lint-imports' `operator-without-mlflow`
    contract says the same for indirect ones), and what running the operator's module loads.
    """
    found = []
    for path in sorted((REPO / "driftloop" / "operator").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.name}: {name}" for name in names
                      if any(name == m or name.startswith(f"{m}.") for m in MLFLOW_REACHING)]
    assert found == []
    assert loaded_after("import driftloop.operator.main", MLFLOW_REACHING) == []
    contracts = (REPO / "pyproject.toml").read_text()
    assert 'id = "operator-without-mlflow"' in contracts
