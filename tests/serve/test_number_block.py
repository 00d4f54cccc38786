"""The feed's one-block check of binary V2 float tensors against the per-column check it stands in for.

The block may only answer where every column alone passes, with the same float32 values; where any
column fails alone the block must step aside (None), so the per-column path names it. No server.
"""

from __future__ import annotations

import random

import numpy as np

from driftloop.serve.errors import ClientError
from driftloop.serve.schema import _number_block, _numbers

ODD = [np.nan, np.inf, -np.inf, 1e39, -1e39, 3.4028235e38, 65504.0, -0.0, 1e-45, 2.0**60]


def column(rng: random.Random, n: int) -> np.ndarray:
    dtype = rng.choice([np.float16, np.float32, np.float64, np.float64])
    values = [rng.uniform(-1e4, 1e4) for _ in range(n)]
    for _ in range(rng.choice([0, 0, 1, 2])):
        values[rng.randrange(n)] = rng.choice(ODD)
    with np.errstate(over="ignore"):  # float16 makes 1e39 inf, which is a case too
        return np.asarray(values).astype(dtype)


def test_float_tensors_block_as_column_by_column() -> None:
    rng = random.Random(4)
    blocked = stepped_aside = 0
    for _ in range(3000):
        n = rng.choice([1, 2, 5, 100])
        columns = [column(rng, n) for _ in range(rng.randint(1, 5))]
        try:
            alone = [_numbers(c, f"c{i}") for i, c in enumerate(columns)]
        except ClientError:
            alone = None
        block = _number_block(columns)
        if alone is None:
            assert block is None
            stepped_aside += 1
        else:
            assert block is not None and block.dtype == np.float32 and block.shape == (len(columns), n, 1)
            np.testing.assert_array_equal(block, np.stack(alone))  # NaN where NaN: a missing value
            blocked += 1
    assert blocked > 1000 and stepped_aside > 500


def test_other_arrays_and_mixes_go_column_by_column() -> None:
    floats = np.array([1.0, 2.0], dtype=np.float32)
    assert _number_block([floats, np.array([1, 2], dtype=np.int64)]) is None  # int64 -> float32 rounds once there
    assert _number_block([floats, np.array([1, 0], dtype=np.uint8)]) is None  # BOOL tensors
    assert _number_block([floats, [1.0, 2.0]]) is None  # a JSON tensor beside a binary one
    assert _number_block([[1.0, 2.0], floats]) is None
    assert _number_block([floats, np.array([1.0], dtype=np.float32)]) is None  # ragged: `parse_infer` stops it first
    assert _number_block([floats.reshape(-1, 1)]) is None
