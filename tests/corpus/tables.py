"""A small corpus of real tables that ship inside Python packages (none made by this project).

Test-only: each table is written to a CSV the way a data scientist would get it, and the
corpus tests and `bench/corpus.py` run the default `driftloop run` on it.

| name           | from                                   | task                          | what it exercises                   |
|----------------|----------------------------------------|-------------------------------|-------------------------------------|
| breast_cancer  | scikit-learn `load_breast_cancer`      | binary (text labels)          | column names with spaces            |
| wine           | scikit-learn `load_wine`               | multi-class (integer labels)  | a `/` in a name, integer target     |
| diabetes       | scikit-learn `load_diabetes` (raw)     | regression (integer-valued)   | 214 distinct integers → regression  |
| penguins       | palmerpenguins `load_penguins`         | multi-class (text labels)     | missing values (`NA`), text columns |
| rare_malignant | derived: breast_cancer, 1 in 10 kept malignant | imbalanced binary     | minority positive class             |
| penguins_raw   | palmerpenguins `load_penguins_raw`     | multi-class (text labels)     | `Culmen Length (mm)`, `Delta 15 N (o/oo)`; a date, an ID, Yes/No, free text, `NA` |

`rare_malignant` is derived, and says so: every benign tumour of breast_cancer and a seeded
sample of the malignant ones (one tenth of the rows), with the target `benign` as `yes`/`no`,
so the minority class `no` sorts first: the positive class must be chosen, not taken by order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

MAX_ROWS = 1500  # CI runs the corpus on 2 cores: larger tables are subsampled (seeded)


@dataclass(frozen=True)
class CorpusTable:
    name: str
    target: str
    task: str  # what driftloop should infer
    source: str  # the package it ships in
    load: Callable[[], pd.DataFrame]
    na_rep: str = ""  # how the CSV spells a missing cell
    positive_class: str | None = None  # binary: the class driftloop should take as positive

    def frame(self) -> pd.DataFrame:
        frame = self.load()
        if len(frame) > MAX_ROWS:
            frame = frame.sample(n=MAX_ROWS, random_state=0).reset_index(drop=True)
        return frame

    def write_csv(self, folder: Path) -> Path:
        """The table as `<folder>/<name>.csv`."""
        path = folder / f"{self.name}.csv"
        self.frame().to_csv(path, index=False, na_rep=self.na_rep)
        return path


def _sklearn(loader: str, target: str, labels: dict[int, str] | None = None, **kwargs: object) -> pd.DataFrame:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader)(as_frame=True, **kwargs)
    frame = bunch.frame.rename(columns={"target": target})
    if labels is not None:
        frame[target] = frame[target].map(labels)
    return frame


def breast_cancer() -> pd.DataFrame:
    return _sklearn("load_breast_cancer", "diagnosis", {0: "malignant", 1: "benign"})


def wine() -> pd.DataFrame:
    return _sklearn("load_wine", "cultivar")


def diabetes() -> pd.DataFrame:
    frame = _sklearn("load_diabetes", "progression", scaled=False)
    frame["progression"] = frame["progression"].astype("int64")  # whole numbers in the source, 214 distinct
    return frame


def penguins() -> pd.DataFrame:
    from palmerpenguins import load_penguins

    return load_penguins()


def penguins_raw() -> pd.DataFrame:
    from palmerpenguins import load_penguins_raw

    return load_penguins_raw()


def rare_malignant() -> pd.DataFrame:
    frame = breast_cancer()
    benign = frame[frame["diagnosis"] == "benign"]
    malignant = frame[frame["diagnosis"] == "malignant"].sample(n=len(benign) // 9, random_state=0)
    out = frame.loc[sorted([*benign.index, *malignant.index])].reset_index(drop=True)
    return out.assign(benign=(out.pop("diagnosis") == "benign").map({True: "yes", False: "no"}))


TABLES: dict[str, CorpusTable] = {t.name: t for t in (
    CorpusTable("breast_cancer", "diagnosis", "classification", "scikit-learn", breast_cancer),
    CorpusTable("wine", "cultivar", "classification", "scikit-learn", wine),
    CorpusTable("diabetes", "progression", "regression", "scikit-learn", diabetes),
    CorpusTable("penguins", "species", "classification", "palmerpenguins", penguins, na_rep="NA"),
    CorpusTable("rare_malignant", "benign", "classification", "scikit-learn (derived)", rare_malignant,
                positive_class="no"),
    CorpusTable("penguins_raw", "Species", "classification", "palmerpenguins", penguins_raw, na_rep="NA"),
)}
