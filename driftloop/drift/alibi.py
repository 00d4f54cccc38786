"""alibi-detect's `KSDrift`, `ChiSquareDrift` and `fdr`, loaded without the package's eager `__init__`.

`import alibi_detect` (or any `alibi_detect.…` submodule, which imports its parents first) runs
`alibi_detect/__init__.py`, which imports every detector family (`ad`, `cd`, `od`, `models`, `saving`)
and with them transformers, the TensorFlow/PyTorch model code and `torch._dynamo`: 4.5 s of import out
of 6 s of CPU for a small `driftloop drift`, for three names (1.8 s this way). Here the two package
`__init__`s that do this (`alibi_detect`, `alibi_detect.cd`) are stood in for by empty modules with the
installed `__path__` and `__spec__` while the three submodules load, so the detectors are the installed
code, unchanged; their own imports (scipy, sklearn, torch through `alibi_detect.utils.frameworks`) still run.
The stand-ins are removed afterwards so that a later plain `import alibi_detect` in the same process
runs the real `__init__` (reusing the modules already loaded) instead of finding an empty package.
If anything about this fails, the normal import is used: slower, never different.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
import threading
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable

# the package `__init__`s stood in for, parents first; the leaves are what driftloop uses
EAGER_PACKAGES = ("alibi_detect", "alibi_detect.cd")
USED_MODULES = ("alibi_detect.cd.ks", "alibi_detect.cd.chisquare", "alibi_detect.utils.statstest")
# the stand-ins are process-wide while they last: a second thread's first call waits instead of seeing them
_loading = threading.Lock()


class Detectors(NamedTuple):
    """The alibi-detect names `driftloop.drift.detect` uses."""

    KSDrift: type[Any]
    ChiSquareDrift: type[Any]
    fdr: Callable[..., Any]


@functools.cache
def detectors() -> Detectors:
    """alibi-detect's KS and Chi-square detectors and its FDR correction (loaded once per process)."""
    with _loading:
        return _load()


def _load() -> Detectors:
    if "alibi_detect" in sys.modules:  # already imported (by someone else): its modules are there to use
        return _detectors(_import_used())
    before = set(sys.modules)
    try:
        return _detectors(_import_without_eager_init())
    except Exception:
        # a layout this does not expect (another alibi-detect version, a vendored copy): forget what the
        # attempt loaded, so nothing half-initialised stays, and import as everyone else does
        for name in set(sys.modules) - before:
            if name == "alibi_detect" or name.startswith("alibi_detect."):
                del sys.modules[name]
        return _detectors(_import_used())


def _import_without_eager_init() -> list[ModuleType]:
    try:
        for name in EAGER_PACKAGES:
            spec = importlib.util.find_spec(name)  # the parent is a stand-in by now: its `__path__` is searched
            if spec is None or spec.submodule_search_locations is None:
                raise ImportError(f"{name} is not an installed package")
            # module_from_spec sets `__spec__`, `__path__`, `__file__` and `__loader__` but runs no code
            sys.modules[name] = importlib.util.module_from_spec(spec)
        return _import_used()
    finally:
        for name in EAGER_PACKAGES:
            sys.modules.pop(name, None)


def _import_used() -> list[ModuleType]:
    return [importlib.import_module(name) for name in USED_MODULES]


def _detectors(modules: list[ModuleType]) -> Detectors:
    ks, chisquare, statstest = modules
    return Detectors(ks.KSDrift, chisquare.ChiSquareDrift, statstest.fdr)
