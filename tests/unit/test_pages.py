"""A row as job_raw carries it: encoded once, compact UTF-8 JSON, repaired when it must be
(see tests/unit/test_outbox.py for how rows become events)."""

from __future__ import annotations

import json

import msgspec

from jobstream.pipeline.pages import encode_row


def test_encode_row_lone_surrogate_is_replaced_not_fatal() -> None:
    row = json.loads('{"aca112": "司机\\ud800", "\\udfff": ["x\\udc00"]}')
    encoded, problem = encode_row(row)
    assert problem is None
    assert msgspec.json.decode(encoded) == {"aca112": "司机\ufffd", "\ufffd": ["x\ufffd"]}


def test_encode_row_integer_beyond_64_bits_round_trips() -> None:
    encoded, problem = encode_row({"acb241": 10**300, "ok": 2**63 - 1})
    assert problem is None
    assert msgspec.json.decode(encoded) == {"acb241": 10**300, "ok": 2**63 - 1}


def test_encode_row_nan_becomes_null() -> None:
    encoded, problem = encode_row({"acb241": float("nan")})
    assert (msgspec.json.decode(encoded), problem) == ({"acb241": None}, None)
