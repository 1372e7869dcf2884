"""An independent consumer of job_data for `bench_crawl`: when each message became readable.

    python -m benchmarks.job_data_reader --bootstrap HOST:PORT [--topic job_data]

Connects as soon as the broker answers (it may not be up yet), reads every partition of the
topic from the beginning with a 10 ms fetch wait, and notes the monotonic clock (system-wide on
Linux, so comparable with the caller's) when the first and the last message arrived. It reads
until it has seen the count written to its standard input (one line; the caller knows it once
the system under test is done) and then nothing more for `--idle` seconds, and prints one JSON
line: first, last, messages, distinct keys, and (read again after the clock stopped) a digest
of the jobs (every field but crawl_time) that does not depend on order, so that two systems'
job_data can be compared without holding either in memory.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

_MASK = (1 << 128) - 1


def job_digest(key: bytes | None, value: bytes) -> int:
    """A 128-bit digest of one message: its key and every field of its job but crawl_time."""
    job = json.loads(value)
    job.pop("crawl_time", None)
    text = json.dumps([key.decode() if key else None, job], sort_keys=True, ensure_ascii=False)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=16).digest(), "big")


async def connect(bootstrap: str, topic: str) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    """A consumer assigned every partition of `topic`, once the broker and the topic exist."""
    host, _, port = bootstrap.rpartition(":")
    while True:  # quietly, until the broker listens
        try:
            _, writer = await asyncio.open_connection(host, int(port))
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        break
    while True:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            group_id=None,
            fetch_max_wait_ms=10,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 2**20,
        )
        try:
            await consumer.start()
        except (KafkaError, OSError):
            await consumer.stop()
            await asyncio.sleep(0.05)
            continue
        while True:
            partitions = await consumer._client.fetch_all_metadata()
            ids = partitions.partitions_for_topic(topic)
            if ids:
                tps = [TopicPartition(topic, p) for p in sorted(ids)]
                consumer.assign(tps)
                await consumer.seek_to_beginning(*tps)
                return consumer, tps
            await asyncio.sleep(0.05)


async def read(args: argparse.Namespace) -> dict[str, Any]:
    consumer, _ = await connect(args.bootstrap, args.topic)
    loop = asyncio.get_running_loop()
    expected: asyncio.Future[str] = loop.run_in_executor(None, sys.stdin.readline)
    first = last = 0.0
    messages = 0
    keys: set[bytes | None] = set()
    digest = 0
    quiet_since = time.monotonic()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=100, max_records=10_000)
            now = time.monotonic()
            got = [m for records in batch.values() for m in records]
            if got:
                if not messages:
                    first = now
                last = quiet_since = now
                messages += len(got)
                keys.update(m.key for m in got)
                continue
            if expected.done():
                text = expected.result().strip()
                goal = int(text) if text else 0
                if messages >= goal and now - quiet_since >= args.idle:
                    break
                if now - quiet_since >= args.deadline:
                    break
        if args.verify:
            # After the clock: the digest costs CPU the systems under test should not share.
            digest = await digest_of(consumer, messages)
        counts = await message_counts(consumer, args.count_topics)
    finally:
        await consumer.stop()
    return {
        "first": first,
        "last": last,
        "messages": messages,
        "keys": len(keys),
        "digest": f"{digest:032x}",
        "counts": counts,
    }


async def digest_of(consumer: AIOKafkaConsumer, count: int) -> int:
    """The order-free digest of the first `count` messages, read again from the beginning."""
    await consumer.seek_to_beginning()
    digest, seen = 0, 0
    while seen < count:
        batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
        if not batch:
            break
        for records in batch.values():
            for m in records:
                digest = (digest + job_digest(m.key, m.value)) & _MASK
                seen += 1
    return digest


async def message_counts(consumer: AIOKafkaConsumer, topics: list[str]) -> dict[str, int]:
    """Messages each topic holds (its partitions' end offsets; the embedded broker reports them
    short by up to a batch)."""
    counts = {}
    metadata = await consumer._client.fetch_all_metadata()
    for topic in topics:
        ids = metadata.partitions_for_topic(topic) or set()
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in ids]) if ids else {}
        counts[topic] = sum(ends.values())
    return counts


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", default="job_data")
    parser.add_argument("--idle", type=float, default=1.0, help="quiet seconds after the count")
    parser.add_argument("--deadline", type=float, default=60.0, help="quiet seconds to give up")
    parser.add_argument("--no-verify", dest="verify", action="store_false")
    parser.add_argument(
        "--count-topics",
        default="job_raw,job_candidates,job_data",
        type=lambda text: [t for t in text.split(",") if t],
        help="topics whose messages are counted at the end",
    )
    return parser.parse_args()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(read(parse_args()))), flush=True)
