"""The project image: what the KFP components import is what the Dockerfile installs; hadolint is clean."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from driftloop import __version__
from driftloop.constants import DEFAULT_IMAGE

from ..conftest import REPO

DOCKERFILE = REPO / "Dockerfile"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def module_file(module: str) -> Path | None:
    """driftloop.x.y → its file in this checkout (one physical package tree under driftloop/)."""
    if module != "driftloop" and not module.startswith("driftloop."):
        return None
    base = REPO / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imports_of(path: Path) -> set[str]:
    """Every module imported anywhere in the file (function bodies included: that is where ours import)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def third_party_imports_of_components() -> set[str]:
    """Top-level third-party modules reachable from the component wrappers through driftloop's own modules."""
    seen, queue, external = set(), ["driftloop.pipelines.kfp_components"], set()
    while queue:
        module = queue.pop()
        path = module_file(module)
        if path is None or path in seen:
            continue
        seen.add(path)
        for imported in imports_of(path):
            top = imported.split(".")[0]
            if top == "driftloop":
                queue.append(imported)
            elif top not in sys.stdlib_module_names:
                external.add(top)
    return external


def installed_by_the_image() -> set[str]:
    """The project's declared dependencies and everything they require (what `pip install .` brings)."""
    pending = [_name(r) for r in PYPROJECT["project"]["dependencies"]]
    closure: set[str] = set()
    while pending:
        name = pending.pop()
        if name in closure:
            continue
        closure.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        pending += [_name(r) for r in requires if "extra ==" not in r]
    return closure


def test_what_the_components_import_is_what_the_image_installs() -> None:
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^RUN pip install \"?\.", dockerfile, re.M), "the image installs the project from pyproject.toml"
    assert re.search(r"^COPY \. \.", dockerfile, re.M)
    torch_pin = next(r for r in PYPROJECT["project"]["dependencies"] if _name(r) == "torch").split("==")[1]
    assert f"ARG TORCH_VERSION={torch_pin}\n" in dockerfile
    imported = third_party_imports_of_components()
    assert {"kfp", "mlflow", "torch", "great_expectations", "onnxruntime", "sklearn", "pandas"} <= imported
    providers = metadata.packages_distributions()
    installed = installed_by_the_image()
    missing = {module: providers.get(module) for module in imported
               if not {_name(d) for d in providers.get(module, [])} & installed}
    assert missing == {}, f"components import modules the image does not install: {missing}"


def test_dockerignore_keeps_the_package_tree_in_the_build_context() -> None:
    ignored = {line.strip().rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert "driftloop" not in ignored and not any(line.startswith("driftloop/") for line in ignored)
    assert {"pyproject.toml", "README.md"}.isdisjoint(ignored)


def test_image_basics_and_hadolint() -> None:
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^FROM python:\$\{PYTHON_VERSION\}-slim", dockerfile, re.M)
    assert re.search(r"^USER 10001", dockerfile, re.M) and 'ENTRYPOINT ["driftloop"]' in dockerfile
    assert DEFAULT_IMAGE.endswith(f":{__version__}")
    hadolint = Path(sys.executable).parent / "hadolint"
    proc = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _torch_install_script() -> str:
    """The Dockerfile's RUN that installs torch, as the shell runs it (continuations joined)."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    return text[text.index('RUN case "${VARIANT}"') + len("RUN "):].split("\n")[0]


@pytest.mark.parametrize(("variant", "index"), [("cpu", "https://download.pytorch.org/whl/cpu"),
                                                ("cuda", "https://download.pytorch.org/whl/cu128")])
def test_the_variant_picks_the_torch_wheel_index(variant: str, index: str, tmp_path: Path) -> None:
    """The RUN line itself, run by sh with `pip` standing in as a recorder (no network, no Docker)."""
    (tmp_path / "pip").write_text('#!/bin/sh\necho "pip $*"\n')
    (tmp_path / "pip").chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "VARIANT": variant, "CUDA_TAG": "cu128", "TORCH_VERSION": "2.13.0",
           "TORCH_INDEX_URL": ""}
    done = subprocess.run(["sh", "-c", _torch_install_script()], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"pip install --index-url {index} torch==2.13.0"
    wrong = subprocess.run(["sh", "-c", _torch_install_script()], env=env | {"VARIANT": "rocm"}, capture_output=True,
                           text=True, timeout=30)
    assert wrong.returncode == 2 and "VARIANT must be cpu or cuda, not 'rocm'" in wrong.stderr


def test_make_image_variant_cuda_builds_the_cuda_tag() -> None:
    from driftloop.operator.constants import DEFAULT_CUDA_IMAGE, DEFAULT_IMAGE

    # under `make test` this is a sub-make, which would print "Entering/Leaving directory" around the recipe
    dry = {variant: subprocess.run(["make", "-n", "--no-print-directory", "image", f"VARIANT={variant}"], cwd=REPO,
                                   capture_output=True, text=True, timeout=30).stdout.strip()
           for variant in ("cpu", "cuda")}
    assert dry["cuda"].endswith(f"--build-arg VARIANT=cuda -t {DEFAULT_CUDA_IMAGE} ."), dry["cuda"]
    assert dry["cpu"].endswith(f"--build-arg VARIANT=cpu -t {DEFAULT_IMAGE} ."), dry["cpu"]
