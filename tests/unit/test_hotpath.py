"""The hot path's shortcuts give exactly what the plain code gives: Kafka's murmur2, the
memoised dates and the batch partitioning (pages joined into events: tests/unit/test_outbox.py)."""

from __future__ import annotations

import random
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from jobstream.broker.batches import by_partition
from jobstream.errors import DateParseError
from jobstream.topics import key_partition, key_partitions, murmur2, murmur2_many, partition_for
from jobstream.transform.dates import parse_collect_date
from jobstream.transform.outcome import Kept, Rejected, RowContext, classify_row

SHANGHAI = ZoneInfo("Asia/Shanghai")
ENCODER = msgspec.json.Encoder()


@given(st.binary(max_size=200))
def test_murmur2_equals_aiokafkas(data):
    assert murmur2(data) == aiokafka_murmur2(data)


@given(
    st.lists(st.binary(min_size=36, max_size=36), max_size=80)
    | st.lists(st.binary(min_size=30, max_size=40), max_size=40)
)
def test_murmur2_many_equals_murmur2_of_each(keys):
    assert murmur2_many(keys) == [aiokafka_murmur2(key) for key in keys]


def test_key_partitions_of_job_ids_side_by_side():
    rng = random.Random(4)
    for count in (1, 7, 8, 9, 50, 333):
        ids = [str(uuid.UUID(int=rng.getrandbits(128))).encode() for _ in range(count)]
        ids[0] = b"\xff" * 36  # every lane's bits set
        for partitions in (1, 3, 12):
            expected = [key_partition(key, partitions) for key in ids]
            assert key_partitions(ids, partitions) == expected


def test_key_partition_equals_the_default_partitioner():
    rng = random.Random(3)
    for _ in range(500):
        key = bytes(rng.randrange(256) for _ in range(36))
        assert key_partition(key, 3) == DefaultPartitioner()(key, [0, 1, 2], [0, 1, 2])
    assert partition_for("task", 3) == key_partition(b"task", 3)


def test_messages_grouped_where_the_default_partitioner_puts_their_keys():
    rng = random.Random(5)
    ids = [str(uuid.UUID(int=rng.getrandbits(128))).encode() for _ in range(40)]
    rejects = [f"task:{n}".encode() for n in range(10)]  # job_rejects' keys: not ids
    for keys in (ids, rejects, ids + rejects):
        messages = [(key, b"v%d" % n) for n, key in enumerate(keys)]
        grouped = by_partition(messages, [0, 1, 2])
        for partition, group in grouped.items():
            for key, _ in group:
                assert DefaultPartitioner()(key, [0, 1, 2], [0, 1, 2]) == partition
        # Every message once, each partition's in their order.
        assert sorted(m for group in grouped.values() for m in group) == sorted(messages)
        for group in grouped.values():
            assert group == [m for m in messages if m in group]


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
