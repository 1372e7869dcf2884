"""Answering for a task on any worker: the worker that owns the task's partition holds its
progress and applies its commands, so a request for a task another worker owns is forwarded
there (one hop, with the caller's Authorization header, bounded in time).

Until the worker has been assigned its partitions and has recovered its table, no worker is
known to own the task: such a request gets a 503 with `Retry-After`.
"""

from __future__ import annotations

from typing import cast

import aiohttp
from aiohttp import web
from faust.tables.manager import TableManager
from faust.types import AppT
from yarl import URL

from jobstream.app import JobstreamApp
from jobstream.topics import crawl_progress, partition_for
from jobstream.web.responses import RETRY_SOON, unavailable

ROUTED_HEADER = "X-Jobstream-Routed"
# Headers of the owner's answer that mean something to the caller.
PASSED_BACK = frozenset({"retry-after", "www-authenticate", "allow"})


def worker_started(app: AppT) -> bool:
    """The worker has had its first partition assignment and recovered its tables."""
    return cast(TableManager, app.tables).recovery.completed.is_set()


def _ident(url: URL) -> tuple[str, int]:
    return (url.host or "", url.port or 80)


def owner_of(app: JobstreamApp, task_id: str) -> URL | None:
    """The owner's base URL, or None when it is this worker.

    Read from the assignment (which worker holds which partition of the progress table's
    changelog), not from the producer's metadata, which may not know that topic yet."""
    if not worker_started(app):
        raise unavailable("the worker is starting; retry shortly", RETRY_SOON)
    partition = partition_for(task_id, app.settings.kafka.partitions)
    for url, topics in app.router.table_metadata(crawl_progress.name).items():
        if any(partition in partitions for partitions in topics.values()):
            owner = URL(url)
            return None if _ident(owner) == _ident(app.conf.canonical_url) else owner
    raise unavailable("the task's partition is being assigned; retry shortly", RETRY_SOON)


async def forward(app: JobstreamApp, request: web.Request, task_id: str) -> web.Response | None:
    """The owner's answer to this request, or None when this worker owns the task."""
    owner = owner_of(app, task_id)
    if owner is None:
        return None
    if request.headers.get(ROUTED_HEADER):
        # The owner moved while the request was on its way: no second hop.
        raise unavailable("the task moved to another worker; retry", 1)
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
        raise unavailable(
            f"the worker that owns task {task_id} did not answer; retry", RETRY_SOON
        ) from None
