"""The prediction log: a sample of served rows as JSON Lines, the input of `driftloop drift --current`.

Contract (shared with `driftloop drift`): one JSON object per row; the raw input columns at
the top level, exactly as the client sent them; reserved keys start with `_`:

    {"customer_age": 41, "plan": "pro", ..., "_ts": "2026-11-23T14:02:11.532+00:00",
     "_model": "churn", "_version": "3", "_prediction": 1, "_probabilities": {"0": 0.21, "1": 0.79}}

`_probabilities` (class label → probability) is present for classifiers only. Rows are
sampled independently at `rate`, so a 100-row request at rate 0.01 logs about one row and
the log keeps the row distribution the drift test compares.

Independent draws per row are drawn as the gaps between sampled rows instead: the number of
rows passed over before the next sampled one is geometric, so one draw per *sampled* row gives
the same sample as one per row (at rate 0.01 a 100-row request cost ~7 µs in 100 draws; now
one request in a hundred pays one draw). The countdown runs across requests.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from driftloop.serve.jsonlines import JsonLinesSink

if TYPE_CHECKING:
    import numpy as np

    from driftloop.serve.model import ServedModel
    from driftloop.serve.schema import Columns

RESERVED_PREFIX = "_"


class PredictionLog:
    def __init__(self, sink: JsonLinesSink, rate: float, *, seed: int | None = None) -> None:
        self.sink = sink
        self.rate = rate
        self._random = random.Random(seed)
        self._log_keep = math.log1p(-rate) if 0 < rate < 1 else 0.0  # log P(a row is not sampled)
        self._skip = self._gap()  # rows still to pass over before the next sampled one

    def _gap(self) -> int:
        """How many rows to pass over before the next sampled one: P(k) = (1 - rate)^k · rate, the run of
        misses before a hit in independent draws at `rate` (inverse transform of a uniform in (0, 1])."""
        if self._log_keep == 0.0:  # rate 0 or 1: never or always sampled (`sampled` handles both)
            return 0
        return int(math.log(1.0 - self._random.random()) / self._log_keep)

    def sampled(self, n: int) -> list[int]:
        """The request's rows (of `n`) to log."""
        if self.rate >= 1.0:
            return list(range(n))
        if self.rate <= 0.0:
            return []
        skip = self._skip
        if skip >= n:  # the common request: not one of its rows is sampled, and no draw is made
            self._skip = skip - n
            return []
        rows = []
        while skip < n:
            rows.append(skip)
            skip += 1 + self._gap()
        self._skip = skip - n
        return rows

    def record(self, model: ServedModel, columns: Columns, n: int, predictions: np.ndarray,
               probabilities: np.ndarray | None) -> int:
        """Log the sampled rows of one request; returns how many were logged."""
        rows = self.sampled(n)
        if not rows:
            return 0
        ts = datetime.now(UTC).isoformat(timespec="milliseconds")
        labels = [str(c) for c in model.classes.tolist()] if model.classes is not None else None
        names = model.schema.columns
        for i in rows:
            record: dict[str, Any] = {name: columns[name][i] for name in names}
            record["_ts"] = ts
            record["_model"] = model.name
            record["_version"] = model.version
            record["_prediction"] = predictions[i].item()
            if labels is not None and probabilities is not None:
                record["_probabilities"] = dict(zip(labels, probabilities[i].tolist(), strict=True))
            self.sink.write(record)
        return len(rows)
