"""Several tasks on two workers: the tasks spread over the workers by partition, and either
worker lists them all (each task's status from its owner), stops and starts them all, and
serves their history."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobstream.topics import partition_for
from tests.harness import Broker, Simulator, Worker, http, wait_until
from tests.integration.truth import settled

pytestmark = pytest.mark.slow

TOKEN = "workers-token"
TOTAL = 300
PARTITIONS = 3


def tasks_on_every_partition() -> list[str]:
    """One task id per partition: with two workers, each owns at least one of them."""
    by_partition: dict[int, str] = {}
    for n in itertools.count():
        task_id = f"dash-task-{n}"
        by_partition.setdefault(partition_for(task_id, PARTITIONS), task_id)
        if len(by_partition) == PARTITIONS:
            return [by_partition[p] for p in range(PARTITIONS)]
    raise AssertionError("unreachable")


TASKS = tasks_on_every_partition()


def listing(worker: Worker, path: str = "/status") -> dict[str, Any]:
    code, body = http("GET", f"{worker.url}{path}")
    assert code == 200, body
    return dict(body["data"])


def post(worker: Worker, path: str) -> tuple[int, dict[str, Any]]:
    return http("POST", f"{worker.url}{path}", headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Worker, Worker]]:
    broker = Broker.start()
    sim = Simulator.start(
        "--rate-limit",
        "0",
        "--total",
        str(TOTAL),
        *itertools.chain(*(("--task-id", t) for t in TASKS)),
    )
    workers: list[Worker] = []
    try:
        for name in ("a", "b"):
            worker = Worker.configure(
                Path(tmp_path_factory.mktemp(f"dash-worker-{name}")),
                {
                    "api": sim.api(
                        task_id=TASKS[0],
                        tasks=[{"id": t, "name": f"任务 {i}"} for i, t in enumerate(TASKS)],
                    ),
                    "kafka": {"bootstrap_servers": broker.bootstrap},
                    "crawler": {"interval": 2},
                    "app": {"admin_token": TOKEN},
                },
            )
            workers.append(worker.start())
        for worker in workers:
            worker.wait_ready(90)

        def all_crawled() -> bool:
            tasks = listing(workers[0])["tasks"]
            return all(t.get("current_offset") == TOTAL for t in tasks)

        wait_until(all_crawled, 90, "every task crawled, as the first worker lists them")
        yield workers[0], workers[1]
    finally:
        for worker in workers:
            worker.stop()
        sim.stop()
        broker.stop()


def crawlers_of(worker: Worker) -> set[str]:
    """The tasks whose crawl runs the worker started in the last ticks (its log)."""
    lines = [line for line in worker.log().splitlines() if "crawl run starts" in line][-12:]
    return {t for t in TASKS for line in lines if f"task_id={t} " in line}


def test_workers_share_the_tasks_and_either_lists_them_all(pair: tuple[Worker, Worker]) -> None:
    a, b = pair
    owned = wait_until(
        lambda: (
            (crawlers_of(a), crawlers_of(b))
            if crawlers_of(a) and crawlers_of(b) and not crawlers_of(a) & crawlers_of(b)
            else None
        ),
        20,
        "each worker crawling tasks of its own",
    )
    assert owned[0] | owned[1] == set(TASKS)

    # Both answer alike once every task is crawled and its kept rows counted (the dedupe
    # agent counts them a moment after the page agent applied them).
    def counted() -> dict[str, Any] | None:
        found = listing(a)
        done = all(t["current_offset"] == TOTAL and settled(t) for t in found["tasks"])
        return found if done else None

    from_a = wait_until(counted, 60, "every task crawled and counted")
    from_b = listing(b)
    for found in (from_a, from_b):
        assert [t["task_id"] for t in found["tasks"]] == TASKS
        assert [t["name"] for t in found["tasks"]] == ["任务 0", "任务 1", "任务 2"]
        assert {t["status"] for t in found["tasks"]} <= {"idle", "running"}
    assert [t["rows"] for t in from_a["tasks"]] == [t["rows"] for t in from_b["tasks"]]


def test_workers_stop_all_and_start_all_from_either_worker(pair: tuple[Worker, Worker]) -> None:
    a, b = pair
    code, body = http("POST", f"{b.url}/crawl/stop")
    assert code == 401, body
    code, body = post(b, "/crawl/stop")
    assert code == 200, body
    assert [t["status"] for t in body["data"]["tasks"]] == ["stopped"] * 3
    assert [t["status"] for t in listing(a)["tasks"]] == ["stopped"] * 3
    code, body = post(a, "/crawl/start")
    assert code == 200, body
    assert {t["status"] for t in listing(b)["tasks"]} <= {"idle", "running"}


def test_workers_history_lists_every_task_from_its_owner(pair: tuple[Worker, Worker]) -> None:
    a, _ = pair

    def every_series() -> dict[str, Any] | None:
        found = listing(a, "/status/history")
        series_seen = all(t["rows_per_minute"] and t["error"] is None for t in found["tasks"])
        return found if series_seen else None

    found = wait_until(every_series, 20, "a series for every task")
    assert [t["task_id"] for t in found["tasks"]] == TASKS
    assert found["interval"] == 5.0 and found["kafka_lag"]
