"""The two yardsticks `bench_crawl` measures jobstream against, each run as its own process:

- `hand`: a hand-tuned plain asyncio + aiokafka pipeline, the best one would write without
  Faust: aiohttp with `--in-flight` pages requested ahead (offset + size guessed, checked, the
  cursor followed on a miss), msgspec decoding, jobstream's own rules (`classify_row`, with
  its memoised dates), an AIOKafkaProducer with 20 ms linger and 1 MiB batches, every send's
  future gathered once per page; no raw topic, no progress, no restart safety.
- `naive`: the loop a first version writes: one page at a time, stdlib json, one producer send
  per job with aiokafka's defaults and a flush per page.

Both publish to job_data (3 partitions) and job_rejects exactly what jobstream publishes for the
same rows, and print one JSON line: wall and CPU seconds of the crawl, rows, API calls, peak
RSS. `python -m benchmarks.crawl_baselines hand --url U --task T --bootstrap B --page-size 100`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import msgspec
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


async def hand(api: Api, producer: AIOKafkaProducer, args: argparse.Namespace) -> int:
    size, rows_done, offset = args.page_size, 0, 0
    pending: deque[tuple[int, asyncio.Task[dict[str, Any]]]] = deque()
    # Delivery futures of the pages sent, awaited `in_flight` pages later (bounded memory).
    deliveries: deque[list[asyncio.Future[Any]]] = deque()
    guess = 0
    while True:
        while len(pending) < args.in_flight:
            pending.append((guess, asyncio.create_task(api.page(guess, size, _DECODER.decode))))
            guess += size
        requested, task = pending.popleft()
        page = await task
        rows = page["data"]
        jobs, rejects = judge(rows, requested, context(api.task))
        futures = [producer.send("job_data", value, key=key) for key, value in jobs]
        futures += [producer.send("job_rejects", value, key=key) for key, value in rejects]
        deliveries.append([await f for f in futures])
        if len(deliveries) > args.in_flight:
            await asyncio.gather(*deliveries.popleft())
        rows_done += len(rows)
        offset = int(page["offset"])
        if page["restTotal"] == 0 or not rows:
            for _, left in pending:
                left.cancel()
            for page_deliveries in deliveries:
                await asyncio.gather(*page_deliveries)
            return rows_done
        if offset != requested + size:  # the cursor did not go where the guesses went
            for _, left in pending:
                left.cancel()
            pending.clear()
            guess = offset


async def naive(api: Api, producer: AIOKafkaProducer, args: argparse.Namespace) -> int:
    offset, rows_done = 0, 0
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
        offset = int(page["offset"])
        if page["restTotal"] == 0 or not rows:
            break
    return rows_done


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
        cpu, wall = time.process_time(), time.monotonic()
        crawl = hand if args.kind == "hand" else naive
        rows = await crawl(api, producer, args)
        await producer.flush()
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    await producer.stop()
    return {
        "rows": rows,
        "wall": wall,
        "cpu": cpu,
        "ready": ready,
        "calls": api.calls,
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
    return parser.parse_args()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse_args()))), flush=True)
