"""The prediction log: a sample of served rows as JSON Lines, the input of `driftloop drift --current`.

Contract (shared with `driftloop drift`): one JSON object per row; the raw input columns at
the top level, exactly as the client sent them; reserved keys start with `_`:

    {"customer_age": 41, "plan": "pro", ..., "_ts": "2026-11-23T14:02:11.532+00:00",
     "_model": "churn", "_version": "3", "_prediction": 1, "_probabilities": {"0": 0.21, "1": 0.79}}

`_probabilities` (class label → probability) is present for classifiers only. Rows are
sampled independently at `rate`, so a 100-row request at rate 0.01 logs about one row and
the log keeps the row distribution the drift test compares.
"""

from __future__ import annotations

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
    def __init__(self, sink: JsonLinesSink, rate: float) -> None:
        self.sink = sink
        self.rate = rate
        self._random = random.Random()

    def sampled(self, n: int) -> list[int]:
        if self.rate >= 1.0:
            return list(range(n))
        draw = self._random.random
        if n == 1:  # the common request: one draw, no comprehension
            return [0] if draw() < self.rate else []
        return [i for i in range(n) if draw() < self.rate]

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
