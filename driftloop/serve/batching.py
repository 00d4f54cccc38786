"""Micro-batching: concurrent requests of one worker share one feed and one ONNX Runtime call.

On by default (`--batch-max-rows 64`): with the per-column work done once per batch, a
one-row request under concurrent load costs about half the CPU (in-process, 8 requests per
loop turn: ~100 -> ~50 µs), and bench/serve.py measured 2-3x the req/s of the unbatched
server at 16 and 64 connections. At low load a batch is one request and nothing waits.

A batch closes when it holds `max_rows` rows or `max_wait_s` after its first request;
with `max_wait_s = 0` it closes on the event loop's next turn, which adds no waiting
at low load and still joins the requests that arrived together. A request at least
`max_rows` rows long runs alone. Requests for different model versions (a swap landed
between them) are never mixed in one call.

Requests are joined as parsed columns, before `InputSchema.feed`: the batch's columns are
concatenated and checked and converted once, so what a one-row request pays per column
(the numpy calls of the feed, ONNX Runtime's per-input cost) is paid once per batch. If the
joined feed is refused, each request's own columns are fed alone, so a bad request gets
its own 400 naming its own row and the others are answered as if alone.
"""

from __future__ import annotations

import asyncio
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from driftloop.serve.model import ServedModel
    from driftloop.serve.schema import Columns

Outputs = tuple[np.ndarray, "np.ndarray | None"]


class MicroBatcher:
    def __init__(self, max_rows: int, max_wait_s: float) -> None:
        self.max_rows = max_rows
        self.max_wait_s = max_wait_s
        self._pending: list[tuple[ServedModel, Columns, int, asyncio.Future[Outputs]]] = []
        self._rows = 0
        self._timer: asyncio.Handle | None = None

    async def run(self, model: ServedModel, columns: Columns, n: int) -> Outputs:
        """The request's (predictions, probabilities), from a model run it may share with others."""
        if n >= self.max_rows:
            return model.run(model.schema.feed(columns))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outputs] = loop.create_future()
        self._pending.append((model, columns, n, future))
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
    if len(items) == 1:
        _run_alone(items[0])
        return
    schema = model.schema
    try:
        feed = schema.feed({c: _joined([item[1][c] for item in items]) for c in schema.columns})
    except Exception:  # some request is bad (a 400, or a bug): each alone gets its own answer or error
        for item in items:
            _run_alone(item)
        return
    try:
        predictions, probabilities = model.run(feed)
    except Exception as error:  # every request of the batch gets the error, as it would have alone
        for item in items:
            if not item[3].done():
                item[3].set_exception(error)
        return
    start = 0
    for item in items:
        end = start + item[2]
        if not item[3].done():
            item[3].set_result((predictions[start:end], None if probabilities is None else probabilities[start:end]))
        start = end


def _joined(parts: list[Any]) -> Any:
    """One column of the batch. Binary V2 tensors of one dtype (numpy arrays) are concatenated, so the feed checks
    the batch's numbers as one block; as one list of numpy scalars they went column by column. One dtype only:
    concatenating int64 with float32 would give float64, and the cast to float32 could round twice."""
    first = parts[0]
    if type(first) is np.ndarray and all(type(p) is np.ndarray and p.dtype == first.dtype for p in parts):
        return np.concatenate(parts)
    return list(chain.from_iterable(parts))


def _run_alone(item: Any) -> None:
    model, columns, _, future = item
    try:
        result = model.run(model.schema.feed(columns))
    except Exception as error:
        if not future.done():
            future.set_exception(error)
        return
    if not future.done():
        future.set_result(result)
