"""Every topic and table jobstream uses, declared once: the data flow on one screen.

    Bazhuayu API --crawl--> job_raw (page slices, key task_id)
    job_raw --apply_pages--> job_rejects, and crawl_progress[task_id], and the kept jobs:
        dedupe on:  job_candidates (partition of the job id) --forward_first_sightings-->
                    job_data (key job id), published_jobs[job id]; counts to job_commands
        dedupe off: job_data (key job id)
    job_commands (start/stop/report/deduped, key task_id) --apply_commands--> crawl_progress

job_raw, job_commands and crawl_progress's changelog are co-partitioned by task_id, so one
worker owns a task's crawl, its progress and its control; job_candidates and published_jobs's
changelog are co-partitioned by job id, so one worker owns an id's dedupe state (Faust gives
partition p of every topic with the same partition count to one worker: those are all
`kafka.partitions`). Values are the msgspec-encoded records of
`jobstream.records` (compact UTF-8 JSON; on job_raw in a zstd frame, see
`pipeline.pages.encode_event`), sent and read as bytes: the records module is the one schema,
and the hot path never pays for Faust's per-message model machinery.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, cast

import faust

from jobstream.app import app

_KAFKA = app.settings.kafka

# internal=True: Faust creates them at start with `topic_partitions` partitions. Agents bind to
# them at import, so their names are read from the config then.
raw_topic = app.topic(
    _KAFKA.raw_topic,
    key_type=str,
    value_type=bytes,
    value_serializer="raw",
    internal=True,
    # Pages stay there for replays (kafka.raw_retention): set when the topic is created.
    retention=_KAFKA.raw_retention,
)
commands_topic = app.topic(
    _KAFKA.commands_topic, key_type=str, value_type=bytes, value_serializer="raw", internal=True
)
# Each message holds kept jobs whose ids fall in its partition (`records.Candidates`).
candidates_topic = app.topic(
    _KAFKA.candidates_topic,
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
    internal=True,
)


# Every worker's claims on its accounts' rates (`jobstream.rates`): one partition, so that
# reading one's own claim back means everything before it has been read; keyed by worker.
rate_claims_topic = app.topic(
    f"{app.settings.app.name}-rate-claims",
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
    partitions=1,
    compacting=True,
    internal=True,
)


class KeyPartitionedTable(faust.Table):
    """A table whose changelog entry for a key always goes to the key's own partition,
    `partition_of(key, partitions)`: the partition the key has on the topic the table is
    co-partitioned with.

    Faust's Table takes the changelog partition from the event being processed, so it may only
    be written from an agent's iteration; an event about a key comes from the key's partition,
    so the result is the same. Computing it from the key lets an agent write after it has moved
    on: the page agent writes a page's progress once its messages are acknowledged, the dedupe
    agent records what it forwarded once job_data has acknowledged it, and prunes entries of
    every partition it owns with no event at hand (tests/integration/test_concurrency.py reads
    crawl_progress's changelog to check the partitions). Not `use_partitioner=True`: that hashes
    the serialized key, which for a str key is its JSON text, quotes included, and so picks
    another partition.
    """

    def __init__(
        self, app: faust.App, *, partition_of: Callable[[Any, int], int], **kwargs: Any
    ) -> None:
        super().__init__(app, beacon=app.tables.beacon, **kwargs)
        self.partition_of = partition_of

    def partition_for_key(self, key: Any) -> int | None:
        return self.partition_of(key, self.partitions or app.settings.kafka.partitions)


crawl_progress = cast(
    KeyPartitionedTable,
    app.tables.add(
        KeyPartitionedTable(
            app,
            name="crawl_progress",
            key_type=str,
            value_type=bytes,
            default=None,
            partition_of=lambda task_id, n: partition_for(str(task_id), n),
        )
    ),
)


def job_partition(key: bytes, partitions: int) -> int:
    """The partition of a published_jobs key: a job id's on job_candidates (and job_data), or
    the one a partition's marker (`#<partition>`, see `jobstream.dedupe.published`) names."""
    if key[:1] == b"#":
        return int(key[1:])
    return key_partition(key, partitions)


# job id -> when it was first forwarded to job_data; keys and values are bytes, written by the
# dedupe agent in batches (see `jobstream.dedupe.published`). Declared whatever `dedupe.enabled`
# says: a worker with dedupe off still drains what job_candidates holds.
published_jobs = cast(
    KeyPartitionedTable,
    app.tables.add(
        KeyPartitionedTable(
            app,
            name="published_jobs",
            key_type=bytes,
            value_type=bytes,
            default=None,
            partition_of=job_partition,
            help="job id -> [first forwarded to job_data (Unix seconds), partition]",
        )
    ),
)


def data_topic() -> faust.TopicT:
    """job_data: the output, plain JSON keyed by job id (seed §5.3: 3 partitions)."""
    return _output_topic(app.settings.kafka.topic)


def rejects_topic() -> faust.TopicT:
    """job_rejects: rows that could not become jobs, with the reason and the raw row."""
    return _output_topic(app.settings.kafka.rejects_topic)


@cache
def _output_topic(name: str) -> faust.TopicT:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=app.settings.kafka.partitions,
    )


async def declare_outputs() -> None:
    """Create job_data and job_rejects with their partitions before the first send; a topic
    auto-created by a send would get the broker's default partition count."""
    await data_topic().maybe_declare()
    await rejects_topic().maybe_declare()


def partition_for(task_id: str, partitions: int) -> int:
    """The partition of a task on every co-partitioned topic (Kafka's default partitioner)."""
    return key_partition(task_id.encode(), partitions)


def key_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (Java's and aiokafka's) gives `key`."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


@cache
def _words(count: int) -> struct.Struct:
    """The unpacker of `count` little-endian 32-bit words (job ids come in a few lengths)."""
    return struct.Struct(f"<{count}I")


def murmur2(data: bytes) -> int:
    """MurmurHash2 as Kafka's partitioner computes it, equal to `aiokafka.partitioner.murmur2`
    and twice as fast: it runs once for every job sent (job_data is keyed by job id)."""
    length = len(data)
    words = length >> 2
    unpack = _words(words)
    h = 0x9747B28C ^ length
    for k in unpack.unpack_from(data):
        k = (k * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & ~3
    extra = length & 3
    if extra >= 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h = ((h ^ data[tail]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def key_partitions(keys: Sequence[bytes], partitions: int) -> list[int]:
    """`key_partition` of each key, the keys of job ids' length hashed side by side."""
    return [(h & 0x7FFFFFFF) % partitions for h in murmur2_many(keys)]


_ID_LENGTH = 36  # a job id's text: a UUID's 32 hex digits and 4 dashes
_ID_WORDS = _ID_LENGTH // 4
_LANE = (0x9747B28C ^ _ID_LENGTH).to_bytes(8, "little")
# The arrays below read and write machine words: little-endian ones of 32 and 64 bits.
_LANES = sys.byteorder == "little" and array("I").itemsize == 4 and array("Q").itemsize == 8


def murmur2_many(keys: Sequence[bytes]) -> list[int]:
    """`murmur2` of each key. Keys of a job id's length (36 bytes: 9 words, no tail) are hashed
    all at once, one key in each 64-bit lane of a few big integers: the product of two 32-bit
    numbers fits in its lane, and what a shift brings down from the next lane is masked away
    before any multiplication. For a page's ids, four times as fast as one at a time."""
    n = len(keys)
    if n < 8 or not _LANES or any(len(key) != _ID_LENGTH for key in keys):
        return [murmur2(key) for key in keys]
    # Each key's words, each word in 64 bits: key 0's 9 words, then key 1's...
    lanes = memoryview(array("Q", array("I", b"".join(keys))))
    mask = int.from_bytes(b"\xff\xff\xff\xff\0\0\0\0" * n, "little")
    m = _M
    h = int.from_bytes(_LANE * n, "little")
    for word in range(_ID_WORDS):
        k = int.from_bytes(lanes[word::_ID_WORDS].tobytes(), "little")  # that word of each key
        k = (k * m) & mask
        k = (((k ^ (k >> 24)) & mask) * m) & mask
        h = ((h * m) & mask) ^ k
    h = (((h ^ (h >> 13)) & mask) * m) & mask
    h = (h ^ (h >> 15)) & mask
    return array("Q", h.to_bytes(8 * n, "little")).tolist()


# --- Trace: what became of each row (jobstream.trace), kept for GET /trace and POST /replay.

# Decisions the page agent made about rows with a job id (filtered, rejected; published when
# dedupe is off), one message per page and partition of the ids (`trace.entries.Batch`), on
# their way to the worker that owns those ids' `trace_sightings`.
trace_topic = app.topic(
    _KAFKA.trace_topic,
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
    internal=True,
)


def trace_batch_partition(key: bytes, partitions: int) -> int:
    """The partition a `trace_sightings` key names: `<kind><partition>:<offset>`."""
    return int(key[1:].partition(b":")[0])


# <kind><partition>:<offset> -> a batch of decisions about job ids of that partition: "t" from
# job_trace's message at that offset, "d" from the dedupe agent's decisions on job_candidates'.
trace_sightings = cast(
    KeyPartitionedTable,
    app.tables.add(
        KeyPartitionedTable(
            app,
            name="trace_sightings",
            key_type=bytes,
            value_type=bytes,
            default=None,
            partition_of=trace_batch_partition,
            help="batches of decisions about job ids, by the message they were made for",
        )
    ),
)


def trace_page_partition(key: bytes, partitions: int) -> int:
    """The partition of a `trace_pages` key: its task's (`<task_id>|...`)."""
    return partition_for(key.partition(b"|")[0].decode(), partitions)


# <task_id>|<source_resets>|<first offset>|<origin> -> what became of each offset of one
# applied page (`trace.entries.PageRecord`), co-partitioned with job_raw and crawl_progress.
trace_pages = cast(
    KeyPartitionedTable,
    app.tables.add(
        KeyPartitionedTable(
            app,
            name="trace_pages",
            key_type=bytes,
            value_type=bytes,
            default=None,
            partition_of=trace_page_partition,
            help="what became of each offset of an applied page",
        )
    ),
)
