"""`train.module`: the user's function, loaded, called and checked, each failure one line.

`PATH.py:FUNCTION` runs the text the spec carries (`train.module_source`, read from the file
when the spec was loaded), written to the run's `code/` folder, which the train step logs:
so a KFP task or an MLTrainingJob pod needs no image of the user's own. `package.module:FUNCTION`
is imported, so the package must be installed where the step runs (`--image`, `spec.image`).

The function is called with the keyword arguments `n_features`, `n_outputs`, `task` and
`params`, and returns a `torch.nn.Module` (trained by driftloop's loop: class logits, or one
column fitted to the standardised target, which the exported graph scales back) or a
scikit-learn estimator (fitted on the target as it is, then converted with skl2onnx).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.errors import DriftloopError, UserCodeError
from driftloop.spec import module_reference
from driftloop.suggest import nearest

if TYPE_CHECKING:
    import torch

    from driftloop.spec import TrainSpec

_WHERE = "train.module"


def load_function(spec: TrainSpec, code_dir: Path | None = None) -> Callable[..., Any]:
    """The user's function; a .py file's text is first written into `code_dir` (a temporary folder when None).

    Raises:
        UserCodeError: the file, module or function is missing, or importing the file raised.
    """
    assert spec.module is not None
    where, function, is_file = module_reference(spec.module)
    if is_file:
        path = _write_source(spec, where, code_dir or _scratch_code_dir())
        module = _import_file(spec, path)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as e:
            raise UserCodeError(f"{_WHERE}: cannot import {where!r} ({e}); a package must be installed in the "
                                f"image the step runs in (--image, spec.image), or name a file: PATH.py:{function}"
                                ) from None
    found = getattr(module, function, None)
    if not callable(found):
        callables = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                     and getattr(v, "__module__", None) == module.__name__]
        close = nearest(function, callables, cutoff=0.5)
        hint = f"; did you mean {close!r}?" if close else (f"; it defines: {', '.join(callables)}" if callables else "")
        raise UserCodeError(f"{_WHERE}: {where} has no function {function!r}{hint}")
    return found  # type: ignore[no-any-return]


def _scratch_code_dir() -> Path:
    """A folder for the user's file for as long as this process lives (a torchrun worker's), removed at its exit:
    the imported module may still read its file (a traceback, `inspect`), and every run would otherwise leave one."""
    import atexit
    import shutil

    folder = Path(tempfile.mkdtemp(prefix="driftloop-code-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def code_file(spec: TrainSpec, code_dir: Path) -> Path | None:
    """Where `load_function` wrote the user's .py file in `code_dir` (None for a package)."""
    assert spec.module is not None
    where, _, is_file = module_reference(spec.module)
    return code_dir / Path(where).name if is_file else None


def _write_source(spec: TrainSpec, where: str, code_dir: Path) -> Path:
    source = spec.module_source
    if source is None:
        try:
            source = Path(where).expanduser().read_text(encoding="utf-8")
        except OSError as e:
            raise UserCodeError(f"{_WHERE}: cannot read {where!r} ({e.strerror}); expected PATH.py:FUNCTION") from None
    code_dir.mkdir(parents=True, exist_ok=True)
    path = code_dir / Path(where).name
    path.write_text(source, encoding="utf-8")
    return path


def _import_file(spec: TrainSpec, path: Path) -> Any:
    name = f"driftloop_user_{path.stem}"
    loader_spec = importlib.util.spec_from_file_location(name, path)
    assert loader_spec is not None and loader_spec.loader is not None
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module  # classes defined there must be findable by name (pickling, dataclasses)
    with calling_user_code(spec, f"importing {path.name}"):
        loader_spec.loader.exec_module(module)
    return module


@contextmanager
def calling_user_code(spec: TrainSpec, what: str) -> Iterator[None]:
    """Turn an exception raised in the user's code into one line naming its last frame in the user's file."""
    try:
        yield
    except DriftloopError:
        raise
    except Exception as e:
        message = (str(e).strip().splitlines() or [""])[0]
        detail = f"{type(e).__name__}: {message}" if message else type(e).__name__
        raise UserCodeError(f"{_WHERE}: {what} raised {detail}{_user_frame(spec, e)}") from None


def _user_frame(spec: TrainSpec, error: BaseException) -> str:
    """` at FILE:LINE`, the deepest frame in the user's file (or package); empty when there is none."""
    assert spec.module is not None
    where, _, is_file = module_reference(spec.module)
    frames = traceback.extract_tb(error.__traceback__)
    if is_file:
        mine = [f for f in frames if Path(f.filename).name == Path(where).name]
        shown = where
    else:
        top = where.split(".")[0]
        mine = [f for f in frames if f"/{top}/" in f.filename.replace("\\", "/") or Path(f.filename).stem == top]
        shown = ""
    if not mine:
        return ""
    return f" at {shown or mine[-1].filename}:{mine[-1].lineno}"


def call(spec: TrainSpec, function: Callable[..., Any], *, n_features: int, n_outputs: int, task: str) -> Any:
    """The user's function called with the documented keyword arguments."""
    name = getattr(function, "__name__", "the function")
    with calling_user_code(spec, f"{name}()"):
        return function(n_features=n_features, n_outputs=n_outputs, task=task, params=dict(spec.params))


def is_torch_module(value: Any) -> bool:
    import torch

    return isinstance(value, torch.nn.Module)


def check_estimator(spec: TrainSpec, estimator: Any, task: str) -> None:
    """A scikit-learn estimator that fits this task: a classifier with `predict_proba`, or a regressor."""
    name = type(estimator).__name__
    if not (hasattr(estimator, "fit") and hasattr(estimator, "predict")):
        raise UserCodeError(f"{_WHERE}: {spec.module} returned {name}; expected a torch.nn.Module or a "
                            "scikit-learn estimator (with fit and predict)")
    from sklearn.base import is_classifier

    if task == "classification" and not hasattr(estimator, "predict_proba"):
        raise UserCodeError(f"{_WHERE}: {name} has no predict_proba; a classification task needs class probabilities")
    if task == "regression" and is_classifier(estimator):
        raise UserCodeError(f"{_WHERE}: {name} is a classifier; this task is regression")


def check_output_shape(spec: TrainSpec, module: torch.nn.Module, x: Any, *, n_outputs: int, task: str) -> None:
    """A forward pass on 2 rows, before training: the output must be [2, n_outputs]."""
    import torch

    module.eval()
    with torch.no_grad(), calling_user_code(spec, f"{type(module).__name__}.forward"):
        output = module(torch.as_tensor(x[:2], dtype=torch.float32))
    shape = tuple(output.shape) if isinstance(output, torch.Tensor) else None
    if shape != (2, n_outputs):
        needs = f"{n_outputs} class scores (logits)" if task == "classification" else "1 prediction"
        got = f"shape {list(shape)}" if shape is not None else type(output).__name__
        raise UserCodeError(f"{_WHERE}: the module's output for 2 rows is {got}; a {task} with {needs} per row "
                            f"needs [2, {n_outputs}]")


def torch_builder(spec: TrainSpec, task: str) -> Callable[[int, int], torch.nn.Module]:
    """What a torchrun rank other than 0 builds its replica with: the user's function, checked to return a module."""
    def build(n_features: int, n_outputs: int) -> torch.nn.Module:
        module = call(spec, load_function(spec), n_features=n_features, n_outputs=n_outputs, task=task)
        if not is_torch_module(module):
            raise UserCodeError(f"{_WHERE}: {spec.module} returned {type(module).__name__} on a torchrun worker; "
                                "expected a torch.nn.Module")
        return module  # type: ignore[no-any-return]

    return build
