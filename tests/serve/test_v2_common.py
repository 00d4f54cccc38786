"""V2's bulk check of the common body (`_common_columns`) against the tensor-by-tensor path (`_columns`).

The bulk check may only say "common" where the tensor-by-tensor path accepts the body with the
same columns; everything else must fall through, so every error stays the slow path's 400 naming
the tensor. Thousands of random bodies, good and broken in one to three ways, drive both; no server.
Likewise the binary BYTES decoder against the row-by-row decoder it replaced.
"""

from __future__ import annotations

import json
import random
import struct
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from driftloop.serve import v2
from driftloop.serve.errors import ClientError
from driftloop.serve.schema import InputSchema

# numbers first, then a date and a category: the order `InputSchema.columns` gives
SCHEMA = InputSchema(("a", "b"), ("c",), max_rows=5, datetime={"d": ["year"]})
NUMBERS, TEXTS = ("a", "b"), ("d", "c")
ODD_VALUES = [True, None, "1.5", [1.0], {"x": 1}, 2**70, -0.0, 1e39, 7]


def good_body(rng: random.Random) -> list[dict[str, Any]]:
    n = rng.choice([1, 1, 2, 3, 5])
    shape = rng.choice([[n], [n, 1]])
    tensors = []
    for name in SCHEMA.columns:
        if name in NUMBERS:
            data: list[Any] = [rng.choice([rng.uniform(-1e3, 1e3), rng.randint(-5, 5)]) for _ in range(n)]
            datatype = rng.choice(["FP32", "FP64"])
        else:
            data, datatype = [rng.choice(["x", "", "2024-01-02", "é"]) for _ in range(n)], "BYTES"
        fields = [("name", name), ("datatype", datatype), ("shape", list(shape)), ("data", data)]
        rng.shuffle(fields)  # clients write the fields in any order
        tensors.append(dict(fields))
    return tensors


def mutate(tensors: list[Any], rng: random.Random) -> None:
    """One way a client gets a body wrong, or merely uncommon (binary parameters, nested data, INT64)."""
    i = rng.randrange(len(tensors))
    tensor = tensors[i]
    kind = rng.randrange(17) if isinstance(tensor, dict) else rng.randrange(2)  # a non-object: move or drop it
    if kind == 0:
        tensors[i], tensors[-1 - i] = tensors[-1 - i], tensors[i]  # another order (or the same, for the middle)
    elif kind == 1:
        del tensors[i]
    elif kind == 2:
        tensors.append(dict(tensor))  # a repeated tensor
    elif kind == 3:
        tensors[i] = rng.choice([1, "a", [tensor], None])
    elif kind == 4:
        tensor["name"] = rng.choice(["zz", 3, None, "A"])
    elif kind == 5:
        tensor["datatype"] = rng.choice(["FP16", "INT64", "BYTES", "FP32", "BOOL", None, ["FP32"], "fp32"])
    elif kind == 6:
        n = tensor["shape"][0] if isinstance(tensor.get("shape"), list) and tensor["shape"] else 1
        tensor["shape"] = rng.choice([[n, 2], [n + 1], [n, 1.0], [float(n)], [True], [n, True], [], "n", [[n]],
                                      [0], [0, 1], [6], [-1], None, [n, 1, 1]])
    elif kind == 7:
        tensor["parameters"] = rng.choice([{}, None, {"binary_data_size": 0}, {"x": 1}, 3])
    elif kind == 8:
        tensor.pop(rng.choice(["data", "shape", "datatype", "name"]), None)
    elif kind == 9:
        tensor["extra"] = 1
    elif kind == 10 and isinstance(tensor.get("data"), list) and tensor["data"]:
        tensor["data"][rng.randrange(len(tensor["data"]))] = rng.choice(ODD_VALUES)
    elif kind == 11 and isinstance(tensor.get("data"), list):
        tensor["data"] = [[v] for v in tensor["data"]]  # nested, [N, 1]
    elif kind == 12 and isinstance(tensor.get("data"), list):
        tensor["data"] = tensor["data"] + [1.0] if rng.random() < 0.5 else tensor["data"][1:]
    elif kind == 13:
        tensor["data"] = rng.choice([None, "abc", {"a": 1}, 3, []])
    elif kind == 14 and isinstance(tensor.get("data"), list) and tensor["data"]:
        tensor["data"][0] = [tensor["data"][0]]  # nested only at the first row
    elif kind == 16:  # the same odd shape on every tensor, so no tensor disagrees with the first
        n = len(tensor["data"]) if isinstance(tensor.get("data"), list) else 1
        odd = rng.choice([[[n], 1], [n, 1.0], [float(n)], [True], [], [n, [1]], [n, 2], {"n": n}, [0], [n, 1, 1]])
        for other in tensors:
            if isinstance(other, dict):
                other["shape"] = odd
    elif kind == 15:
        tensor["datatype"] = "INT64"
        if isinstance(tensor.get("data"), list):
            tensor["data"] = [rng.randint(-3, 3) for _ in tensor["data"]]


def slow(tensors: list[Any]) -> Any:
    try:
        return v2._columns(tensors, SCHEMA, b"")
    except ClientError as error:
        return ("error", error.status, error.message)


def parsed(body: bytes, monkeypatch: pytest.MonkeyPatch | None = None) -> Any:
    model = SimpleNamespace(schema=SCHEMA, classes=None)
    try:
        return v2.parse_infer(body, None, model)  # type: ignore[arg-type]
    except ClientError as error:
        return ("error", error.status, error.message)


@pytest.mark.parametrize("seed", range(4))
def test_the_bulk_check_accepts_only_what_the_tensor_path_accepts_alike(seed: int) -> None:
    rng = random.Random(seed)
    common = broken = 0
    for _ in range(1500):
        tensors = good_body(rng)
        mutations = rng.choice([0, 0, 1, 2, 3])
        for _ in range(mutations):
            mutate(tensors, rng)
        fast = v2._common_columns(tensors, SCHEMA)
        expected = slow(tensors)
        if fast is None:
            assert not mutations or expected is not None  # the slow path always answers: columns or a 400
            broken += 1
            continue
        common += 1
        # same columns, value for value and type for type (1 == 1.0 == True would hide a difference)
        assert repr(fast) == repr(expected), tensors
        assert [type(v) for c in fast[0].values() for v in c] == [type(v) for c in expected[0].values() for v in c]
    assert common > 500 and broken > 500  # both sides were exercised


def test_every_unbroken_body_takes_the_bulk_check() -> None:
    rng = random.Random(9)
    for _ in range(300):
        tensors = good_body(rng)
        assert v2._common_columns(tensors, SCHEMA) is not None, tensors


@pytest.mark.parametrize("seed", range(2))
def test_parse_infer_answers_as_the_tensor_path_alone(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end through the JSON parser: the same request or the same 400 text, with and without the bulk check."""
    rng = random.Random(100 + seed)
    bodies = []
    for _ in range(1000):
        tensors = good_body(rng)
        for _ in range(rng.choice([0, 1, 2])):
            mutate(tensors, rng)
        bodies.append(json.dumps({"id": "r", "inputs": tensors}).encode())
    with_bulk = [parsed(body) for body in bodies]
    monkeypatch.setattr(v2, "_common_columns", lambda tensors, schema: None)
    alone = [parsed(body) for body in bodies]
    assert with_bulk == alone
    accepted = sum(isinstance(a, v2.InferRequest) for a in alone)
    assert accepted > 200 and len(alone) - accepted > 200


def decode_bytes_row_by_row(raw: bytes, n: int, name: str) -> list[str]:
    """`_decode_bytes` as it was before it cut first and decoded after: the reference for its answers."""
    values, offset = [], 0
    for row in range(n):
        if offset + 4 > len(raw):
            raise ClientError(400, f"input {name!r}: binary data ends before row {row}")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise ClientError(400, f"input {name!r}: row {row} runs past the end of its binary data")
        try:
            values.append(raw[offset:offset + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise ClientError(400, f"input {name!r}: row {row} is not UTF-8 text") from None
        offset += length
    if offset != len(raw):
        raise ClientError(400, f"input {name!r}: {len(raw) - offset} bytes after its {n} values")
    return values


def outcome(decode: Any, raw: bytes, n: int) -> Any:
    try:
        return decode(raw, n, "c")
    except ClientError as error:
        return ("error", error.status, error.message)


def test_binary_text_decodes_and_fails_as_row_by_row() -> None:
    rng = random.Random(3)
    failed = 0
    for _ in range(4000):
        values = [rng.choice(["", "a", "pro", "é", "日本", "x" * 40]) for _ in range(rng.randint(0, 6))]
        raw = bytearray(b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values))
        n = len(values) + rng.choice([0, 0, 0, -1, 1])
        for _ in range(rng.choice([0, 0, 1, 2])):
            spot = rng.randrange(len(raw) + 1)
            kind = rng.randrange(4)
            if kind == 0:
                del raw[spot:]  # truncated
            elif kind == 1:
                raw[spot:spot] = bytes([rng.choice([0, 1, 0xFF, 0xC3, 0x41])])  # a stray byte: framing or UTF-8
            elif kind == 2 and raw:
                raw[min(spot, len(raw) - 1)] = rng.choice([0xFF, 0x80, 0x00, 0x05])
            else:
                raw += b"\x00" * rng.randint(1, 5)
        expected = outcome(decode_bytes_row_by_row, bytes(raw), max(n, 0))
        assert outcome(v2._decode_bytes, bytes(raw), max(n, 0)) == expected, (bytes(raw), n)
        failed += isinstance(expected, tuple)
    assert 1000 < failed < 3000  # both answers and errors were compared


# --- the binary body (tritonclient's default): `_common_binary` against `_columns` -------------------------------


def good_binary_body(rng: random.Random) -> tuple[list[dict[str, Any]], bytes]:
    """Tensors as tritonclient writes them for numpy input: FP32 numbers first, then BYTES text, all binary."""
    n = rng.choice([1, 1, 2, 3, 5])
    shape = rng.choice([[n], [n, 1]])
    tensors, blobs = [], []
    for name in SCHEMA.columns:
        if name in NUMBERS:
            blob = struct.pack(f"<{n}f", *(rng.choice([rng.uniform(-1e3, 1e3), 0.0, float("nan")]) for _ in range(n)))
            datatype = "FP32"
        else:
            texts = [rng.choice(["x", "", "2024-01-02", "é", "pro"]).encode() for _ in range(n)]
            blob, datatype = b"".join(struct.pack("<I", len(t)) + t for t in texts), "BYTES"
        fields = [("name", name), ("datatype", datatype), ("shape", list(shape)),
                  ("parameters", {"binary_data_size": len(blob)})]
        rng.shuffle(fields)
        tensors.append(dict(fields))
        blobs.append(blob)
    return tensors, b"".join(blobs)


def mutate_binary(tensors: list[Any], binary: bytes, rng: random.Random) -> bytes:
    """One way a binary body is wrong or merely uncommon; returns the (maybe changed) binary part."""
    i = rng.randrange(len(tensors))
    tensor = tensors[i]
    kind = rng.randrange(13) if isinstance(tensor, dict) else 0
    if kind == 0:
        tensors[i], tensors[-1 - i] = tensors[-1 - i], tensors[i]
    elif kind == 1:
        tensor["parameters"] = rng.choice([{}, None, 3, {"binary_data_size": True}, {"binary_data_size": 2.0},
                                           {"binary_data_size": -1}, {"binary_data_size": 4, "x": 1}])
    elif kind == 2 and isinstance(tensor.get("parameters"), dict):
        size = tensor["parameters"].get("binary_data_size")
        if type(size) is int:
            tensor["parameters"]["binary_data_size"] = max(0, size + rng.choice([-5, -4, -1, 1, 4]))
    elif kind == 3:
        tensor["datatype"] = rng.choice(["FP64", "FP16", "INT32", "BOOL", "BYTES", "FP32", None, ["FP32"]])
    elif kind == 4:
        n = tensor["shape"][0] if isinstance(tensor.get("shape"), list) and tensor["shape"] else 1
        tensor["shape"] = rng.choice([[n, 2], [n + 1], [n, 1.0], [True], [], [0], [6], [-1], None, [n, 1, 1]])
    elif kind == 5:
        tensor.pop(rng.choice(["parameters", "shape", "datatype", "name"]), None)
    elif kind == 6:
        tensor["data"] = [1.0]  # a fifth field, or JSON data beside binary ones
    elif kind == 7:
        tensor["name"] = rng.choice(["zz", 3, None])
    elif kind == 8:
        return binary[:rng.randrange(len(binary) + 1)]  # truncated
    elif kind == 9:
        return binary + bytes(rng.randint(1, 5))
    elif kind == 10 and binary:  # a wrong byte: a length prefix, a number, or text that is no longer UTF-8
        spot = rng.randrange(len(binary))
        return binary[:spot] + bytes([rng.choice([0xFF, 0x80, 0x00, 0x41])]) + binary[spot + 1:]
    elif kind == 11:
        tensors[i] = rng.choice([1, "abcd", [tensor, 1, 2, 3]])
    elif kind == 12 and binary:  # the last byte, of the last text tensor: no longer UTF-8, or a length too long
        return binary[:-1] + b"\xff"
    return binary


def binary_outcome(parse: Any, tensors: list[Any], binary: bytes) -> Any:
    try:
        return parse(tensors, SCHEMA, binary)
    except ClientError as error:
        return ("error", error.status, error.message)


@pytest.mark.parametrize("seed", range(4))
def test_the_binary_bulk_check_answers_as_the_tensor_path(seed: int) -> None:
    """Where `_common_binary` answers (columns or a 400), `_columns` gives the same; elsewhere it steps aside."""
    rng = random.Random(200 + seed)
    common = errors = stepped_aside = 0
    for _ in range(1500):
        tensors, binary = good_binary_body(rng)
        mutations = rng.choice([0, 0, 1, 2, 3])
        for _ in range(mutations):
            binary = mutate_binary(tensors, binary, rng)
        fast = binary_outcome(v2._common_binary, tensors, binary)
        expected = binary_outcome(v2._columns, tensors, binary)
        if fast is None:
            assert mutations, tensors  # every unbroken body takes the bulk check
            stepped_aside += 1
            continue
        # same columns (arrays by dtype and bytes, NaN included; text value for value) or the same 400
        assert repr(fast) == repr(expected), (tensors, binary)
        if isinstance(fast, tuple) and fast[0] == "error":
            errors += 1
        else:
            common += 1
            for name in SCHEMA.columns:
                a, b = fast[0][name], expected[0][name]
                assert type(a) is type(b) and (not isinstance(a, np.ndarray) or (a.dtype == b.dtype
                                                                                  and a.tobytes() == b.tobytes()))
    assert common > 500 and errors > 20 and stepped_aside > 300  # every side was exercised


def test_a_binary_body_parses_alike_with_and_without_the_bulk_check(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(300)
    bodies = []
    for _ in range(1000):
        tensors, binary = good_binary_body(rng)
        for _ in range(rng.choice([0, 1, 2])):
            binary = mutate_binary(tensors, binary, rng)
        header = json.dumps({"id": "r", "inputs": tensors}).encode()
        bodies.append((header + binary, str(len(header))))
    model = SimpleNamespace(schema=SCHEMA, classes=None)

    def answers() -> list[Any]:
        out = []
        for body, length in bodies:
            try:
                out.append(repr(v2.parse_infer(body, length, model)))  # type: ignore[arg-type]
            except ClientError as error:
                out.append(("error", error.status, error.message))
        return out

    with_bulk = answers()
    monkeypatch.setattr(v2, "_common_binary", lambda tensors, schema, binary: None)
    assert with_bulk == answers()


def test_a_category_column_of_codes_may_come_as_a_number_tensor_and_a_date_may_not() -> None:
    """A DataFrame's int code column becomes an INT64 tensor (tritonclient's np_to_triton_dtype): V1 and MLflow's
    routes read such numbers as the text training made of them, and so does V2, in JSON and binary. A date is text."""
    def tensor(name: str, datatype: str, data: list[Any]) -> dict[str, Any]:
        return {"name": name, "datatype": datatype, "shape": [len(data), 1], "data": data}

    numbers = [tensor("a", "FP32", [1.0, 2.0]), tensor("b", "FP64", [3.0, 4.0])]
    for datatype, data in (("INT64", [7, 12]), ("FP64", [7.0, 12.0]), ("UINT8", [7, 12])):
        request = parsed(json.dumps({"inputs": [*numbers, tensor("d", "BYTES", ["2026-01-02", ""]),
                                                tensor("c", datatype, data)]}).encode())
        assert request.n == 2 and SCHEMA.feed(request.columns)["c"][:, 0].tolist() == ["7", "12"], datatype
    raw = np.array([7, 12], dtype="<i8").tobytes()
    header = json.dumps({"inputs": [*numbers, tensor("d", "BYTES", ["2026-01-02", ""]),
                                    {"name": "c", "datatype": "INT64", "shape": [2, 1],
                                     "parameters": {"binary_data_size": len(raw)}}]}).encode()
    request = v2.parse_infer(header + raw, str(len(header)), SimpleNamespace(schema=SCHEMA, classes=None))
    assert SCHEMA.feed(request.columns)["c"][:, 0].tolist() == ["7", "12"]
    refused = parsed(json.dumps({"inputs": [*numbers, tensor("d", "INT64", [2026, 2027]),
                                            tensor("c", "BYTES", ["x", "y"])]}).encode())
    assert refused == ("error", 400, "input 'd': datatype 'INT64' does not fit the model's text input; use BYTES")
