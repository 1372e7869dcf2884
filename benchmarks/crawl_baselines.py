"""The yardstick `bench_crawl` measures jobstream against, run as its own process:

`hand`, a plain asyncio + aiokafka pipeline as a skilled engineer writes it in an afternoon:
aiohttp with `--in-flight` pages requested ahead (offset + size guessed, checked, the cursor
followed on a miss), `orjson` to decode the pages, jobstream's own rules (`classify_row`) with
one context for the whole crawl, so its memoised dates carry across pages, an AIOKafkaProducer
with 20 ms linger and 1 MiB batches, and progress (in SQLite) advanced over the contiguous
prefix of pages whose messages the broker acknowledged. No raw topic, no dedupe, no spool.

It publishes to job_data (3 partitions) and job_rejects exactly what jobstream publishes for the
same rows, and prints one JSON line: rows, jobs, API calls, CPU seconds and peak RSS of the whole
process. `python -m benchmarks.crawl_baselines hand --url U --task T --bootstrap B
--page-size 100`. (`naive`, a page-at-a-time loop with a send and a flush per page, is kept
for comparison with earlier numbers.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import time
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import msgspec
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from jobstream.records import Reject
from jobstream.transform.outcome import Kept, Rejected, RowContext, classify_row

ZONE = ZoneInfo("Asia/Shanghai")
MIB = 2**20
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder()


class Api:
    """Token and pages; 429 waits for Retry-After; request starts spaced for `rate`/s."""

    def __init__(self, session: aiohttp.ClientSession, url: str, task: str, rate: float) -> None:
        self.session, self.url, self.task = session, url, task
        self.interval = 1 / rate if rate > 0 else 0.0
        self.next_slot = 0.0
        self.calls = 0
        self.token = ""

    async def login(self) -> None:
        body = {"username": "demo", "password": "demo", "grant_type": "password"}
        async with self.session.post(f"{self.url}/token", json=body) as response:
            self.token = (await response.json())["data"]["access_token"]

    async def page(self, offset: int, size: int, decode: Any) -> dict[str, Any]:
        params = {"taskId": self.task, "offset": str(offset), "size": str(size)}
        headers = {"Authorization": f"Bearer {self.token}"}
        while True:
            if self.interval:
                now = time.monotonic()
                slot = max(now, self.next_slot)
                self.next_slot = slot + self.interval
                await asyncio.sleep(slot - now)
            self.calls += 1
            async with self.session.get(
                f"{self.url}/data/all", params=params, headers=headers
            ) as response:
                raw = await response.read()
                if response.status == 429:
                    wait = float(response.headers.get("Retry-After", "1"))
                    self.next_slot = max(self.next_slot, time.monotonic() + wait)
                    continue
                response.raise_for_status()
            return dict(decode(raw)["data"])


async def declare(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for name in ("job_data", "job_rejects"):
            try:
                await admin.create_topics([NewTopic(name, 3, 1)])
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


def judge(rows: list[Any], first: int, ctx: RowContext) -> tuple[list[Any], list[Any]]:
    """(key, value) of the jobs and of the rejects of rows from source offset `first`."""
    jobs, rejects = [], []
    for index, row in enumerate(rows):
        offset = first + index
        outcome = classify_row(row, offset, ctx)
        if isinstance(outcome, Kept):
            jobs.append((outcome.job.id.encode(), _ENCODER.encode(outcome.job)))
        elif isinstance(outcome, Rejected):
            reject = Reject(
                task_id=ctx.task_id,
                source_offset=offset,
                field=outcome.field,
                reason=outcome.reason,
                row=row,
                crawl_time=ctx.crawl_time,
            )
            rejects.append((f"{ctx.task_id}:{offset}".encode(), _ENCODER.encode(reject)))
    return jobs, rejects


def context(task: str) -> RowContext:
    return RowContext(task_id=task, now=datetime.now(ZONE), filter_days=7, demo=False)


class Progress:
    """The next source offset not yet safely published, advanced over the contiguous prefix of
    pages whose messages the broker acknowledged, and kept in SQLite."""

    def __init__(self, path: str, task: str) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS progress (task TEXT PRIMARY KEY, next_offset INTEGER)"
        )
        self.task = task
        self.offset = 0
        # (next offset after the page, the page's delivery futures), in page order.
        self.pages: deque[tuple[int, list[asyncio.Future[Any]]]] = deque()

    def sent(self, next_offset: int, deliveries: list[asyncio.Future[Any]]) -> None:
        self.pages.append((next_offset, deliveries))
        self.advance()

    def advance(self) -> None:
        moved = False
        while self.pages and all(f.done() for f in self.pages[0][1]):
            next_offset, deliveries = self.pages.popleft()
            for f in deliveries:
                f.result()  # a failed delivery stops the crawl here
            self.offset, moved = next_offset, True
        if moved:
            self.db.execute(
                "INSERT OR REPLACE INTO progress VALUES (?, ?)", (self.task, self.offset)
            )
            self.db.commit()

    async def drain(self) -> None:
        for _, deliveries in list(self.pages):
            await asyncio.gather(*deliveries)
        self.advance()


async def hand(api: Api, producer: AIOKafkaProducer, args: argparse.Namespace) -> tuple[int, int]:
    size, rows_done, jobs_sent = args.page_size, 0, 0
    pending: deque[tuple[int, asyncio.Task[dict[str, Any]]]] = deque()
    progress = Progress(args.progress_db, api.task)
    ctx = context(api.task)  # one for the crawl: dates memoised across pages
    guess = 0
    while True:
        while len(pending) < args.in_flight:
            pending.append((guess, asyncio.create_task(api.page(guess, size, orjson.loads))))
            guess += size
        requested, task = pending.popleft()
        page = await task
        rows = page["data"]
        jobs, rejects = judge(rows, requested, ctx)
        futures = [await producer.send("job_data", value, key=key) for key, value in jobs]
        futures += [await producer.send("job_rejects", value, key=key) for key, value in rejects]
        jobs_sent += len(jobs)
        offset = int(page["offset"])
        progress.sent(offset, futures)
        # Bounded memory: at most `in_flight` pages unacknowledged.
        while len(progress.pages) > args.in_flight:
            await asyncio.gather(*progress.pages[0][1])
            progress.advance()
        rows_done += len(rows)
        if page["restTotal"] == 0 or not rows:
            for _, left in pending:
                left.cancel()
            await producer.flush()
            await progress.drain()
            return rows_done, jobs_sent
        if offset != requested + size:  # the cursor did not go where the guesses went
            for _, left in pending:
                left.cancel()
            pending.clear()
            guess = offset


async def naive(api: Api, producer: AIOKafkaProducer, args: argparse.Namespace) -> tuple[int, int]:
    offset, rows_done, jobs_sent = 0, 0, 0
    deadline = time.monotonic() + args.max_seconds
    while time.monotonic() < deadline:
        page = await api.page(offset, args.page_size, json.loads)
        rows = page["data"]
        jobs, rejects = judge(rows, offset, context(api.task))
        for key, value in jobs:
            await producer.send("job_data", value, key=key)
        for key, value in rejects:
            await producer.send("job_rejects", value, key=key)
        await producer.flush()
        rows_done += len(rows)
        jobs_sent += len(jobs)
        offset = int(page["offset"])
        if page["restTotal"] == 0 or not rows:
            break
    return rows_done, jobs_sent


async def main(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    await declare(args.bootstrap)
    options: dict[str, Any] = {"bootstrap_servers": args.bootstrap}
    if args.kind == "hand":
        options.update(linger_ms=20, max_batch_size=MIB, max_request_size=MIB + 4096)
    producer = AIOKafkaProducer(**options)
    await producer.start()
    connector = aiohttp.TCPConnector(limit=max(args.in_flight, 1) * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        api = Api(session, args.url, args.task, args.rate)
        await api.login()
        ready = time.monotonic() - started
        crawl = hand if args.kind == "hand" else naive
        rows, jobs = await crawl(api, producer, args)
        await producer.flush()
    await producer.stop()
    return {
        "rows": rows,
        "jobs": jobs,
        "ready": ready,
        "calls": api.calls,
        "cpu": time.process_time(),
        "peak_rss_mb": peak_rss_mb(),
    }


def peak_rss_mb() -> float:
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over an exec, so a child of a
    # big parent would report the parent's peak.
    for text in Path("/proc/self/status").read_text().splitlines():
        if text.startswith("VmHWM:"):
            return int(text.split()[1]) / 1024
    return float("nan")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("hand", "naive"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--rate", type=float, default=0.0, help="API calls/s (0: no pacing)")
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="naive: stop after")
    parser.add_argument("--progress-db", default=":memory:", help="hand: its progress file")
    return parser.parse_args()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse_args()))), flush=True)
