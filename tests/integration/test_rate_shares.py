"""One account, one rate, whatever the number of workers: two or three workers of one app crawl
tasks on every partition of one or two accounts, against a simulator that enforces each
account's calls per second (429 above it), with 200 ms of latency.

Each account's leaky bucket holds one second of its rate (the documented API's holds five): an
overshoot shows as 429s within a second or two of crawl, not only after five.

Before the crawl the tasks are empty and polled every second while the workers start and the
group settles; then every task grows at once, a start command has every task crawled at once,
and the test measures, per account, the calls per second the simulator received from the first
crawl call to the last, and every 429 of the whole run. Every task's job_data must equal the
simulator's truth. A last test adds a worker and kills one with -9 while they crawl: the
rebalances cost time, never a 429.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from jobstream.topics import partition_for
from tests.harness import Broker, Simulator, Worker, http, read_topic, wait_until
from tests.integration.truth import expected, settled

pytestmark = pytest.mark.slow

PARTITIONS = 3
# Pages of 50 rows: with pages of 10, a worker crawling one task at 5 pages a second waited
# for its pages to be applied for about a second in every three (the page agent stalls
# periodically; see the report of this test's commit), which is not what this test measures.
BATCH = 50
LATENCY_MS = 200
# Seconds of crawl each account is given (rows per task follow from its rate). Long enough that
# a stall of the machine does not decide the measure: with 10 s, one second lost while other
# test suites loaded the two cores (load average 8) took the rate to 89.7 % of 20/s.
CRAWL_SECONDS = 20


def spread_tasks(count: int, prefix: str) -> list[str]:
    """`count` task ids covering every partition."""
    found: list[str] = []
    n = 0
    while len(found) < count:
        task = f"{prefix}-0000-4000-8000-{n:012d}"
        n += 1
        covered = {partition_for(t, PARTITIONS) for t in found}
        if len(found) >= PARTITIONS or partition_for(task, PARTITIONS) not in covered:
            found.append(task)
    return found


def calls_per_second(arrivals: list[float]) -> float:
    return (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0


def busiest_second(arrivals: list[float]) -> int:
    """The most calls that arrived within any one second."""
    most, start = 0, 0
    for end, at in enumerate(arrivals):
        while at - arrivals[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


@dataclass
class Cluster:
    """A broker, the simulator with `accounts` (user name -> (calls per second, its tasks);
    "demo" is the default account), and workers of one app crawling every task."""

    tmp_path: Path
    accounts: dict[str, tuple[float, list[str]]]
    rows: dict[str, int]  # rows each task grows by
    broker: Broker = field(init=False)
    sim: Simulator = field(init=False)
    workers: list[Worker] = field(default_factory=list)
    grown_at: float = 0.0

    def __post_init__(self) -> None:
        sim_args = [
            "--total", "0", "--latency-ms", str(LATENCY_MS), "--rate-burst-seconds", "1",
            "--rate-limit", str(self.accounts["demo"][0]),
        ]  # fmt: skip
        api_accounts, task_settings = [], []
        for user, (rate, tasks) in self.accounts.items():
            for task in tasks:
                sim_args += ["--task-id", task if user == "demo" else f"{task}@{user}"]
                task_settings.append(
                    {"id": task} if user == "demo" else {"id": task, "account": user}
                )
            if user != "demo":
                sim_args += ["--account", f"{user}:pw-{user}-secret:{rate}"]
                api_accounts.append(
                    {
                        "name": user,
                        "username": user,
                        "password": f"pw-{user}-secret",
                        "max_requests_per_second": rate,
                    }
                )
        self.broker = Broker.start()
        self.sim = Simulator.start(*sim_args)
        self.settings = {
            "api": self.sim.api(
                task_id=list(self.rows),
                tasks=task_settings,
                accounts=api_accounts,
                batch_size=BATCH,
                max_requests_per_second=self.accounts["demo"][0],
            ),
            "kafka": {"bootstrap_servers": self.broker.bootstrap, "partitions": PARTITIONS},
            "crawler": {"interval": 1},
        }

    def add_worker(self) -> Worker:
        directory = self.tmp_path / f"worker-{len(self.workers)}"
        directory.mkdir()
        worker = Worker.configure(directory, self.settings).start()
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        with contextlib.ExitStack() as cleanup:  # every one, whichever fails
            cleanup.callback(self.broker.stop)
            cleanup.callback(self.sim.stop)
            for worker in self.workers:
                cleanup.callback(worker.stop)

    def settle(self) -> None:
        """Wait until every task has been polled twice by its owner after the last start."""
        since = time.monotonic() + 2

        def polled() -> bool:
            stats = self.sim.stats()["task_arrivals"]
            return all(sum(t > since for t in stats.get(task, [])) >= 2 for task in self.rows)

        wait_until(polled, 60, "every task polled after the workers settled")

    def grow_and_start(self) -> None:
        self.grown_at = time.monotonic()
        for task, n in self.rows.items():
            self.sim.grow(n, task)
        # Every task at once, rather than at its next poll (up to a second later).
        asker = next(w for w in self.workers if w.process is not None)
        code, body = http("POST", f"{asker.url}/crawl/start", {})
        assert code == 200, body

    def applied(self) -> int:
        """Rows applied of every task, as any live worker answers (0 for one not answered)."""
        asker = next(w for w in self.workers if w.process is not None)
        total = 0
        for task in self.rows:
            code, body = http("GET", f"{asker.url}/status?task_id={task}")
            total += body["data"]["current_offset"] if code == 200 else 0
        return total

    def done(self) -> bool:
        asker = next(w for w in self.workers if w.process is not None)
        for task, n in self.rows.items():
            code, body = http("GET", f"{asker.url}/status?task_id={task}")
            status = body.get("data") if code == 200 else None
            if not status or status["current_offset"] != n or not settled(status):
                return False
        return True

    async def check_job_data(self) -> None:
        """Every task's job_data equals the simulator's truth."""
        truths = {task: expected(self.sim.truth(task)) for task in self.rows}
        want = sum(len(e.published) for e in truths.values())
        jobs = await read_topic(self.broker.bootstrap, "job_data", expect=want)
        found: dict[str, set[int]] = {task: set() for task in self.rows}
        for _, job in jobs:
            found[job["task_id"]].add(job["source_offset"])
        for task, truth in truths.items():
            assert found[task] == truth.published, task

    def measure(self, took: float) -> dict[str, dict[str, Any]]:
        """Per account: the calls per second from the crawl's first call to its last, the
        busiest second and the 429s of the whole run."""
        stats = self.sim.stats()
        # A call that arrived this long before the growth was answered after it.
        since = self.grown_at - LATENCY_MS / 1000
        measured: dict[str, dict[str, Any]] = {}
        for user, (rate, tasks) in self.accounts.items():
            # The crawl ends with the last of each task's pages (one call a page).
            ends = []
            for task in tasks:
                calls = [t for t in stats["task_arrivals"][task] if t >= since]
                ends.append(calls[math.ceil(self.rows[task] / BATCH) - 1])
            account = stats["accounts"][user]
            crawl = [t for t in account["arrivals"] if since <= t <= max(ends)]
            measured[user] = {
                "rate": rate,
                "calls_per_second": calls_per_second(crawl),
                "busiest_second": busiest_second(account["arrivals"]),
                "calls": len(crawl),
                "429": account["statuses"].get("429", 0),
                "tasks": len(tasks),
            }
        print(
            f"{len(self.workers)} workers: "
            + "; ".join(
                f"account {user} at {m['rate']:g}/s, {m['tasks']} tasks: {m['calls']} calls at "
                f"{m['calls_per_second']:.1f}/s ({m['calls_per_second'] / m['rate']:.0%}), "
                f"busiest second {m['busiest_second']}, {m['429']} x 429"
                for user, m in measured.items()
            )
            + f"; all {sum(self.rows.values())} rows done in {took:.1f}s, job_data equal to "
            "the truth"
        )
        return measured


def rows_for(accounts: dict[str, tuple[float, list[str]]], seconds: float) -> dict[str, int]:
    """Rows per task for `seconds` of crawl at each account's rate."""
    return {
        task: int(rate * seconds / len(tasks)) * BATCH
        for rate, tasks in accounts.values()
        for task in tasks
    }


async def crawl_and_measure(
    tmp_path: Path, workers_count: int, accounts: dict[str, tuple[float, list[str]]]
) -> dict[str, dict[str, Any]]:
    cluster = Cluster(tmp_path, accounts, rows_for(accounts, CRAWL_SECONDS))
    try:
        for _ in range(workers_count):
            cluster.add_worker()
        for worker in cluster.workers:
            worker.wait_ready(90)
        cluster.settle()
        cluster.grow_and_start()
        wait_until(cluster.done, 120, "every task crawled")
        took = time.monotonic() - cluster.grown_at
        await cluster.check_job_data()
        return cluster.measure(took)
    finally:
        cluster.stop()


def check(measured: dict[str, dict[str, Any]]) -> None:
    for user, m in measured.items():
        assert m["429"] == 0, (user, m)
        assert m["calls_per_second"] >= 0.9 * m["rate"], (user, m)


@pytest.mark.parametrize("workers", [2, pytest.param(3, marks=pytest.mark.soak)])
async def test_rate_shares_workers_together_keep_to_the_account_rate(
    workers: int, tmp_path: Path
) -> None:
    tasks = spread_tasks(4, "5a7e0000")
    assert {partition_for(t, PARTITIONS) for t in tasks} == set(range(PARTITIONS))
    check(await crawl_and_measure(tmp_path, workers, {"demo": (20.0, tasks)}))


@pytest.mark.parametrize("workers", [2, pytest.param(3, marks=pytest.mark.soak)])
async def test_rate_shares_two_accounts_each_at_its_own_rate(workers: int, tmp_path: Path) -> None:
    tasks = spread_tasks(6, "5a7e0001")
    # Each account has tasks on two partitions or more, so two workers or more crawl for both.
    accounts = {"demo": (20.0, tasks[0::2]), "team_b": (10.0, tasks[1::2])}
    for _, owned in accounts.values():
        assert len({partition_for(t, PARTITIONS) for t in owned}) >= 2
    check(await crawl_and_measure(tmp_path, workers, accounts))


@pytest.mark.soak
async def test_rate_shares_worker_joining_and_one_killed_mid_crawl_cause_no_429(
    tmp_path: Path,
) -> None:
    accounts = {"demo": (20.0, spread_tasks(4, "5a7e0002"))}
    cluster = Cluster(tmp_path, accounts, rows_for(accounts, 20))
    total = sum(cluster.rows.values())
    try:
        for _ in range(2):
            cluster.add_worker()
        for worker in cluster.workers:
            worker.wait_ready(90)
        cluster.settle()
        cluster.grow_and_start()
        wait_until(lambda: cluster.applied() >= total // 4, 60, "a quarter of the crawl")
        cluster.add_worker().wait_ready(90)
        wait_until(lambda: cluster.applied() >= total // 2, 60, "half of the crawl")
        cluster.workers[0].kill()
        wait_until(cluster.done, 120, "every task crawled by the survivors")
        took = time.monotonic() - cluster.grown_at
        await cluster.check_job_data()
        measured = cluster.measure(took)
    finally:
        cluster.stop()
    assert measured["demo"]["429"] == 0, measured


def test_rate_shares_busiest_second_counts_a_sliding_window() -> None:
    assert busiest_second([0.0, 0.5, 0.99, 1.0, 1.2, 3.0]) == 4
    assert calls_per_second([1.0, 1.5, 2.0]) == 2.0
    assert Counter(partition_for(t, PARTITIONS) for t in spread_tasks(4, "5a7e0000")).total() == 4
