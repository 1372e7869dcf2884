"""API pages become job_raw events through the outbox: consecutive pages joined, each event
encoded and framed once, sized by the bytes actually sent, no value over the message limit,
and every source offset in exactly one event, in order."""

from __future__ import annotations

import itertools
import random

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobstream.frames import ZSTD_MAGIC
from jobstream.limits import EXCERPT_BYTES, MESSAGE_HEADROOM
from jobstream.pipeline import outbox as outbox_module
from jobstream.pipeline.outbox import Outbox
from jobstream.pipeline.pages import decode_event, encode_event
from jobstream.records import RawPage
from jobstream.source import Page

LIMIT = 100_000
CHINESE = "岗位职责负责港内运输安全驾驶任职要求持有驾照福利待遇五险一金"
FETCHED_AT = "2026-01-15T10:30:00+08:00"


def make_page(rows: list, offset: int = 1000, next_offset: int | None = None) -> Page:
    end = offset + len(rows) if next_offset is None else next_offset
    return Page("t", offset, end, 5000, 5000 - end, rows)


def outbox(limit: int = LIMIT) -> Outbox:
    return Outbox("t", 0, source="demo", demo=True, max_message_bytes=limit)


def sent(pages: list[Page], limit: int = LIMIT) -> list[tuple[RawPage, bytes]]:
    box = outbox(limit)
    for i, page in enumerate(pages):
        box.add_page(page, f"2026-01-15T10:30:{i:02d}+08:00")
    return box.take()


def rows_of(events: list[tuple[RawPage, bytes]]) -> list[object]:
    return [msgspec.json.decode(row) for event, _ in events for row in event.rows]


def test_outbox_small_page_is_one_event_with_the_api_cursor() -> None:
    page = make_page([{"i": i} for i in range(100)], offset=200, next_offset=320)
    ((event, value),) = sent([page])
    assert (event.offset, event.next_offset, len(event.rows), event.demo) == (200, 320, 100, True)
    assert event.source == "demo" and event.unreadable == {} and event.total == 5000
    assert decode_event(value) == event


def test_outbox_joins_consecutive_pages_into_one_event_with_the_first_pages_now() -> None:
    pages = [make_page([{"i": i} for i in range(o, o + 100)], offset=o) for o in (0, 100, 200)]
    ((event, value),) = sent(pages)
    assert (event.offset, event.next_offset, len(event.rows)) == (0, 300, 300)
    assert msgspec.json.decode(event.rows[137]) == {"i": 137}
    assert event.fetched_at == "2026-01-15T10:30:00+08:00"
    assert value[:4] == ZSTD_MAGIC and decode_event(value) == event


def test_outbox_a_cursor_jump_ends_the_event_that_holds_it() -> None:
    jumped = make_page([{"i": i} for i in range(100)], offset=0, next_offset=130)
    after = [make_page([{"i": i} for i in range(o, o + 100)], offset=o) for o in (130, 230)]
    events = sent([jumped, *after])
    assert [(e.offset, e.next_offset, len(e.rows)) for e, _ in events] == [
        (0, 130, 100),
        (130, 330, 200),
    ]
    # Joined before it is fine: the skipped offsets stay at the end of their event.
    tail = sent([make_page([{"i": 0}] * 100, offset=0), make_page([{"i": 1}] * 100, 100, 230)])
    assert [(e.offset, e.next_offset, len(e.rows)) for e, _ in tail] == [(0, 230, 200)]


def test_outbox_empty_page_that_moves_the_cursor_still_travels() -> None:
    ((event, _),) = sent([make_page([], offset=400, next_offset=450)])
    assert (event.offset, event.next_offset, event.rows) == (400, 450, [])


def test_outbox_unreadable_rows_keep_their_notes_at_their_index() -> None:
    box = outbox()
    box.add_page(make_page([{"i": i} for i in range(10)], offset=0), FETCHED_AT)
    box.add_unreadable(10, 5000, why="cannot be parsed", excerpt_text="{{{", fetched_at=FETCHED_AT)
    box.add_page(make_page([{"i": i} for i in range(11, 20)], offset=11), FETCHED_AT)
    ((event, _),) = box.take()
    assert (event.offset, event.next_offset, len(event.rows)) == (0, 20, 20)
    assert event.unreadable == {10: "cannot be parsed"}
    assert msgspec.json.decode(event.rows[10]) == "{{{"


def test_outbox_chinese_rows_sized_as_sent_in_contiguous_events() -> None:
    rows = [{"i": i, "acb22a": CHINESE * 200} for i in range(60)]  # ~18 KB of UTF-8 each
    events = sent([make_page(rows, next_offset=1070)], limit=50_000)
    assert len(events) > 1
    assert events[0][0].offset == 1000 and events[-1][0].next_offset == 1070
    for (before, _), (after, _) in itertools.pairwise(events):
        assert before.next_offset == after.offset
        assert before.next_offset - before.offset == len(before.rows)
    assert rows_of(events) == rows
    assert all(len(value) <= 50_000 - MESSAGE_HEADROOM for _, value in events)
    # Compact UTF-8: Chinese costs 3 bytes a character, not a 6-byte \u escape.
    assert b"\\u" not in msgspec.json.encode(events[0][0])


def test_outbox_joins_more_than_one_limit_of_json_when_it_compresses() -> None:
    pages = [
        make_page([{"i": i, "x": "职位" * 10} for i in range(o, o + 100)], o)
        for o in range(0, 2200, 100)
    ]
    events = sent(pages)
    assert len(events) == 1 and len(msgspec.json.encode(events[0][0])) > LIMIT
    assert len(events[0][1]) <= LIMIT - MESSAGE_HEADROOM


def test_outbox_incompressible_rows_fall_back_to_events_under_the_limit() -> None:
    rng = random.Random(5)
    rows = [{"x": rng.randbytes(600).hex()} for _ in range(400)]  # about 1.2 KB a row
    limit = 150_000
    events = sent([make_page(rows[o : o + 100], offset=o) for o in range(0, 400, 100)], limit)
    assert len(events) > 1
    assert all(len(value) <= limit - MESSAGE_HEADROOM for _, value in events)
    assert [decode_event(value) for _, value in events] == [e for e, _ in events]
    assert rows_of(events) == rows


def test_outbox_encodes_and_frames_each_event_once(monkeypatch: pytest.MonkeyPatch) -> None:
    framed: list[int] = []
    frame = outbox_module.frame

    def counting(data: bytes) -> bytes:
        framed.append(len(data))
        return frame(data)

    monkeypatch.setattr(outbox_module, "frame", counting)
    pages = [
        make_page([{"i": i, "x": "职位" * 50} for i in range(o, o + 100)], o)
        for o in range(0, 3000, 100)
    ]
    events = sent(pages)
    assert len(framed) == len(events) >= 2


def test_outbox_row_too_large_alone_travels_as_excerpt_with_reason() -> None:
    rows = [{"i": 0}, {"i": 1, "acb22a": CHINESE * 5000}, {"i": 2}]  # the middle one ~150 KB
    ((event, _),) = sent([make_page(rows)])
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
    pages=st.lists(st.lists(ROW, max_size=30), min_size=1, max_size=4),
    limit=st.integers(min_value=20_000, max_value=200_000),
    big=st.lists(st.integers(min_value=0, max_value=29), max_size=3),
)
def test_outbox_no_value_over_the_limit_every_offset_once_property(pages, limit, big) -> None:
    for index in big:  # a few rows far beyond any limit
        if index < len(pages[0]):
            pages[0][index] = {"acb22a": CHINESE * (limit // 10)}
    offset, made = 1000, []
    for rows in pages:
        made.append(make_page(rows, offset=offset))
        offset += len(rows)
    events = sent(made, limit)
    for event, value in events:
        assert len(value) <= limit - MESSAGE_HEADROOM
        assert decode_event(value) == event
    assert sum(len(e.rows) for e, _ in events) == offset - 1000
    assert events[0][0].offset == 1000 and events[-1][0].next_offset == offset
    assert all(a.next_offset == b.offset for (a, _), (b, _) in itertools.pairwise(events))


def test_raw_events_travel_as_zstd_frames_and_plain_json_still_reads() -> None:
    page = RawPage(
        task_id="t", source="demo", offset=0, next_offset=50, total=50, fetched_at=FETCHED_AT,
        rows=[msgspec.Raw(msgspec.json.encode({"i": i, "x": "职位" * 10})) for i in range(50)],
        unreadable={7: "too large"},
    )  # fmt: skip
    value = encode_event(page)
    assert value[:4] == ZSTD_MAGIC and len(value) < len(msgspec.json.encode(page)) / 3
    assert decode_event(value) == page
    assert decode_event(msgspec.json.encode(page)) == page  # as earlier versions wrote it
