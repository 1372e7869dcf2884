"""Answering for a task on any worker: the worker that owns the task's partition holds its
progress and applies its commands, so a request for a task another worker owns is forwarded
there (one hop, with the caller's Authorization header, bounded in time)."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from yarl import URL

from jobstream.app import app
from jobstream.topics import crawl_progress
from jobstream.web.base import ApiError

ROUTED_HEADER = "X-Jobstream-Routed"
# Headers of the owner's answer that mean something to the caller.
PASSED_BACK = frozenset({"retry-after", "www-authenticate", "allow"})


def _ident(url: URL) -> tuple[str, int]:
    return (url.host or "", url.port or 80)


def owner_of(task_id: str) -> URL | None:
    """The owner's base URL, or None when it is this worker."""
    try:
        owner = app.router.key_store(crawl_progress.name, task_id)
    except KeyError:
        raise ApiError(
            503, "the task's partition is being assigned; retry shortly", {"Retry-After": "2"}
        ) from None
    return None if _ident(owner) == _ident(app.conf.canonical_url) else owner


async def forward(request: web.Request, task_id: str) -> web.Response | None:
    """The owner's answer to this request, or None when this worker owns the task."""
    owner = owner_of(task_id)
    if owner is None:
        return None
    if request.headers.get(ROUTED_HEADER):
        # The owner moved while the request was on its way: no second hop.
        raise ApiError(503, "the task moved to another worker; retry", {"Retry-After": "1"})
    url = owner.with_path(request.path).with_query(request.query)
    headers = {ROUTED_HEADER: "1"}
    if "Authorization" in request.headers:
        headers["Authorization"] = request.headers["Authorization"]
    timeout = aiohttp.ClientTimeout(total=app.settings.kafka.http_timeout + 5)
    try:
        async with app.http_client.request(
            request.method, url, headers=headers, timeout=timeout
        ) as answer:
            body = await answer.read()
            return web.Response(
                body=body,
                status=answer.status,
                content_type=answer.content_type,
                charset=answer.charset,
                headers={k: v for k, v in answer.headers.items() if k.lower() in PASSED_BACK},
            )
    except (TimeoutError, aiohttp.ClientError):
        raise ApiError(
            503, f"the worker that owns task {task_id} did not answer; retry", {"Retry-After": "2"}
        ) from None
