"""Micro-batching (on by default): joined requests get exactly the answers they would get alone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import numpy as np
import pandas as pd

from driftloop.onnx_model import OnnxModel
from driftloop.serve.batching import MicroBatcher
from driftloop.serve.model import load_served

from .conftest import Champion, Server


def test_batcher_splits_results_and_never_mixes_versions(champion: Champion) -> None:
    old = load_served(champion.model_path, name="m", alias="champion", version="1", max_rows=100)
    new = load_served(champion.model_path, name="m", alias="champion", version="2", max_rows=100)
    rows = champion.rows[:30]
    requests = [(old if i % 3 else new, rows[i:i + 1 + i % 4]) for i in range(0, 24)]
    calls: list[tuple[str, int]] = []
    for model in (old, new):  # record each ONNX Runtime call: which version, how many rows
        original = model.run
        object.__setattr__(model, "run", lambda feed, m=model, f=original: (calls.append(
            (m.version, len(next(iter(feed.values()))))), f(feed))[1])

    async def main() -> list:
        batcher = MicroBatcher(max_rows=16, max_wait_s=0)
        parsed = [(model, {c: [r[c] for r in part] for c in model.schema.columns}, len(part))
                  for model, part in requests]
        return await asyncio.gather(*(batcher.run(model, columns, n) for model, columns, n in parsed))

    answers = asyncio.run(main())
    expected = OnnxModel(champion.model_path)
    for (_, part), (labels, probabilities) in zip(requests, answers, strict=True):
        assert probabilities.shape == (len(part), 2)
        assert np.allclose(probabilities, expected.run(pd.DataFrame(part)), atol=1e-6)
        assert labels.tolist() == expected.predict(pd.DataFrame(part))
    assert len(calls) < len(requests)  # requests were joined
    assert all(rows <= 16 + 3 for _, rows in calls)  # a batch closes once it reaches max_rows
    for version in ("1", "2"):  # each call ran one version's rows only
        assert sum(n for v, n in calls if v == version) == sum(len(p) for m, p in requests if m.version == version)


def test_server_with_batching_answers_concurrent_requests(champion: Champion,
                                                          start_server: Callable[..., Server]) -> None:
    server = start_server("--model", champion.name, "--workers", "1", "--poll-interval", "0",
                          "--batch-max-rows", "8", "--no-access-log")
    rows = champion.rows[:40]
    expected = OnnxModel(champion.model_path)

    async def main() -> list:
        async with httpx.AsyncClient(timeout=60) as client:
            url = f"{server.url}/v1/models/{champion.name}:predict"
            return await asyncio.gather(*(client.post(url, json={"instances": [row]}) for row in rows))

    answers = asyncio.run(main())
    assert [a.status_code for a in answers] == [200] * len(rows)
    got = np.asarray([a.json()["probabilities"][0] for a in answers])
    assert np.allclose(got, expected.run(pd.DataFrame(rows)), atol=1e-6)
    bad = httpx.post(f"{server.url}/v1/models/{champion.name}:predict", json={"instances": [{**rows[0], "plan": [1]}]})
    assert bad.status_code == 400


def test_a_bad_request_joined_with_good_ones_gets_its_own_400(champion: Champion) -> None:
    from driftloop.serve.errors import ClientError

    model = load_served(champion.model_path, name="m", alias="champion", version="1", max_rows=100)
    rows = champion.rows[:6]
    good = [{c: [row[c]] for c in model.schema.columns} for row in rows]
    bad = {c: [rows[0][c]] for c in model.schema.columns} | {"customer_age": ["forty"]}

    async def main() -> list:
        batcher = MicroBatcher(max_rows=64, max_wait_s=0)
        return await asyncio.gather(*(batcher.run(model, columns, 1) for columns in [*good[:3], bad, *good[3:]]),
                                    return_exceptions=True)

    answers = asyncio.run(main())
    assert isinstance(answers[3], ClientError) and answers[3].status == 400
    assert "'customer_age'" in answers[3].message and "row 0" in answers[3].message  # its own row, not the batch's
    got = np.concatenate([answer[1] for i, answer in enumerate(answers) if i != 3])
    assert np.allclose(got, OnnxModel(champion.model_path).run(pd.DataFrame(rows)), atol=1e-6)


def test_joined_binary_tensors_answer_as_alone(champion: Champion) -> None:
    """Binary V2 number tensors (numpy arrays, FP32 or FP64 per request) joined into one feed: each input of the
    joined feed is, bit for bit, the requests' own feeds one after the other, and the answers are theirs."""
    from driftloop.serve.batching import _joined

    model = load_served(champion.model_path, name="m", alias="champion", version="1", max_rows=100)
    schema, rows = model.schema, champion.rows[:12]

    def columns(part: list[dict], dtype: type) -> dict:
        return {c: (np.asarray([r[c] for r in part], dtype=dtype) if c in schema.numeric else [r[c] for r in part])
                for c in schema.columns}

    requests = [columns(rows[i:i + 1 + i % 3], np.float64 if i % 4 == 3 else np.float32) for i in range(10)]
    same_dtype = [r for r in requests if r[schema.numeric[0]].dtype == np.float32]
    joined = {c: _joined([r[c] for r in same_dtype]) for c in schema.columns}
    assert all(isinstance(joined[c], np.ndarray) for c in schema.numeric)  # concatenated, not a list of scalars
    alone = [schema.feed(r) for r in same_dtype]
    for name, array in schema.feed(joined).items():
        assert np.array_equal(array, np.concatenate([feed[name] for feed in alone]),
                              equal_nan=array.dtype.kind == "f"), name

    async def main() -> list:
        batcher = MicroBatcher(max_rows=64, max_wait_s=0)
        return await asyncio.gather(*(batcher.run(model, c, len(c[schema.columns[-1]])) for c in requests))

    for (labels, probabilities), request in zip(asyncio.run(main()), requests, strict=True):
        alone_labels, alone_probabilities = model.run(schema.feed(request))
        assert labels.tolist() == alone_labels.tolist()
        assert np.allclose(probabilities, alone_probabilities, atol=1e-6)
