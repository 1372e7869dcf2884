"""A listing asks each other worker once for all the tasks it owns, not once per task: 40 tasks,
one here and the rest on a stand-in owner, cost the listing one call to it; what the owner
answers is each task's entry, and a task it no longer owns is listed as moved."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from jobstream.app import JobstreamApp
from jobstream.web import fanout
from tests.harness import Broker
from tests.web.conftest import Served, config_for, serve

TASKS = [f"0a5e0000-0000-4000-8000-{n:012d}" for n in range(40)]
HERE = TASKS[0]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def _served(session_broker: Broker) -> AsyncIterator[Served]:
    served = await serve(
        config_for(session_broker.bootstrap, "job_data_owners", api={"task_id": TASKS})
    )
    yield served
    await served.app.http_client.close()
    await served.close()


class StandIn:
    """Another worker: answers a listing marked as asked by a worker with the entries of the
    tasks it owns (all but HERE and the last one, which moved on), and counts the calls."""

    def __init__(self) -> None:
        self.calls: list[dict[str, str]] = []

    async def status(self, request: web.Request) -> web.Response:
        self.calls.append(dict(request.headers))
        owned = TASKS[1:-1]
        entries: list[dict[str, Any]] = [
            {"task_id": t, "name": t, "enabled": True, "status": "idle", "current_offset": 7}
            for t in owned
        ]
        entries[0] = {
            "task_id": owned[0], "name": owned[0], "enabled": True, "status": "unavailable",
            "error": "its partition is being assigned",
        }  # fmt: skip
        return web.json_response({"code": 0, "data": {"tasks": entries}})


async def test_status_owners_each_other_worker_is_asked_once(
    _served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in = StandIn()
    app = web.Application()
    app.router.add_get("/status", stand_in.status)
    async with TestServer(app) as other:
        there = URL(str(other.make_url("/")))

        def owner_of(app: JobstreamApp, task_id: str) -> URL | None:
            return None if task_id == HERE else there

        monkeypatch.setattr(fanout, "worker_started", lambda app: True)
        monkeypatch.setattr(fanout, "owner_of", owner_of)

        async def here(task_id: str) -> tuple[int, dict[str, Any]]:
            return 200, {"task_id": task_id, "mine": True}

        request: Any = type("Request", (), {"path": "/status", "query": {}, "method": "GET"})()
        request.headers = {"Authorization": "Bearer t"}
        replies = await fanout.each_task(_served.app, request, TASKS, here, within=5)

    assert len(stand_in.calls) == 1
    assert stand_in.calls[0][fanout.OWNED_HEADER] == "1"
    assert stand_in.calls[0]["Authorization"] == "Bearer t"
    assert [r.task_id for r in replies] == TASKS
    assert replies[0].data == {"task_id": HERE, "mine": True}
    assert replies[1].status == 503 and replies[1].error == "its partition is being assigned"
    assert all(r.ok and r.data["current_offset"] == 7 for r in replies[2:-1])
    assert replies[-1].status == 503 and "moved" in str(replies[-1].error)


async def test_status_owners_asked_by_a_worker_answers_for_its_own_tasks_only(
    _served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fanout, "worker_started", lambda app: True)
    monkeypatch.setattr(
        fanout, "owner_of", lambda app, t: None if t in TASKS[:3] else URL("http://127.0.0.1:9/")
    )
    asked: list[str] = []

    async def here(task_id: str) -> tuple[int, str]:
        asked.append(task_id)
        await asyncio.sleep(0)
        return 200, task_id

    request: Any = type("Request", (), {"path": "/status", "query": {}, "method": "GET"})()
    request.headers = {fanout.OWNED_HEADER: "1", "X-Jobstream-Routed": "1"}
    replies = await fanout.each_task(_served.app, request, TASKS, here, within=5)
    assert [r.data for r in replies] == TASKS[:3] == asked
