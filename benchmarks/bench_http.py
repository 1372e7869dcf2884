"""A short load run of the HTTP interface on loopback: prints numbers, asserts nothing.

    python -m benchmarks.bench_http [--rows 60000] [--clients 20] [--seconds 30]
                                    [--streams 100] [--stream-seconds 20]

(from the repository root). Starts the API simulator and a worker on its embedded broker (free
loopback ports), lets the worker crawl `--rows` source rows, then:

1. `--clients` concurrent GET /consume clients (one consumer group, batch_size 10,
   timeout_ms 0) for `--seconds`: requests/s, latency p50/p99, errors, messages/s, and whether
   any message was answered twice;
2. `--streams` concurrent GET /consume/stream?from=earliest clients for `--stream-seconds`:
   job events/s delivered in total, and the worker's resident memory before and during;
3. how long GET /consume on a drained group takes with timeout_ms 0 and 800, and how long the
   worker takes to stop with ten streams open (the tests check these happen, not how fast).

Everything stops by itself; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

from tests.harness import Simulator, Worker
from tests.integration.truth import settled


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def consume_load(url: str, clients: int, seconds: float) -> None:
    latencies: list[float] = []  # answers that carried jobs
    empty_latencies: list[float] = []  # answers once the group had read everything
    errors: Counter[str] = Counter()
    ids: Counter[str] = Counter()
    drained_at = 0.0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        # The group joins on its first call; the clock starts after it.
        async with session.get(f"{url}/consume", params={"batch_size": "1"}) as response:
            for job in (await response.json())["data"]:
                ids[job["id"]] += 1

        async def client() -> None:
            nonlocal drained_at
            while time.monotonic() < deadline:
                started = time.monotonic()
                try:
                    async with session.get(
                        f"{url}/consume", params={"batch_size": "10", "timeout_ms": "0"}
                    ) as response:
                        body = await response.json()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    errors[type(exc).__name__] += 1
                    continue
                if status != 200:
                    errors[str(status)] += 1
                    continue
                if body["data"]:
                    latencies.append(time.monotonic() - started)
                    drained_at = time.monotonic()
                else:
                    empty_latencies.append(time.monotonic() - started)
                for job in body["data"]:
                    ids[job["id"]] += 1

        started = time.monotonic()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.monotonic() - started
    repeated = sum(1 for n in ids.values() if n > 1)
    busy = max(drained_at - started, 1e-9)
    messages = sum(ids.values())
    print(f"GET /consume, {clients} concurrent clients on one group, {elapsed:.1f} s:")
    print(
        f"  while jobs were left ({busy:.1f} s): {len(latencies)} requests "
        f"({len(latencies) / busy:.0f}/s), {messages} jobs ({messages / busy:.0f}/s), "
        f"latency p50 {percentile(latencies, 0.50) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms"
    )
    idle = max(elapsed - busy, 1e-9)
    print(
        f"  after the group had read everything ({idle:.1f} s): {len(empty_latencies)} "
        f"empty answers ({len(empty_latencies) / idle:.0f}/s), "
        f"latency p50 {percentile(empty_latencies, 0.50) * 1000:.1f} ms, "
        f"p99 {percentile(empty_latencies, 0.99) * 1000:.1f} ms"
    )
    print(f"  errors {sum(errors.values())} {dict(errors) or ''}; jobs answered twice: {repeated}")


async def stream_load(url: str, streams: int, seconds: float, pid: int, total: int) -> None:
    counts = [0] * streams
    failures: Counter[str] = Counter()
    rss_before = rss_mib(pid)
    rss_peak = rss_before
    stop = asyncio.Event()
    timeout = aiohttp.ClientTimeout(total=None, sock_read=seconds + 30)

    async def client(index: int, session: aiohttp.ClientSession) -> None:
        try:
            async with session.get(
                f"{url}/consume/stream", params={"from": "earliest"}, timeout=timeout
            ) as response:
                if response.status != 200:
                    failures[str(response.status)] += 1
                    return
                tail = b""
                async for chunk in response.content.iter_any():
                    data = tail + chunk
                    counts[index] += data.count(b"\r\nevent: job\r\n")
                    tail = data[-16:]
                    if stop.is_set() or counts[index] >= total:
                        return
        except (aiohttp.ClientError, TimeoutError) as exc:
            failures[type(exc).__name__] += 1

    async def watch_memory() -> None:
        nonlocal rss_peak
        while not stop.is_set():
            rss_peak = max(rss_peak, rss_mib(pid))
            await asyncio.sleep(0.5)

    connector = aiohttp.TCPConnector(limit=streams)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic()
        tasks = [asyncio.create_task(client(i, session)) for i in range(streams)]
        watcher = asyncio.create_task(watch_memory())
        await asyncio.wait(tasks, timeout=seconds)
        stop.set()
        elapsed = time.monotonic() - started
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, watcher, return_exceptions=True)
    delivered = sum(counts)
    complete = sum(1 for c in counts if c >= total)
    print(f"GET /consume/stream?from=earliest, {streams} concurrent clients, {elapsed:.1f} s:")
    print(
        f"  job events      {delivered} ({delivered / elapsed:.0f}/s in total, "
        f"{delivered / elapsed / streams:.0f}/s per stream)"
    )
    print(
        f"  streams         {complete} of {streams} received all {total} messages, "
        f"failures {sum(failures.values())} {dict(failures) or ''}"
    )
    print(f"  worker RSS      {rss_before:.0f} MiB before, {rss_peak:.0f} MiB peak")


async def drained_waits(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for timeout_ms in (0, 800):
            started = time.monotonic()
            params = {"timeout_ms": str(timeout_ms)}
            async with session.get(f"{url}/consume", params=params) as response:
                count = (await response.json())["count"]
            took = (time.monotonic() - started) * 1000
            print(
                f"GET /consume?timeout_ms={timeout_ms}, drained group: {count} jobs, {took:.0f} ms"
            )


async def stop_with_streams(worker: Worker, streams: int) -> None:
    opened = asyncio.Event()
    ended: list[float] = []

    async def listen(session: aiohttp.ClientSession) -> None:
        async with session.get(f"{worker.url}/consume/stream") as response:
            async for _ in response.content.iter_any():
                if not opened.is_set():
                    opened.set()
        ended.append(time.monotonic())

    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        listeners = [asyncio.create_task(listen(session)) for _ in range(streams)]
        await asyncio.wait_for(opened.wait(), 30)
        await asyncio.sleep(0.5)  # let every stream open
        started = time.monotonic()
        code = await asyncio.to_thread(worker.stop)
        stopped = time.monotonic() - started
        await asyncio.gather(*listeners, return_exceptions=True)
    last = max(ended, default=started) - started
    print(
        f"worker stop with {streams} open streams: {stopped:.1f} s (exit code {code}); "
        f"the last stream ended after {last:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--stream-seconds", type=float, default=20.0)
    args = parser.parse_args()

    sim = Simulator.start("--rate-limit", "0", "--total", str(args.rows))
    with tempfile.TemporaryDirectory(prefix="bench_http-") as tmp:
        worker = Worker.configure(
            Path(tmp),
            {
                "api": sim.api(batch_size=1000),
                "crawler": {"interval": 3600},
                "app": {"max_streams": args.streams + 10},
            },
        )
        worker.fast_group_joins = False  # the ready time as a user will see it
        try:
            worker.start()
            print(f"worker ready in {worker.wait_ready(120):.1f} s")
            started = time.monotonic()
            status = worker.wait_status(
                lambda s: s["current_offset"] == args.rows and s["status"] == "idle" and settled(s),
                timeout=600,
            )
            published = status["rows"]["published"]
            print(
                f"crawled {args.rows} rows in {time.monotonic() - started:.1f} s: "
                f"{published} jobs in job_data"
            )
            assert worker.process is not None
            pid = worker.process.pid
            print(f"worker RSS {rss_mib(pid):.0f} MiB")
            asyncio.run(consume_load(worker.url, args.clients, args.seconds))
            asyncio.run(stream_load(worker.url, args.streams, args.stream_seconds, pid, published))
            asyncio.run(drained_waits(worker.url))
            asyncio.run(stop_with_streams(worker, 10))
        finally:
            worker.stop()
            sim.stop()


if __name__ == "__main__":
    main()
