"""The hot path's shortcuts give exactly what the plain code gives: pages joined into events,
Kafka's murmur2, the memoised dates and the batch partitioning."""

from __future__ import annotations

import itertools
import random
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from jobstream.errors import DateParseError
from jobstream.frames import ZSTD_MAGIC
from jobstream.pipeline.pages import (
    decode_event,
    encode_event,
    event_bytes,
    frames,
    merge_events,
)
from jobstream.records import RawPage
from jobstream.topics import key_partition, murmur2, partition_for
from jobstream.transform.dates import parse_collect_date
from jobstream.transform.outcome import Kept, Rejected, RowContext, classify_row

SHANGHAI = ZoneInfo("Asia/Shanghai")
ENCODER = msgspec.json.Encoder()


def event(offset: int, rows: int, *, skip: int = 0, unreadable: dict[int, str] | None = None):
    return RawPage(
        task_id="t",
        source="demo",
        offset=offset,
        next_offset=offset + rows + skip,
        total=10_000,
        fetched_at=f"2026-01-15T10:00:{offset % 60:02d}+08:00",
        rows=[
            msgspec.Raw(ENCODER.encode({"i": offset + i, "x": "职位" * 10})) for i in range(rows)
        ],
        unreadable=unreadable or {},
    )


def test_merge_events_joins_consecutive_pages_into_one_event():
    merged = merge_events([event(0, 100), event(100, 100), event(200, 50)], 1_000_000)
    assert len(merged) == 1
    only = merged[0]
    assert (only.offset, only.next_offset, len(only.rows)) == (0, 250, 250)
    assert msgspec.json.decode(only.rows[137]) == {"i": 137, "x": "职位" * 10}
    assert only.fetched_at == event(0, 1).fetched_at  # the first page's "now"


def test_merge_events_keeps_each_event_under_the_size_limit():
    events = [event(i * 100, 100) for i in range(20)]
    limit = 3 * event_bytes(events[0])
    merged = merge_events(events, limit)
    assert 1 < len(merged) < 20
    assert all(len(ENCODER.encode(e)) <= limit for e in merged)
    assert [r for e in merged for r in e.rows] == [r for e in events for r in e.rows]
    assert all(a.next_offset == b.offset for a, b in itertools.pairwise(merged))


def test_merge_events_a_jump_ends_the_event_that_holds_it():
    merged = merge_events([event(0, 100, skip=30), event(130, 100), event(230, 100)], 10**6)
    assert [(e.offset, e.next_offset, len(e.rows)) for e in merged] == [
        (0, 130, 100),
        (130, 330, 200),
    ]
    # Joined after it is fine: the skipped offsets stay at the end of their event.
    tail = merge_events([event(0, 100), event(100, 100, skip=30)], 10**6)
    assert [(e.offset, e.next_offset, len(e.rows)) for e in tail] == [(0, 230, 200)]


def test_merge_events_shifts_the_unreadable_notes_with_their_rows():
    merged = merge_events(
        [event(0, 10, unreadable={3: "a"}), event(10, 10, unreadable={0: "b"})], 10**6
    )
    assert merged[0].unreadable == {3: "a", 10: "b"}


@given(st.binary(max_size=200))
def test_murmur2_equals_aiokafkas(data):
    assert murmur2(data) == aiokafka_murmur2(data)


def test_key_partition_equals_the_default_partitioner():
    rng = random.Random(3)
    for _ in range(500):
        key = bytes(rng.randrange(256) for _ in range(36))
        assert key_partition(key, 3) == DefaultPartitioner()(key, [0, 1, 2], [0, 1, 2])
    assert partition_for("task", 3) == key_partition(b"task", 3)


def ctx() -> RowContext:
    return RowContext(
        task_id="t", now=datetime(2026, 1, 15, 12, tzinfo=SHANGHAI), filter_days=7, demo=False
    )


@given(
    st.from_regex(r"20\d\d-[01]\d-[0-3]\d [0-2]\d:[0-6]\d:[0-6]\d", fullmatch=True)
    | st.text(max_size=25)
)
def test_memoised_collect_dates_judge_as_the_parser_does(value):
    try:
        want: object = parse_collect_date(value, SHANGHAI)
    except DateParseError as exc:
        want = f"Collect_time: {exc}"
    context = ctx()
    row = {"aae397": "今天", "Collect_time": value, "ACE760": "https://x.example/1"}
    for _ in range(2):  # the second time from the memo
        got = classify_row(row, 0, context)
        if isinstance(want, str):
            assert isinstance(got, Rejected) and got.reason == want
        elif want >= context.oldest:
            assert isinstance(got, Kept) and got.job.collect_time == want.isoformat()
        else:
            assert not isinstance(got, Kept | Rejected)


def test_raw_events_travel_as_zstd_frames_and_plain_json_still_reads():
    page = event(0, 50, unreadable={7: "too large"})
    value = encode_event(page)
    assert value[:4] == ZSTD_MAGIC and len(value) < len(ENCODER.encode(page)) / 3
    assert decode_event(value) == page
    assert decode_event(ENCODER.encode(page)) == page  # as earlier versions wrote it


def test_frames_join_more_than_one_limit_of_json_when_it_compresses():
    events = [event(i * 100, 100) for i in range(22)]  # about 8 KB of JSON each
    limit = 100_000
    sent = list(frames(events, limit))
    assert len(sent) == 1 and len(ENCODER.encode(sent[0][0])) > limit
    assert all(len(value) <= limit - 1024 for _, value in sent)
    assert decode_event(sent[0][1]) == sent[0][0]


def test_frames_fall_back_to_events_under_the_limit_when_json_does_not_compress():
    rng = random.Random(5)
    rows = [
        msgspec.Raw(ENCODER.encode({"x": rng.randbytes(600).hex()})) for _ in range(400)
    ]  # incompressible: random hex, about 1.2 KB a row
    events = [
        msgspec.structs.replace(
            event(i * 100, 0), next_offset=(i + 1) * 100, rows=rows[i * 100 :][:100]
        )
        for i in range(4)
    ]
    limit = 150_000
    sent = list(frames(events, limit))
    assert len(sent) > 1
    assert all(len(value) <= limit - 1024 for _, value in sent)
    assert [decode_event(value) for _, value in sent] == [e for e, _ in sent]
    assert [r for e, _ in sent for r in e.rows] == rows
