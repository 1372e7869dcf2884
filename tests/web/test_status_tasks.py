"""Several tasks in-process: /status lists them all, /crawl/start and /crawl/stop without
`task_id` reach every enabled task, and /status/history gives their series, each task answered
by its owner.

Two apps on the shared broker play two workers: `here` owns TASK_A and TASK_OFF, `there` owns
TASK_B. What only a worker has (the assignment, the recovered table, the commands agent) is
stood in for: who owns which task, a progress store per app, and a `send_command` that applies
the command at once. The views, the fan-out over HTTP, the token and the bodies are real.
tests/integration/test_dashboard_workers.py runs the same against real workers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import msgspec
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from jobstream import metrics
from jobstream.app import JobstreamApp
from jobstream.metrics import TaskThroughput
from jobstream.records import Progress
from jobstream.web import fanout, forwarding
from jobstream.web.history import HISTORY
from jobstream.web.status import Status, StatusList, TaskUnavailable
from tests.harness import Broker
from tests.web.conftest import Served, assert_json_error, config_for, serve

TOKEN = "tasks-token"
TASK_A = "7a5e0000-0000-4000-8000-0000000000aa"
TASK_B = "5d0c1c3e-0000-4000-8000-00000000beef"
TASK_OFF = "7e1f0000-0000-4000-8000-00000000cafe"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
TASKS = {
    "task_id": TASK_A,
    "tasks": [
        {"id": TASK_B, "name": f"上海 {HOSTILE}"},
        {"id": TASK_OFF, "name": "深圳", "enabled": False},
    ],
}


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Store:
    """A progress store that a test writes directly."""

    progress: dict[str, Progress] = field(default_factory=dict)

    def current(self, task_id: str) -> Progress:
        return self.progress.get(task_id) or Progress(task_id=task_id, source="demo")

    def changed(self, task_id: str) -> asyncio.Event:
        return asyncio.Event()  # this stand-in applies a command at once, or never

    def close(self) -> None:
        pass


@dataclass
class Workers:
    here: Served
    there: Served
    stores: dict[str, Store]  # task id -> the store of the app that owns it
    # (id of an app, task id) -> its owner as that app sees it, or what asking raises
    owners: dict[tuple[int, str], URL | Exception | None]
    sent: list[tuple[str, str]] = field(default_factory=list)

    def own(self, task_id: str, owner: Served | URL) -> None:
        """Make `owner` (an app, or any URL) the owner of the task, as both apps see it."""
        for app in (self.here, self.there):
            if isinstance(owner, URL):
                self.owners[(id(app.app), task_id)] = owner
            else:
                self.owners[(id(app.app), task_id)] = None if app is owner else URL(owner.url)


def stand_in_worker(served: Served, store: Store, send: Any) -> None:
    runtime = cast(Any, served.runtime)
    runtime.store = store
    runtime.crawler = SimpleNamespace(fetched={})
    runtime.commands = SimpleNamespace(send=send)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def _pair(session_broker: Broker) -> AsyncIterator[tuple[Served, Served]]:
    # A short http_timeout: a command that is not applied gives up (202) within half a second.
    config = config_for(
        session_broker.bootstrap,
        "job_data_tasks",
        api=TASKS,
        app={"admin_token": TOKEN},
        kafka={"http_timeout": 0.5},
    )
    here, there = await asyncio.gather(serve(config), serve(config))
    yield here, there
    for served in (here, there):
        await served.app.http_client.close()
    await asyncio.gather(here.close(), there.close())


@pytest.fixture
def workers(_pair: tuple[Served, Served], monkeypatch: pytest.MonkeyPatch) -> Iterator[Workers]:
    here, there = _pair
    store_here, store_there = Store(), Store()
    stores = {TASK_A: store_here, TASK_OFF: store_here, TASK_B: store_there}
    store_here.progress[TASK_A] = Progress(
        task_id=TASK_A, source="demo", current_offset=120, total=480, status="running",
        published=70, filtered=40, rejected=10, last_update="2026-01-15T10:30:00+08:00",
    )  # fmt: skip
    store_there.progress[TASK_B] = Progress(
        task_id=TASK_B, source="demo", current_offset=300, total=300, status="error",
        published=200, filtered=90, rejected=10, last_error=f"HTTP 400 Task.NotFound: {HOSTILE}",
    )  # fmt: skip
    found = Workers(here, there, stores, {})

    async def send_command(task_id: str, action: str, **fields: Any) -> None:
        found.sent.append((task_id, action))
        store = found.stores[task_id]
        before = store.current(task_id)
        after = "stopped" if action == "stop" else "idle"
        store.progress[task_id] = msgspec.structs.replace(before, status=after)

    stand_in_worker(here, store_here, send_command)
    stand_in_worker(there, store_there, send_command)
    found.own(TASK_A, here)
    found.own(TASK_OFF, here)
    found.own(TASK_B, there)

    def owner_of(app: JobstreamApp, task_id: str) -> URL | None:
        owner = found.owners[(id(app), task_id)]
        if isinstance(owner, Exception):
            raise owner
        return owner

    monkeypatch.setattr(fanout, "worker_started", lambda app: True)
    monkeypatch.setattr(fanout, "owner_of", owner_of)
    monkeypatch.setattr(forwarding, "owner_of", owner_of)
    yield found


async def get_json(served: Served, path: str, **kwargs: Any) -> tuple[int, Any]:
    response = await served.client.get(path, **kwargs)
    return response.status, await response.json()


async def test_status_lists_every_task_each_from_its_owner(workers: Workers) -> None:
    # The process started 30 s ago and has since applied 120 rows of TASK_A.
    workers.here.client.app[HISTORY].throughput = TaskThroughput(origin=time.monotonic() - 30)
    for outcome, n in (("kept", 70), ("filtered", 40), ("rejected", 10)):
        metrics.ROWS.labels(TASK_A, outcome).inc(n)
    for served in (workers.here, workers.there):
        status, body = await get_json(served, "/status")
        assert status == 200, body
        listing = msgspec.convert(body["data"], StatusList)
        assert [t["task_id"] for t in listing.tasks] == [TASK_A, TASK_B, TASK_OFF]
        a, b, off = (msgspec.convert(t, Status) for t in listing.tasks)
        assert (a.status, a.current_offset, a.progress, a.name) == (
            "running",
            120,
            "25.00%",
            TASK_A,
        )
        assert a.rows_per_minute == 120.0
        assert (b.status, b.name, b.last_error) == (
            "error",
            f"上海 {HOSTILE}",
            workers.stores[TASK_B].progress[TASK_B].last_error,
        )
        assert (off.enabled, off.name, a.enabled, b.enabled) == (False, "深圳", True, True)
        assert a.rows.duplicates == b.rows.duplicates == 0
        assert (
            listing.rows_per_minute == a.rows_per_minute + b.rows_per_minute + off.rows_per_minute
        )
        assert listing.kafka.consumer_group == workers.here.default_group


async def test_status_with_task_id_keeps_the_single_shape(workers: Workers) -> None:
    status, body = await get_json(workers.here, f"/status?task_id={TASK_B}")
    assert status == 200 and body["data"]["task_id"] == TASK_B and "tasks" not in body["data"]
    assert msgspec.convert(body["data"], Status).status == "error"
    status, body = await get_json(workers.here, "/status?task_id=nope")
    assert_json_error(status, body, 404)


async def test_status_listing_marks_a_slow_owner_unavailable_and_answers_the_rest(
    workers: Workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = asyncio.Event()

    async def stuck(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({"code": 0, "data": {}})

    slow_app = web.Application()
    slow_app.router.add_get("/status", stuck)
    async with TestServer(slow_app) as slow:
        workers.own(TASK_B, URL(str(slow.make_url("/"))))
        monkeypatch.setattr(fanout, "LISTING_TIMEOUT", 0.5)
        started = time.monotonic()
        status, body = await get_json(workers.here, "/status")
        took = time.monotonic() - started
        release.set()
    assert status == 200, body
    a, b, _ = body["data"]["tasks"]
    assert a["status"] == "running" and a["current_offset"] == 120
    unavailable = msgspec.convert(b, TaskUnavailable)
    assert unavailable.status == "unavailable" and "0.5s" in unavailable.error
    assert unavailable.name == f"上海 {HOSTILE}"
    assert took < 5, took  # bounded by the timeout, not by the owner


async def test_status_listing_owner_error_is_that_tasks_entry(workers: Workers) -> None:
    workers.owners[(id(workers.here.app), TASK_B)] = forwarding.unavailable(
        "the task's partition is being assigned; retry shortly"
    )
    status, body = await get_json(workers.here, "/status")
    assert status == 200, body
    entry = body["data"]["tasks"][1]
    assert entry == {
        "task_id": TASK_B,
        "name": f"上海 {HOSTILE}",
        "enabled": True,
        "status": "unavailable",
        "error": "the task's partition is being assigned; retry shortly",
    }
    # The owner moved on while the request was on its way: no second hop, its 503 is the entry.
    workers.own(TASK_B, workers.there)
    workers.owners[(id(workers.there.app), TASK_B)] = URL("http://127.0.0.1:9/")
    status, body = await get_json(workers.here, "/status")
    assert body["data"]["tasks"][1]["error"] == "the task moved to another worker; retry"
    assert body["data"]["tasks"][0]["status"] == "running"


async def test_control_all_needs_the_token_and_reaches_every_enabled_task(
    workers: Workers,
) -> None:
    response = await workers.there.client.post("/crawl/stop")
    assert_json_error(response.status, await response.json(), 401)
    assert workers.sent == []
    response = await workers.there.client.post("/crawl/stop", headers=bearer())
    body = await response.json()
    assert response.status == 200, body
    listing = msgspec.convert(body["data"], StatusList)
    assert [t["task_id"] for t in listing.tasks] == [TASK_A, TASK_B]  # not the disabled one
    assert {t["status"] for t in listing.tasks} == {"stopped"}
    assert sorted(workers.sent) == sorted([(TASK_A, "stop"), (TASK_B, "stop")])
    _, body = await get_json(workers.here, "/status")
    assert [t["status"] for t in body["data"]["tasks"]] == ["stopped", "stopped", "idle"]

    response = await workers.here.client.post("/crawl/start", headers=bearer())
    body = await response.json()
    assert response.status == 200 and {t["status"] for t in body["data"]["tasks"]} == {"idle"}


async def test_control_all_answers_202_when_a_task_did_not_apply(
    workers: Workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def lost(task_id: str, action: str, **fields: Any) -> None:
        workers.sent.append((task_id, action))

    for served in (workers.here, workers.there):
        monkeypatch.setattr(served.runtime.commands, "send", lost)
    response = await workers.here.client.post("/crawl/stop", headers=bearer())
    body = await response.json()
    assert response.status == 202, body
    assert [t["status"] for t in body["data"]["tasks"]] == ["running", "error"]
    assert sorted(workers.sent) == sorted([(TASK_A, "stop"), (TASK_B, "stop")])


async def test_control_all_lists_a_task_whose_owner_is_gone(workers: Workers) -> None:
    workers.own(TASK_B, URL("http://127.0.0.1:9/"))  # nothing listens on the discard port
    response = await workers.here.client.post("/crawl/stop", headers=bearer())
    body = await response.json()
    assert response.status == 202, body
    a, b = body["data"]["tasks"]
    assert a["status"] == "stopped"
    assert (
        b["status"] == "unavailable"
        and b["error"] == "the worker that owns the task did not answer"
    )


async def test_history_lists_each_tasks_series_from_its_owner(workers: Workers) -> None:
    series = workers.there.client.app[HISTORY].series(TASK_B)
    now = time.monotonic()
    for seconds_ago, rate in ((20, 100.0), (10, 250.5)):
        series.add(rate, at=now - seconds_ago, wall=1_800_000_000.0 - seconds_ago)
    status, body = await get_json(workers.here, "/status/history")
    assert status == 200, body
    tasks = {t["task_id"]: t for t in body["data"]["tasks"]}
    assert list(tasks) == [TASK_A, TASK_B, TASK_OFF]
    assert tasks[TASK_B]["rows_per_minute"] == [[1_799_999_980, 100.0], [1_799_999_990, 250.5]]
    assert tasks[TASK_A]["rows_per_minute"] == [] and tasks[TASK_B]["error"] is None
    assert body["data"]["interval"] == 5.0 and isinstance(body["data"]["kafka_lag"], list)
    status, body = await get_json(workers.here, f"/status/history?task_id={TASK_B}")
    assert status == 200 and [t["task_id"] for t in body["data"]["tasks"]] == [TASK_B]
