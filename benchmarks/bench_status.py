"""GET /status with many tasks over several workers: prints numbers, asserts nothing.

    python -m benchmarks.bench_status [--tasks 200] [--workers 3] [--rows 30] [--calls 20]

(from the repository root). Starts a Tansu broker, the API simulator with `--tasks` tasks of
`--rows` rows each (its account limited to 20 calls/s, as the real one) and `--workers` workers
of one app on it; waits until every task is crawled; then, on each worker in turn, times
`--calls` GET /status (every task: the worker answers for its own and asks each other worker once
for theirs) and prints the median and the slowest, with how long the crawl of every task took
and the calls per second and 429s the simulator saw.

Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.harness import Broker, Simulator, Worker, http, wait_until

RATE = 20.0


@dataclass
class Timing:
    worker: int
    median_ms: float
    slowest_ms: float
    tasks_listed: int


def task_ids(count: int) -> list[str]:
    return [f"b5a7e000-0000-4000-8000-{n:012d}" for n in range(count)]


def listing(worker: Worker) -> list[dict[str, Any]]:
    code, body = http("GET", f"{worker.url}/status", timeout=30)
    return list(body["data"]["tasks"]) if code == 200 else []


def time_status(workers: list[Worker], calls: int) -> list[Timing]:
    timings = []
    for index, worker in enumerate(workers):
        seconds = []
        listed = 0
        for _ in range(calls):
            started = time.perf_counter()
            code, body = http("GET", f"{worker.url}/status", timeout=30)
            seconds.append(time.perf_counter() - started)
            listed = len(body["data"]["tasks"]) if code == 200 else 0
        timings.append(
            Timing(
                index,
                round(statistics.median(seconds) * 1000, 1),
                round(max(seconds) * 1000, 1),
                listed,
            )
        )
    return timings


def all_crawled(worker: Worker, tasks: list[str], rows: int) -> bool:
    entries = listing(worker)
    done = {
        e["task_id"]
        for e in entries
        if e.get("current_offset") == rows and e.get("status") == "idle"
    }
    return done == set(tasks)


def run(
    directory: Path, tasks: int, workers_count: int, rows: int, calls: int
) -> tuple[list[Timing], dict[str, Any]]:
    """Crawl `tasks` small tasks with `workers_count` workers and time /status on each."""
    ids = task_ids(tasks)
    broker = Broker.start()
    sim = Simulator.start(
        "--total", str(rows), "--rate-limit", str(RATE), "--rate-burst-seconds", "1",
        *(arg for task in ids for arg in ("--task-id", task)),
    )  # fmt: skip
    workers: list[Worker] = []
    try:
        for n in range(workers_count):
            path = directory / f"worker-{n}"
            path.mkdir()
            worker = Worker.configure(
                path,
                {
                    "api": sim.api(task_id=ids, max_requests_per_second=RATE),
                    "kafka": {"bootstrap_servers": broker.bootstrap},
                    "crawler": {"interval": 3600},
                },
            )
            workers.append(worker.start())
        started = time.monotonic()
        for worker in workers:
            worker.wait_ready(120)
        wait_until(lambda: all_crawled(workers[0], ids, rows), 300, "every task crawled")
        crawled = time.monotonic() - started
        stats = sim.stats()
        account = stats["accounts"]["demo"]
        arrivals = account["arrivals"]
        summary = {
            "crawl_seconds": round(crawled, 1),
            "calls": len(arrivals),
            "calls_per_second": round(
                (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0, 1
            ),
            "429": account["statuses"].get("429", 0),
            "tasks_per_worker": _owned(workers, ids),
        }
        return time_status(workers, calls), summary
    finally:
        with contextlib.ExitStack() as cleanup:
            cleanup.callback(broker.stop)
            cleanup.callback(sim.stop)
            for worker in workers:
                cleanup.callback(worker.stop)


def _owned(workers: list[Worker], tasks: list[str]) -> list[int]:
    """How many tasks each worker crawled (from its log: one run start per task at least)."""
    logs = [worker.log() for worker in workers]
    return [sum(f"task_id={t} offset=0 crawl run starts" in log for t in tasks) for log in logs]


def report(tasks: int, timings: list[Timing], summary: dict[str, Any]) -> str:
    lines = [
        f"{tasks} tasks, {len(timings)} workers: every task crawled {summary['crawl_seconds']}s "
        f"after the workers started ({summary['calls']} calls, {summary['calls_per_second']}/s "
        f"from the first to the last, {summary['429']} x 429; runs started per worker "
        f"{summary['tasks_per_worker']})"
    ]
    for t in timings:
        lines.append(
            f"  GET /status on worker {t.worker}: {t.tasks_listed} tasks listed, median "
            f"{t.median_ms} ms, slowest {t.slowest_ms} ms"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--rows", type=int, default=30)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        timings, summary = run(Path(directory), args.tasks, args.workers, args.rows, args.calls)
    print(report(args.tasks, timings, summary))


if __name__ == "__main__":
    main()
