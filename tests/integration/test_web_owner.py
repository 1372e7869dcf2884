"""Two workers sharing a broker: either one answers /status and takes /crawl/stop for the task,
whichever of them owns its partition (the other forwards the request)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import TASK_ID, Broker, Simulator, Worker, http, wait_until

pytestmark = pytest.mark.slow

TOKEN = "owner-test-token"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Worker, Worker]]:
    broker = Broker.start()
    sim = Simulator.start("--rate-limit", "0", "--total", "300")
    workers: list[Worker] = []
    try:
        for name in ("a", "b"):
            worker = Worker.configure(
                Path(tmp_path_factory.mktemp(f"worker-{name}")),
                {
                    "api": sim.api(),
                    "kafka": {"bootstrap_servers": broker.bootstrap},
                    "crawler": {"interval": 2},
                    "app": {"admin_token": TOKEN},
                },
            )
            workers.append(worker.start())
        for worker in workers:
            worker.wait_ready(90)
        # Whoever owns the task once both have joined crawls it to the end.
        workers[0].wait_status(lambda s: s["current_offset"] == 300, timeout=60)
        owner = owner_of_task(workers)
        yield owner, next(w for w in workers if w is not owner)
    finally:
        for worker in workers:
            worker.stop()
        sim.stop()
        broker.stop()


def owner_of_task(workers: list[Worker]) -> Worker:
    """The worker whose crawl loop picks the task up on the next tick."""
    line = f"task_id={TASK_ID} offset=300 crawl run starts"
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


def test_owner_status_same_answer_from_either_worker(pair: tuple[Worker, Worker]) -> None:
    owner, other = pair
    answered_by_owner = served(owner, "GET", "/status")
    from_owner, from_other = owner.status(), other.status()
    assert from_owner["current_offset"] == from_other["current_offset"] == 300
    assert from_other["rows"] == from_owner["rows"]
    # Both answers came from the owner: the other worker forwarded its request.
    assert served(owner, "GET", "/status") == answered_by_owner + 2


def test_owner_crawl_stop_on_other_worker_stops_task(pair: tuple[Worker, Worker]) -> None:
    owner, other = pair
    status, body = http("POST", f"{other.url}/crawl/stop", headers={})
    assert status == 401, body  # the token is checked where the request arrives
    status, body = http(
        "POST", f"{other.url}/crawl/stop", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert status == 200 and body["data"]["status"] == "stopped", body
    assert owner.status()["status"] == "stopped"
    assert served(owner, "POST", "/crawl/stop") == 1
    status, body = http(
        "POST", f"{other.url}/crawl/start", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert status == 200 and body["data"]["status"] in ("idle", "running"), body
