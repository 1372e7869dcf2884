"""Asking about every task at once: each task's answer comes from the worker that owns it (this
one, or another), all concurrently and bounded in time, so a slow or departed worker costs the
answer for its own tasks and never the whole listing.

Another worker is asked once for all its tasks, not once per task: the same request, marked
`OWNED_HEADER`, which that worker answers with its listing of the tasks it owns (the listing
views call `each_task` there too, which then answers for those alone). With 200 tasks over
three workers a listing is two HTTP calls, not 133. A task the owner no longer owns by the
time it answers (a rebalance) is listed as unavailable, with a retry.

A task without an answer gets a `Reply` that says why; the views decide how to show it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from jobstream.app import JobstreamApp
from jobstream.web.forwarding import ROUTED_HEADER, owner_of, worker_started
from jobstream.web.responses import RETRY_SOON, HttpError, unavailable

logger = logging.getLogger(__name__)

# Longest a listing (/status, /status/history) waits for a task's owner: the dashboard asks
# every two seconds.
LISTING_TIMEOUT = 3.0
# Marks a listing request one worker sends another: answer for the tasks you own, only.
OWNED_HEADER = "X-Jobstream-Owned-Tasks"

# What answers for a task this worker owns: (HTTP status, data).
Here = Callable[[str], Awaitable[tuple[int, Any]]]


@dataclass(frozen=True)
class Reply:
    """One task's answer: its HTTP status and `data`, or the `error` that took its place."""

    task_id: str
    status: int
    data: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status < 300 and self.data is not None


async def each_task(
    app: JobstreamApp,
    request: web.Request,
    task_ids: Sequence[str],
    here: Here,
    *,
    within: float,
) -> list[Reply]:
    """`request` answered for each task, in `task_ids` order: by `here` for the tasks this
    worker owns, by one call of `request` to each other owner for its tasks. 503 while this
    worker cannot yet tell who owns what. Each owner's answer takes at most `within` seconds.

    A request marked `OWNED_HEADER` (from another worker) is answered for the tasks of
    `task_ids` this worker owns, and no others."""
    if not worker_started(app):
        raise unavailable("the worker is starting; retry shortly", RETRY_SOON)
    by_owner: dict[URL | None, list[str]] = {}
    replies: dict[str, Reply] = {}
    for task_id in task_ids:
        try:
            owner = owner_of(app, task_id)
        except HttpError as exc:
            replies[task_id] = Reply(task_id, exc.code, error=exc.detail)
            continue
        by_owner.setdefault(owner, []).append(task_id)
    if OWNED_HEADER in request.headers:
        # Asked by another worker: what this one owns, no second hop.
        return list(await _here(by_owner.get(None, []), here, within))
    asked = [
        _here(tasks, here, within) if owner is None else _ask(app, request, owner, tasks, within)
        for owner, tasks in by_owner.items()
    ]
    for answers in await asyncio.gather(*asked):
        replies.update((reply.task_id, reply) for reply in answers)
    return [replies[task_id] for task_id in task_ids]


async def _here(task_ids: list[str], here: Here, within: float) -> list[Reply]:
    return list(await asyncio.gather(*(_one_here(task_id, here, within) for task_id in task_ids)))


async def _one_here(task_id: str, here: Here, within: float) -> Reply:
    try:
        async with asyncio.timeout(within):
            status, data = await here(task_id)
            return Reply(task_id, status, data)
    except HttpError as exc:
        return Reply(task_id, exc.code, error=exc.detail)
    except TimeoutError:
        return Reply(task_id, 504, error=f"no answer for the task within {within:g}s")


async def _ask(
    app: JobstreamApp, request: web.Request, owner: URL, task_ids: list[str], within: float
) -> list[Reply]:
    """The owner's answers for its tasks: one call, with the caller's Authorization header."""
    try:
        async with asyncio.timeout(within):
            status, data = await _call(app, request, owner)
    except TimeoutError:
        return _all(
            task_ids, 504, f"no answer from the worker that owns the task within {within:g}s"
        )
    except (aiohttp.ClientError, ValueError) as exc:
        logger.warning("worker=%s did not answer for its %d tasks: %r", owner, len(task_ids), exc)
        return _all(task_ids, 502, "the worker that owns the task did not answer")
    if status >= 400:
        message = data.get("message") if isinstance(data, dict) else None
        return _all(task_ids, status, str(message or f"HTTP {status}"))
    entries = _entries(data)
    replies = []
    for task_id in task_ids:
        entry = entries.get(task_id)
        if entry is None:
            replies.append(Reply(task_id, 503, error="the task moved to another worker; retry"))
        elif entry.get("status") == "unavailable" or entry.get("error"):
            replies.append(Reply(task_id, 503, error=str(entry.get("error") or "unavailable")))
        else:
            replies.append(Reply(task_id, status, entry))
    return replies


async def _call(app: JobstreamApp, request: web.Request, owner: URL) -> tuple[int, Any]:
    url = owner.with_path(request.path).with_query(request.query)
    headers = {ROUTED_HEADER: "1", OWNED_HEADER: "1"}
    if "Authorization" in request.headers:
        headers["Authorization"] = request.headers["Authorization"]
    async with app.http_client.request(request.method, url, headers=headers) as answer:
        body = await answer.json(content_type=None)
    if not isinstance(body, dict):
        raise ValueError(f"not the JSON envelope: {str(body)[:80]!r}")
    if answer.status >= 400:
        return answer.status, body
    return answer.status, body.get("data")


def _entries(data: Any) -> dict[str, dict[str, Any]]:
    """A listing's entries by task: `data.tasks`, each naming its `task_id`."""
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(tasks, list):
        logger.warning("a worker answered a listing with something else: %.80r", data)
        return {}
    return {
        entry["task_id"]: entry
        for entry in tasks
        if isinstance(entry, dict) and isinstance(entry.get("task_id"), str)
    }


def _all(task_ids: list[str], status: int, error: str) -> list[Reply]:
    return [Reply(task_id, status, error=error) for task_id in task_ids]
