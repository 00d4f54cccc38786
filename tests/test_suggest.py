"""Every "did you mean" message shares one rule (`driftloop.suggest.nearest`)."""

from __future__ import annotations

import pytest

from driftloop.errors import DataError
from driftloop.suggest import nearest
from driftloop.table import check_target


def test_a_name_that_differs_only_in_case_is_suggested() -> None:
    """`serve --model GDEFL` for a model registered as `gdefl` said only "not found": difflib scores upper against
    lower case as nothing alike."""
    assert nearest("GDEFL", ["gdefl", "other"]) == "gdefl"
    assert nearest("species", ["island", "Species"]) == "Species"
    assert nearest("restaurant", ["restaurant_data", "tips"]) == "restaurant_data"
    assert nearest("xyz", ["abc", "island"]) is None
    with pytest.raises(DataError, match="target column 'SPECIES' not found; did you mean 'species'"):
        check_target(["island", "species"], "SPECIES", "penguins.csv")
