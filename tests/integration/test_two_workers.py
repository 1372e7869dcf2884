"""Two workers sharing a broker, with several tasks spread over them by partition: either
worker answers /status for a task and takes /crawl/stop for it, whichever of them owns its
partition (the other forwards the request; the token is checked where it arrives); either
lists every task (each task's status from its owner), stops and starts them all, and serves
their history.

One pair of workers serves every test of the module (the owner's tests first: they count the
requests the owner answered)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobstream.topics import partition_for
from tests.harness import TASK_ID, Broker, Simulator, Worker, http, wait_until
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


# TASK_ID (no name: its id is its name), then one named task on each partition.
NAMED = tasks_on_every_partition()
TASKS = [TASK_ID, *NAMED]
NAMES = [TASK_ID, "任务 0", "任务 1", "任务 2"]


def listing(worker: Worker, path: str = "/status") -> dict[str, Any]:
    code, body = http("GET", f"{worker.url}{path}")
    assert code == 200, body
    return dict(body["data"])


def post(worker: Worker, path: str) -> tuple[int, dict[str, Any]]:
    return http("POST", f"{worker.url}{path}", headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Worker, Worker]]:
    broker = Broker.start()
    sim = Simulator.serve(
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
                Path(tmp_path_factory.mktemp(f"worker-{name}")),
                {
                    "api": sim.api(
                        task_id=TASK_ID,
                        tasks=[{"id": t, "name": f"任务 {i}"} for i, t in enumerate(NAMED)],
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
            worker.stop(wait=False)
        sim.stop()
        broker.stop()


@pytest.fixture(scope="module")
def owned(pair: tuple[Worker, Worker]) -> tuple[Worker, Worker]:
    """(the owner of TASK_ID's partition, the other worker)."""
    owner = owner_of_task(list(pair))
    return owner, next(w for w in pair if w is not owner)


def owner_of_task(workers: list[Worker]) -> Worker:
    """The worker whose crawl loop picks TASK_ID up on the next tick."""
    line = f"task_id={TASK_ID} offset={TOTAL} crawl run starts"
    runs = [w.log().count(line) for w in workers]

    def crawling() -> Worker | None:
        return next(
            (w for w, before in zip(workers, runs, strict=True) if w.log().count(line) > before),
            None,
        )

    return wait_until(crawling, 10, "a worker crawling the task")


def served(worker: Worker, method: str, route: str) -> int:
    """How many requests for `route` the worker answered with 200 (from its /metrics)."""
    _, text = http("GET", f"{worker.url}/metrics")
    label = f'jobstream_http_requests_total{{method="{method}",route="{route}",status="200"}} '
    return next((int(float(x.split()[-1])) for x in text.splitlines() if x.startswith(label)), 0)


def test_owner_status_same_answer_from_either_worker(owned: tuple[Worker, Worker]) -> None:
    owner, other = owned
    answered_by_owner = served(owner, "GET", "/status")
    from_owner, from_other = owner.status(), other.status()
    assert from_owner["current_offset"] == from_other["current_offset"] == TOTAL
    assert from_other["rows"] == from_owner["rows"]
    # Both answers came from the owner: the other worker forwarded its request.
    assert served(owner, "GET", "/status") == answered_by_owner + 2


def test_owner_crawl_stop_on_other_worker_stops_task(owned: tuple[Worker, Worker]) -> None:
    owner, other = owned
    stops_before = served(owner, "POST", "/crawl/stop")
    status, body = http("POST", f"{other.url}/crawl/stop?task_id={TASK_ID}", headers={})
    assert status == 401, body  # the token is checked where the request arrives
    status, body = post(other, f"/crawl/stop?task_id={TASK_ID}")
    assert status == 200 and body["data"]["status"] == "stopped", body
    assert owner.status()["status"] == "stopped"
    assert served(owner, "POST", "/crawl/stop") == stops_before + 1
    status, body = post(other, f"/crawl/start?task_id={TASK_ID}")
    assert status == 200 and body["data"]["status"] in ("idle", "running"), body


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
        assert [t["name"] for t in found["tasks"]] == NAMES
        assert {t["status"] for t in found["tasks"]} <= {"idle", "running"}
    assert [t["rows"] for t in from_a["tasks"]] == [t["rows"] for t in from_b["tasks"]]


def test_workers_stop_all_and_start_all_from_either_worker(pair: tuple[Worker, Worker]) -> None:
    a, b = pair
    code, body = http("POST", f"{b.url}/crawl/stop")
    assert code == 401, body
    code, body = post(b, "/crawl/stop")
    assert code == 200, body
    assert [t["status"] for t in body["data"]["tasks"]] == ["stopped"] * len(TASKS)
    assert [t["status"] for t in listing(a)["tasks"]] == ["stopped"] * len(TASKS)
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
