"""Loading alibi-detect's detectors without its eager package `__init__` (driftloop.drift.alibi)."""

from __future__ import annotations

from ..conftest import loaded_after

DETECT = """
import numpy as np, pandas as pd
from driftloop.components.columns import ColumnRoles
from driftloop.drift.detect import DriftParams, detect
rng = np.random.default_rng(0)
table = lambda: pd.DataFrame({"x": rng.normal(size=300), "c": rng.choice(["a", "b"], size=300)})
report = detect(table(), table(), ColumnRoles("", ["x"], ["c"]), DriftParams(correction="fdr"))
assert [f.test for f in report.features] == ["ks", "chi2"], report
"""


def test_detecting_loads_only_the_detectors_it_uses() -> None:
    """`alibi_detect/__init__.py` imports every detector family and transformers (seconds of CPU per
    `driftloop drift`); a drift check loads the KS and Chi-square detectors and `fdr`, and none of the rest."""
    used = ("alibi_detect.cd.ks", "alibi_detect.cd.chisquare", "alibi_detect.utils.statstest")
    unused = ("transformers", "alibi_detect.cd.classifier", "alibi_detect.cd.mmd", "alibi_detect.od",
              "alibi_detect.ad", "alibi_detect.models", "alibi_detect.saving")
    assert loaded_after(DETECT, used + unused) == list(used)


def test_a_later_plain_import_still_gets_the_whole_package() -> None:
    """The stand-ins do not outlive the load: importing alibi-detect afterwards runs its real `__init__`, and
    its detectors are the very classes the drift check used."""
    code = DETECT + """
from driftloop.drift.alibi import detectors
import alibi_detect.cd
assert alibi_detect.cd.KSDrift is detectors().KSDrift and alibi_detect.cd.ChiSquareDrift is detectors().ChiSquareDrift
assert alibi_detect.cd.MMDDrift and alibi_detect.od and alibi_detect.__version__
"""
    assert loaded_after(code, ("alibi_detect.od",)) == ["alibi_detect.od"]


def test_an_unexpected_layout_falls_back_to_the_normal_import() -> None:
    """A package this cannot stand in for (here: one that does not exist) means the normal import, not a failure."""
    code = """
import sys
import driftloop.drift.alibi as alibi
alibi.EAGER_PACKAGES = ("alibi_detect", "alibi_detect.no_such_package")
found = alibi.detectors()
assert "alibi_detect.od" in sys.modules  # the real __init__ ran
assert found.KSDrift is sys.modules["alibi_detect.cd"].KSDrift
"""
    assert loaded_after(code, ("alibi_detect.cd.ks",)) == ["alibi_detect.cd.ks"]
