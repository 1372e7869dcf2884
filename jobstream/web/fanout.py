"""Asking about every task at once: each task's answer comes from the worker that owns it (this
one, or another asked over HTTP), all concurrently and each bounded in time, so a slow or
departed worker costs the answer for its own tasks and never the whole listing.

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
    worker owns, by the owner's `request.path?task_id=...` for the others. 503 while this
    worker cannot yet tell who owns what. Each task's answer takes at most `within` seconds."""
    if not worker_started(app):
        raise unavailable("the worker is starting; retry shortly", RETRY_SOON)
    replies = await asyncio.gather(
        *(_one(app, request, task_id, here, within) for task_id in task_ids)
    )
    return list(replies)


async def _one(
    app: JobstreamApp, request: web.Request, task_id: str, here: Here, within: float
) -> Reply:
    try:
        async with asyncio.timeout(within):
            owner = owner_of(app, task_id)
            if owner is None:
                status, data = await here(task_id)
                return Reply(task_id, status, data)
            return await _ask(app, request, owner, task_id)
    except HttpError as exc:
        return Reply(task_id, exc.code, error=exc.detail)
    except TimeoutError:
        return Reply(task_id, 504, error=f"no answer for the task within {within:g}s")
    except (aiohttp.ClientError, ValueError) as exc:
        logger.warning("task_id=%s the worker that owns it did not answer: %r", task_id, exc)
        return Reply(task_id, 502, error="the worker that owns the task did not answer")


async def _ask(app: JobstreamApp, request: web.Request, owner: URL, task_id: str) -> Reply:
    """The owner's answer for the task: one hop, with the caller's Authorization header."""
    url = owner.with_path(request.path).with_query({"task_id": task_id})
    headers = {ROUTED_HEADER: "1"}
    if "Authorization" in request.headers:
        headers["Authorization"] = request.headers["Authorization"]
    async with app.http_client.request(request.method, url, headers=headers) as answer:
        body = await answer.json(content_type=None)
    if not isinstance(body, dict):
        raise ValueError(f"not the JSON envelope: {str(body)[:80]!r}")
    if answer.status >= 400:
        return Reply(task_id, answer.status, error=str(body.get("message", answer.reason)))
    return Reply(task_id, answer.status, body.get("data"))
