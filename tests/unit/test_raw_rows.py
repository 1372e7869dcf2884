"""Rows travel as the API's own bytes when its answer is strict JSON in UTF-8, and are parsed
once, by the page agent, with what a lenient parse would have made of the rest."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
import pytest

from jobstream.pipeline.messages import page_messages
from jobstream.pipeline.outbox import Outbox
from jobstream.pipeline.pages import decode_event, read_row
from jobstream.source import body as page_body_module
from jobstream.source.body import NOT_JSON, decode_body, decode_page_body
from jobstream.source.paging import parse_page
from jobstream.transform.outcome import RowContext

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
ROW = (
    '{"Std_class": "技术", "aca112": "工程师", "AAB004": "某公司", "acb241": "1万",'
    ' "aab302": "北京", "aae397": "昨天", "Collect_time": "2026-01-15 10:30:00",'
    ' "ACE760": "https://example.com/j/1", "acb22a": "负责\\n开发\\"中\\"", "Experience": "",'
    ' "aac011": null}'
)


def page_body(*rows: str, key: str = "data") -> bytes:
    text = '{"data": {"total": 9, "offset": %d, "restTotal": 0, "%s": [%s]}, "requestId": "r"}'
    return (text % (len(rows), key, ", ".join(rows))).encode()


def test_decode_page_body_strict_answer_keeps_each_rows_bytes_as_sent() -> None:
    second = '{"aae397": "今天", "x": [1, {"y": 2}]}'
    body, why = decode_page_body(page_body(ROW, second))
    assert why is None
    rows = body["data"]["data"]
    assert [type(row) for row in rows] == [msgspec.Raw, msgspec.Raw]
    assert [bytes(row).decode() for row in rows] == [ROW, second]
    page = parse_page(body, "t", 0, 100)
    assert page.values() == [json.loads(ROW), json.loads(second)]
    assert (page.next_offset, page.total, page.is_last) == (2, 9, True)


def test_decode_page_body_datalist_variant_keeps_bytes() -> None:
    body, _ = decode_page_body(page_body(ROW, key="dataList"))
    assert bytes(body["data"]["dataList"][0]).decode() == ROW


def test_decode_page_body_answers_that_are_not_strict_are_read_leniently_as_values() -> None:
    for row in (
        '{"a": "\\ud800"}',  # a lone surrogate escape
        '{"a": "\\u4e2d\\ud800"}',  # escaped text, orjson refuses it too
        '{"a": NaN}',
        '{"a": "tab\tinside"}',  # a control character
    ):
        raw = page_body(ROW, row)
        body, why = decode_page_body(raw)
        assert why is None
        assert body == decode_body(raw)[0]
        assert all(type(r) is not msgspec.Raw for r in body["data"]["data"])
    invalid_utf8 = page_body(ROW).replace("工程师".encode(), b"\xff\xfe")
    body, _ = decode_page_body(invalid_utf8)
    assert body["data"]["data"][0]["aca112"] == "\ufffd\ufffd"


def test_decode_page_body_escaped_text_rows_become_compact_utf8_with_the_same_values() -> None:
    escaped = json.dumps(json.loads(ROW), ensure_ascii=True)
    emoji = '{"acb22a": "\\ud83d\\ude00 \\u4e2d\\u6587", "n": 12, "f": 1.5, "z": null}'
    body, why = decode_page_body(page_body(escaped, emoji))
    assert why is None
    rows = body["data"]["data"]
    assert [type(row) for row in rows] == [msgspec.Raw, msgspec.Raw]
    assert bytes(rows[1]) == '{"acb22a":"😀 中文","n":12,"f":1.5,"z":null}'.encode()
    assert parse_page(body, "t", 0, 100).values() == [json.loads(ROW), json.loads(emoji)]


def test_decode_page_body_escaped_text_with_long_numbers_keeps_the_apis_bytes() -> None:
    # orjson reads an integer beyond 64 bits as a float: such a page keeps its rows as sent.
    row = '{"acb22a": "\\u4e2d", "acb241": 123456789012345678901234567890}'
    body, _ = decode_page_body(page_body(row))
    assert bytes(body["data"]["data"][0]).decode() == row


def test_decode_page_body_errors_and_other_shapes_decode_as_before() -> None:
    for raw in (
        b'{"error": {"code": "Invalid.Token", "message": "no"}, "requestId": "r"}',
        b'{"error": {"code": "x", "message": "\\u9519"}, "data": {"data": []}}',
        b'{"data": {"data": "\\u4e0d a list"}}',
        b'{"data": {"total": 1, "offset": 1, "restTotal": 0, "data": [{}]}, "error": "x"}',
        b'{"data": {"data": "not a list"}}',
        b'{"data": []}',
        b"[1, 2]",
        b"<html>bad gateway</html>",
        b'{"data": {"total": 3',
    ):
        assert decode_page_body(raw) == decode_body(raw), raw
    deep = b'{"data": {"data": [' + b"[" * 5000 + b"]" * 5000 + b"]}}"
    assert decode_page_body(deep) == (NOT_JSON, "the answer is nested too deeply to parse")


def test_read_row_numbers_too_large_for_msgspec_read_as_a_lenient_parse_does() -> None:
    digits = "98765" * 1000
    assert read_row(msgspec.Raw(b'{"acb241": ' + digits.encode() + b"}")) == (
        {"acb241": digits},
        None,
    )
    # Infinity travels as null, as a leniently read row is encoded.
    assert read_row(msgspec.Raw(b'{"acb241": 1e999}')) == ({"acb241": None}, None)
    assert read_row(msgspec.Raw(ROW.encode())) == (json.loads(ROW), None)
    value, why = read_row(msgspec.Raw(b'{"a": '))
    assert value is None and why is not None and why.startswith("the row cannot be parsed")


def test_outbox_event_carries_the_apis_row_bytes_unchanged() -> None:
    digits = "1" * 5000
    huge = '{"aae397": "昨天", "Collect_time": "2026-01-15 10:30:00", "acb241": ' + digits + "}"
    body, _ = decode_page_body(page_body(ROW, huge))
    page = parse_page(body, "t", 0, 100)
    outbox = Outbox("t", 0, source="demo", demo=True, max_message_bytes=1_000_000)
    outbox.add_page(page, NOW.isoformat())
    [(_, value)] = outbox.take()
    event = decode_event(value)
    assert [bytes(row).decode() for row in event.rows] == [ROW, huge]
    ctx = RowContext(task_id="t", now=NOW, filter_days=7, demo=True)
    out = page_messages(event, 0, ctx, 1_000_000)
    assert out.counts.published == 2 and not out.rejects
    salaries = [json.loads(job)["salary"] for _, job in out.jobs]
    assert salaries == ["1万", digits]


def test_decode_page_body_large_escaped_page_rewritten_a_few_rows_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A page beyond what is read whole (16 MiB) takes the same path as this one does at 1 MiB.
    monkeypatch.setattr(page_body_module, "WHOLE_PAGE_BYTES", 1 << 20)
    description = "岗位职责：负责后端开发。" * 60
    row = json.dumps({**json.loads(ROW), "acb22a": description}, ensure_ascii=True)
    raw = page_body(*[row] * 400)
    assert len(raw) > page_body_module.WHOLE_PAGE_BYTES
    body, why = decode_page_body(raw)
    assert why is None
    rows = body["data"]["data"]
    assert len(rows) == 400 and all(b"\\u" not in bytes(r) for r in rows)
    assert parse_page(body, "t", 0, 1000).values() == decode_body(raw)[0]["data"]["data"]
    # A row orjson refuses keeps every row as sent (the page agent reads them).
    refused = page_body(*[row] * 399, '{"n": 123456789012345678901234567890}')
    kept = decode_page_body(refused)[0]["data"]["data"]
    assert bytes(kept[0]).decode() == row
