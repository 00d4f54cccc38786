"""The prediction log's sampling: rows are still sampled independently at the configured rate.

`PredictionLog.sampled` draws the gaps between sampled rows rather than one number per row; these check, on a
fixed seed, that the sample it gives has the statistics of independent per-row draws: the overall share, the
share at every position of a request, and no dependence between neighbouring rows (across requests too).
"""

from __future__ import annotations

import math
import os

import pytest

from driftloop.serve.jsonlines import JsonLinesSink
from driftloop.serve.predlog import PredictionLog

SIGMAS = 5.0  # a fixed seed makes these deterministic; 5σ leaves room for any seed to pass as well


@pytest.fixture
def sink() -> JsonLinesSink:
    return JsonLinesSink(os.open(os.devnull, os.O_WRONLY))


def stream(log: PredictionLog, sizes: list[int]) -> tuple[list[bool], list[list[int]]]:
    """Every row's sampled flag, in serving order, and each request's sampled rows."""
    flags: list[bool] = []
    picked = []
    for n in sizes:
        rows = log.sampled(n)
        assert rows == sorted(set(rows)) and all(0 <= i < n for i in rows)
        chosen = set(rows)
        flags.extend(i in chosen for i in range(n))
        picked.append(rows)
    return flags, picked


def near(count: int, trials: int, rate: float) -> bool:
    return abs(count - trials * rate) <= SIGMAS * math.sqrt(trials * rate * (1 - rate))


@pytest.mark.parametrize("rate", [0.01, 0.3, 0.75])
def test_rows_are_sampled_independently_at_the_rate(sink: JsonLinesSink, rate: float) -> None:
    log = PredictionLog(sink, rate, seed=14)
    sizes = [1, 7, 100, 1, 1, 33] * 3000
    flags, picked = stream(log, sizes)
    assert near(sum(flags), len(flags), rate)
    # each position of a request has the rate too: the first row of a 100-row request as often as a 1-row request
    ones = [bool(rows) for n, rows in zip(sizes, picked, strict=True) if n == 1]
    assert near(sum(ones), len(ones), rate)
    firsts = [0 in rows for n, rows in zip(sizes, picked, strict=True) if n == 100]
    lasts = [99 in rows for n, rows in zip(sizes, picked, strict=True) if n == 100]
    assert near(sum(firsts), len(firsts), rate) and near(sum(lasts), len(lasts), rate)
    # after a sampled row the next one is sampled at the rate, not more or less often
    after = [flags[i + 1] for i in range(len(flags) - 1) if flags[i]]
    assert near(sum(after), len(after), rate)


def test_rate_one_logs_every_row(sink: JsonLinesSink) -> None:
    log = PredictionLog(sink, 1.0, seed=1)
    assert log.sampled(1) == [0] and log.sampled(5) == [0, 1, 2, 3, 4]


def test_rate_zero_logs_nothing(sink: JsonLinesSink) -> None:
    log = PredictionLog(sink, 0.0, seed=1)
    assert all(log.sampled(100) == [] for _ in range(100))
