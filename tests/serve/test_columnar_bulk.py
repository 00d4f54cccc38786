"""The `inputs` column layout's bulk unnest (`schema._unnest_all`) against the column-by-column loop.

`{"inputs": {column: [[v], ...]}}` (TF-Serving/MLflow [N,1] tensors) is flattened across all columns at once
when every column is such a tensor of one N; anything else falls back to the loop, which names what is wrong.
Random good and broken bodies, with and without the bulk path: the same columns or the same 400. No server.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from driftloop.serve import schema as schema_module
from driftloop.serve.errors import ClientError
from driftloop.serve.schema import InputSchema

SCHEMA = InputSchema(("a", "b"), ("c",), max_rows=4, ignored=frozenset({"id"}))
ODD = [None, 1, "x", [], [1, 2], [[1]], {"k": 1}, True, 2.5]


def body(rng: random.Random) -> dict[str, Any]:
    n = rng.choice([1, 1, 2, 3, 4])
    columns: dict[str, Any] = {}
    names = list(SCHEMA.columns) + (["id"] if rng.random() < 0.3 else [])
    rng.shuffle(names)
    for name in names:
        values = [rng.choice([rng.uniform(-5, 5), rng.randint(0, 3), None, "t"]) for _ in range(n)]
        columns[name] = [[v] for v in values] if rng.random() < 0.9 else values
    for _ in range(rng.choice([0, 0, 1, 2])):  # break or bend it
        name = rng.choice(list(columns))
        kind = rng.randrange(6)
        column = columns[name]
        if kind == 0:
            columns[name] = rng.choice(ODD)
        elif kind == 1 and isinstance(column, list) and column:
            column[rng.randrange(len(column))] = rng.choice(ODD)
        elif kind == 2 and isinstance(column, list):
            column.append([1.0] if rng.random() < 0.5 else 1.0)  # one row more
        elif kind == 3 and isinstance(column, list):
            columns[name] = []
        elif kind == 4:
            del columns[name]
        else:
            columns[name] = [[[1.0]]] * (len(column) if isinstance(column, list) else 1)  # nested deeper
    return {"inputs": columns}


def answer(payload: dict[str, Any]) -> Any:
    try:
        return repr(SCHEMA.columns_of(payload))
    except ClientError as error:
        return ("error", error.status, error.message)


@pytest.mark.parametrize("seed", range(3))
def test_the_bulk_unnest_answers_as_the_column_loop(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    payloads = [body(rng) for _ in range(2000)]
    bulk = [answer(copy.deepcopy(p)) for p in payloads]
    monkeypatch.setattr(schema_module, "_unnest_all", lambda columns: None)
    alone = [answer(copy.deepcopy(p)) for p in payloads]
    assert bulk == alone
    errors = sum(isinstance(a, tuple) for a in alone)
    assert 300 < errors < len(alone) - 300  # answers and 400s were both compared


def test_a_plain_tensor_body_takes_the_bulk_path() -> None:
    columns = {"a": [[1.0], [2.0]], "b": [[3], [None]], "c": [["x"], ["y"]], "id": [[7], [8]]}
    assert schema_module._unnest_all([columns[c] for c in SCHEMA.columns]) == [[1.0, 2.0], [3, None], ["x", "y"]]
    assert SCHEMA.columns_of({"inputs": columns}) == (
        {"a": [1.0, 2.0], "b": [3, None], "c": ["x", "y"], "id": [[7], [8]]}, 2)
