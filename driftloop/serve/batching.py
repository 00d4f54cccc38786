"""Optional micro-batching: concurrent requests of one worker share one ONNX Runtime call.

Off by default. For a small tabular MLP the model run is ~15 µs of a ~100–300 µs request,
so joining requests saves little of the total and costs waiting time; it can pay at high
concurrency or for heavier models. `bench/serve.py` measures it beside the default.

A batch closes when it holds `max_rows` rows or `max_wait_s` after its first request;
with `max_wait_s = 0` it closes on the event loop's next turn, which adds no waiting
at low load and still joins the requests that arrived together. A request at least
`max_rows` rows long runs alone. Requests for different model versions (a swap landed
between them) are never mixed in one call.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from driftloop.serve.model import ServedModel

Outputs = tuple[np.ndarray, "np.ndarray | None"]


class MicroBatcher:
    def __init__(self, max_rows: int, max_wait_s: float) -> None:
        self.max_rows = max_rows
        self.max_wait_s = max_wait_s
        self._pending: list[tuple[ServedModel, dict[str, np.ndarray], int, asyncio.Future[Outputs]]] = []
        self._rows = 0
        self._timer: asyncio.Handle | None = None

    async def run(self, model: ServedModel, feed: dict[str, np.ndarray], n: int) -> Outputs:
        if n >= self.max_rows:
            return model.run(feed)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outputs] = loop.create_future()
        self._pending.append((model, feed, n, future))
        self._rows += n
        if self._rows >= self.max_rows:
            self._flush()
        elif self._timer is None:
            self._timer = (loop.call_later(self.max_wait_s, self._flush) if self.max_wait_s > 0
                           else loop.call_soon(self._flush))
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending, self._rows = self._pending, [], 0
        groups: dict[int, list[Any]] = {}
        for item in pending:
            groups.setdefault(id(item[0]), []).append(item)
        for items in groups.values():
            _run_group(items)


def _run_group(items: list[Any]) -> None:
    model = items[0][0]
    try:
        if len(items) == 1:
            results = [model.run(items[0][1])]
        else:
            feed = {name: np.concatenate([item[1][name] for item in items]) for name in items[0][1]}
            predictions, probabilities = model.run(feed)
            results, start = [], 0
            for item in items:
                end = start + item[2]
                results.append((predictions[start:end], None if probabilities is None else probabilities[start:end]))
                start = end
    except Exception as error:  # every request of the batch gets the error, as it would have alone
        for item in items:
            if not item[3].done():
                item[3].set_exception(error)
        return
    for item, result in zip(items, results, strict=True):
        if not item[3].done():
            item[3].set_result(result)
