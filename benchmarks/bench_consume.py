"""What job_data's HTTP readers deliver: prints numbers, asserts nothing.

    python -m benchmarks.bench_consume [--messages 100000] [--streams 100]
                                       [--rates 200,500,2000] [--seconds 20] [--runs 3]

(from the repository root). Each run starts a fresh Tansu broker and a worker on it (its task
empty, so it crawls nothing), then:

1. fills job_data with `--messages` jobs (plain batches, as the worker writes them) and reads them
   all back with ONE sequential client, `GET /consume?batch_size=1000` after
   `GET /consume?batch_size=1000` until none is left: messages/s;
2. for each rate of `--rates` in turn (on the same worker): opens `--streams`
   `GET /consume/stream` clients, then produces that many jobs/s for `--seconds` (from a
   separate process) and measures, for every client, how many of them it received and how long
   after each was produced: the share delivered within 1 s, the median, p99 and worst delay,
   and the worker's CPU and peak RSS meanwhile; then closes the clients.

Everything stays on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from benchmarks.bench_crawl import cpu_seconds, peak_rss_mb
from tests.harness import Broker, Simulator, Worker

# A realistic job: ~600 bytes of JSON, Chinese text included.
JOB = {
    "id": "",
    "job_category": "机动车司机/驾驶",
    "job_title": "港内A2驾驶员",
    "company": "青岛唐盛物流有限公司",
    "salary": "1-1.5万",
    "location": "青岛黄岛区",
    "publish_date": "2026-01-13",
    "collect_time": "2026-01-15",
    "url": "https://www.zhaopin.com/jobdetail/CC000000000J00000000000.htm",
    "description": "岗位职责：负责港区内集装箱运输，服从调度安排，遵守安全操作规程。" * 2,
    "experience": "3-5年",
    "education": "不限",
    "crawl_time": "2026-01-15T10:30:00+08:00",
    "task_id": "00f3b445-d8ec-44e8-88b2-4b971a228b1e",
    "source_offset": 0,
    "demo": True,
}
_ENCODER = msgspec.json.Encoder()
_SENT_AT = re.compile(rb'"sent_at":([0-9.]+)')


def job(index: int, sent_at: float | None = None) -> tuple[bytes, bytes]:
    value = {**JOB, "id": str(uuid.UUID(int=index + 1)), "source_offset": index}
    if sent_at is not None:
        value["sent_at"] = sent_at
    return value["id"].encode(), _ENCODER.encode(value)


async def producer_for(bootstrap: str) -> AIOKafkaProducer:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic("job_data", 3, 1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=2**20)
    await producer.start()
    return producer


async def fill(bootstrap: str, count: int) -> None:
    producer = await producer_for(bootstrap)
    try:
        for start in range(0, count, 1000):
            futures = [
                await producer.send("job_data", value, key=key)
                for key, value in map(job, range(start, min(count, start + 1000)))
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def produce_paced(bootstrap: str, rate: float, seconds: float) -> int:
    """`rate` jobs a second for `seconds`, each stamped with when it was sent."""
    producer = await producer_for(bootstrap)
    sent, tick = 0, 0.01
    started = time.monotonic()
    try:
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate) - sent
            for _ in range(due):
                key, value = job(10_000_000 + sent, time.time())
                await producer.send("job_data", value, key=key)
                sent += 1
            await asyncio.sleep(tick)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def consume_all(url: str, count: int) -> tuple[float, int]:
    """One client, one request after the other, until `count` jobs came: (seconds, jobs)."""
    got = 0
    async with aiohttp.ClientSession() as session:
        # The group joins on its first call; the clock starts after it.
        async with session.get(f"{url}/consume", params={"batch_size": "1"}) as response:
            got += len((await response.json())["data"])
        started = time.monotonic()
        empty = 0
        # timeout_ms=0 would answer at once with what the reader holds, often nothing while
        # its fetch is out; the default 1000 waits for the next messages (none are missing).
        while got < count and empty < 3:
            async with session.get(f"{url}/consume", params={"batch_size": "1000"}) as response:
                body = await response.json()
            got += len(body["data"])
            empty = 0 if body["data"] else empty + 1
        return time.monotonic() - started, got


async def streams(
    url: str, clients: int, bootstrap: str, rate: float, seconds: float, pid: int
) -> dict[str, Any]:
    delays: list[list[float]] = [[] for _ in range(clients)]
    connected = 0
    all_connected = asyncio.Event()
    stop = asyncio.Event()
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)

    async def client(index: int, session: aiohttp.ClientSession) -> None:
        nonlocal connected
        async with session.get(f"{url}/consume/stream", timeout=timeout) as response:
            assert response.status == 200, response.status
            tail = b""
            async for chunk in response.content.iter_any():
                if not delays[index] and tail == b"" and b"retry:" in chunk:
                    connected += 1
                    if connected == clients:
                        all_connected.set()
                now = time.time()
                data = tail + chunk
                cut = data.rfind(b"\r\n\r\n")
                if cut < 0:
                    tail = data
                    continue
                complete, tail = data[: cut + 4], data[cut + 4 :]
                delays[index].extend(now - float(t) for t in _SENT_AT.findall(complete))
                if stop.is_set():
                    return

    connector = aiohttp.TCPConnector(limit=clients + 10)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(client(i, session)) for i in range(clients)]
        await asyncio.wait_for(all_connected.wait(), timeout=120)
        await asyncio.sleep(1.0)  # every stream's consumer has positioned itself
        cpu0, own0 = cpu_seconds(pid), time.process_time()
        command = [
            sys.executable, "-m", "benchmarks.bench_consume", "--produce", bootstrap,
            "--rate", str(rate), "--seconds", str(seconds),
        ]  # fmt: skip
        done = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
        out, _ = await done.communicate()
        produced = int(out.decode().strip().splitlines()[-1])
        for _ in range(50):  # up to 10 s for the last deliveries
            if min(len(d) for d in delays) >= produced:
                break
            await asyncio.sleep(0.2)
        cpu, own = cpu_seconds(pid) - cpu0, time.process_time() - own0
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    every = sorted(d for ds in delays for d in ds)
    within = sum(1 for d in every if d <= 1.0)
    return {
        "produced": produced,
        "clients_with_all": sum(1 for d in delays if len(d) >= produced),
        "fewest": min(len(d) for d in delays),
        "within_1s": within / (produced * clients) if produced else float("nan"),
        "p50": every[len(every) // 2] if every else float("nan"),
        "p99": every[int(len(every) * 0.99)] if every else float("nan"),
        "max": every[-1] if every else float("nan"),
        "worker_cpu_per_s": cpu / seconds,
        "clients_cpu_per_s": own / seconds,
        "peak_rss_mb": peak_rss_mb(pid),
    }


def one_run(args: argparse.Namespace, tmp: Path, sim: Simulator) -> dict[str, Any]:
    broker = Broker.start()
    tmp.mkdir()
    worker = Worker.configure(
        tmp,
        {
            "api": {"base_url": sim.url, "username": "demo", "password": "demo"},
            "kafka": {"bootstrap_servers": broker.bootstrap},
            "crawler": {"interval": 3600},
            "app": {"max_streams": args.streams + 10},
        },
    )
    try:
        worker.start()
        worker.wait_ready(120)
        asyncio.run(fill(broker.bootstrap, args.messages))
        seconds, got = asyncio.run(consume_all(worker.url, args.messages))
        assert worker.process is not None
        result: dict[str, Any] = {"consume_per_s": got / seconds, "consumed": got}
        for rate in args.rates:
            result[f"stream@{rate:g}"] = asyncio.run(
                streams(
                    worker.url, args.streams, broker.bootstrap, rate, args.seconds,
                    worker.process.pid,
                )
            )  # fmt: skip
            time.sleep(2.0)  # the streams closed, their backlog (if any) gone
        return result
    finally:
        worker.stop()
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument(
        "--rates",
        type=lambda text: [float(r) for r in text.split(",")],
        default=[200.0, 500.0, 2000.0],
        help="jobs/s produced while the streams are open, one measurement each (200,500,2000)",
    )
    parser.add_argument("--rate", type=float, default=2000.0, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--produce", metavar="BOOTSTRAP", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.produce:
        print(asyncio.run(produce_paced(args.produce, args.rate, args.seconds)), flush=True)
        return
    sim = Simulator.start("--total", "0")
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench_consume-") as tmp:
            for run in range(args.runs):
                result = one_run(args, Path(tmp) / f"run{run}", sim)
                results.append(result)
                print(f"run {run + 1}: {json.dumps(rounded(result))}", flush=True)
    finally:
        sim.stop()

    print(f"\nmedian of {len(results)} runs")
    print(
        f"GET /consume?batch_size=1000, one sequential client, {args.messages:,} jobs: "
        f"{statistics.median(r['consume_per_s'] for r in results):,.0f} messages/s"
    )
    for rate in args.rates:

        def median(key: str, rate: float = rate) -> float:
            return statistics.median(r[f"stream@{rate:g}"][key] for r in results)

        print(
            f"GET /consume/stream, {args.streams} clients, {rate:,.0f} jobs/s for "
            f"{args.seconds:g} s ({median('produced'):,.0f} jobs): "
            f"{median('clients_with_all'):.0f} of {args.streams} clients got every job; "
            f"{100 * median('within_1s'):.2f}% of deliveries within 1 s; delay p50 "
            f"{1000 * median('p50'):.0f} ms, p99 {1000 * median('p99'):.0f} ms, "
            f"max {1000 * median('max'):.0f} ms; worker {median('worker_cpu_per_s'):.2f} CPU s/s "
            f"(the clients {median('clients_cpu_per_s'):.2f}), "
            f"peak RSS {median('peak_rss_mb'):.0f} MB"
        )


def rounded(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return round(value, 3) if isinstance(value, float) else value


if __name__ == "__main__":
    main()
