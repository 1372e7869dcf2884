"""An API page becomes raw events on job_raw: every row encoded once (repaired when it must
be), sized by the bytes actually sent, and no event over the message limit, ever."""

from __future__ import annotations

import itertools
import json

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from jobstream.pipeline.pages import EXCERPT_BYTES, encode_row, slice_page
from jobstream.records import RawPage
from jobstream.source import Page

LIMIT = 100_000
CHINESE = "岗位职责负责港内运输安全驾驶任职要求持有驾照福利待遇五险一金"


def make_page(rows: list, offset: int = 1000, next_offset: int | None = None) -> Page:
    end = offset + len(rows) if next_offset is None else next_offset
    return Page("t", offset, end, 5000, 5000 - end, rows)


def events_of(page: Page, limit: int = LIMIT) -> list[RawPage]:
    return slice_page(
        page, source="demo", fetched_at="2026-01-15T10:30:00+08:00", demo=True,
        max_event_bytes=limit,
    )  # fmt: skip


def wire(event: RawPage) -> bytes:
    return msgspec.json.encode(event)


def test_slice_page_small_page_is_one_event_with_the_api_cursor() -> None:
    page = make_page([{"i": i} for i in range(100)], offset=200, next_offset=320)
    (event,) = events_of(page)
    assert (event.offset, event.next_offset, len(event.rows), event.demo) == (200, 320, 100, True)
    assert event.source == "demo" and event.unreadable == {}


def test_slice_page_chinese_rows_sized_as_sent_in_contiguous_slices() -> None:
    rows = [{"i": i, "acb22a": CHINESE * 200} for i in range(60)]  # ~18 KB of UTF-8 each
    page = make_page(rows, next_offset=1070)
    events = events_of(page)

    assert len(events) > 1
    assert events[0].offset == 1000 and events[-1].next_offset == 1070
    for before, after in itertools.pairwise(events):
        assert before.next_offset == after.offset
        assert before.next_offset - before.offset == len(before.rows)
    decoded = [msgspec.json.decode(row) for e in events for row in e.rows]
    assert decoded == rows
    assert all(len(wire(e)) <= LIMIT for e in events)
    # Compact UTF-8: Chinese costs 3 bytes a character, not a 6-byte \u escape.
    assert b"\\u" not in wire(events[0])


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


def test_slice_page_row_too_large_alone_travels_as_excerpt_with_reason() -> None:
    rows = [{"i": 0}, {"i": 1, "acb22a": CHINESE * 5000}, {"i": 2}]  # the middle one ~150 KB
    (event,) = events_of(make_page(rows))
    assert list(event.unreadable) == [1]
    assert "too large for one Kafka message" in event.unreadable[1]
    excerpt = msgspec.json.decode(event.rows[1])
    assert isinstance(excerpt, str) and len(excerpt.encode()) <= EXCERPT_BYTES
    assert [msgspec.json.decode(event.rows[i]) for i in (0, 2)] == [{"i": 0}, {"i": 2}]


ROW_TEXT = st.one_of(
    st.text(alphabet=CHINESE, max_size=3000),
    st.text(max_size=2000),  # any code point, lone surrogates included
    st.sampled_from(["", "<script>alert(1)</script>", "\u0000\u001f", "😀" * 500]),
)
ROW = st.one_of(
    st.fixed_dictionaries({"aca112": ROW_TEXT, "acb22a": ROW_TEXT}),
    st.dictionaries(st.text(max_size=5), ROW_TEXT, max_size=4),
    ROW_TEXT,
    st.integers(min_value=-(10**40), max_value=10**40),
    st.lists(ROW_TEXT, max_size=3),
    st.none(),
)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(ROW, max_size=60),
    limit=st.integers(min_value=20_000, max_value=200_000),
    big=st.lists(st.integers(min_value=0, max_value=59), max_size=3),
)
def test_slice_page_no_event_over_the_limit_property(rows, limit, big) -> None:
    for index in big:  # a few rows far beyond any limit
        if index < len(rows):
            rows[index] = {"acb22a": CHINESE * (limit // 10)}
    events = events_of(make_page(rows), limit)
    for event in events:
        assert len(wire(event)) <= limit - 1024 + 1
    # Every offset is in exactly one event, in order.
    assert sum(len(e.rows) for e in events) == len(rows)
    assert events[0].offset == 1000 and events[-1].next_offset == 1000 + len(rows)
