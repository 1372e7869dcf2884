"""Answering for a task, or a /consume group, on any worker: the worker that owns the task's
partition holds its progress and applies its commands, so a request for a task another worker
owns is forwarded there (one hop, with the caller's Authorization header, bounded in time).

A /consume group is served by one worker too, its gateway: the owner of the partition the
group's name falls in, as a task id would. Only the gateway's consumer joins the group, so it
holds all of job_data's partitions, and any worker called forwards to it: a call returns what
the group has not read yet from every partition, whichever worker a client reaches.

Until the worker has been assigned its partitions and has recovered its table, no worker is
known to own the task: such a request gets a 503 with `Retry-After`.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from aiohttp import web
from yarl import URL

from jobstream.app import JobstreamApp
from jobstream.topics import crawl_progress, partition_for
from jobstream.web.endpoint import ROUTED_HEADER
from jobstream.web.responses import RETRY_SOON, HttpError, unavailable

# How often a forwarded request looks whether its caller is still there.
CALLER_CHECK = 0.1
# Headers of the owner's answer that mean something to the caller.
PASSED_BACK = frozenset({"retry-after", "www-authenticate", "allow"})


def worker_started(app: JobstreamApp) -> bool:
    """The worker has had its first partition assignment and recovered its tables."""
    return app.tables_recovered()


def _ident(url: URL) -> tuple[str, int]:
    return (url.host or "", url.port or 80)


def owner_of(app: JobstreamApp, task_id: str) -> URL | None:
    """The owner's base URL, or None when it is this worker."""
    return _owner_of_partition(app, partition_for(task_id, app.settings.kafka.partitions))


def gateway_of(app: JobstreamApp, group: str) -> URL | None:
    """The base URL of the worker that serves /consume for `group`, or None when it is this
    one (always, in a process that only serves the views: the in-process tests)."""
    if not app.runs_worker:
        return None
    return _owner_of_partition(app, partition_for(group, app.settings.kafka.partitions))


def is_gateway(app: JobstreamApp, group: str) -> bool:
    """This worker serves /consume for `group` (False while that is not known yet)."""
    try:
        return gateway_of(app, group) is None
    except HttpError:
        return False


def _owner_of_partition(app: JobstreamApp, partition: int) -> URL | None:
    """Read from the assignment (which worker holds which partition of the progress table's
    changelog), not from the producer's metadata, which may not know that topic yet."""
    if not worker_started(app):
        raise unavailable("the worker is starting; retry shortly", RETRY_SOON)
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
    return await forward_to(app, request, owner, "the task", f"task {task_id}")


async def forward_to(
    app: JobstreamApp,
    request: web.Request,
    owner: URL,
    what: str,
    whose: str,
    wait: float = 0.0,
) -> web.Response:
    """`owner`'s answer to this request about `what` (the owner of `whose`), which may take
    `wait` seconds more than a Kafka call. If the caller leaves meanwhile, the request to the
    owner is dropped too, so that the owner sees its answer undelivered (a /consume then
    commits nothing)."""
    if request.headers.get(ROUTED_HEADER):
        # The owner moved while the request was on its way: no second hop.
        raise unavailable(f"{what} moved to another worker; retry", 1)
    url = owner.with_path(request.path).with_query(request.query)
    headers = {ROUTED_HEADER: "1"}
    if "Authorization" in request.headers:
        headers["Authorization"] = request.headers["Authorization"]
    timeout = aiohttp.ClientTimeout(total=app.settings.kafka.http_timeout + wait + 5)

    async def ask() -> web.Response:
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

    asking = asyncio.ensure_future(ask())
    try:
        while not asking.done():
            await asyncio.wait({asking}, timeout=CALLER_CHECK)
            if not asking.done() and _caller_gone(request):
                asking.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await asking
                raise unavailable("the caller left", RETRY_SOON)
        return asking.result()
    except (TimeoutError, aiohttp.ClientError):
        raise unavailable(
            f"the worker that owns {whose} did not answer; retry", RETRY_SOON
        ) from None
    finally:
        if not asking.done():
            asking.cancel()


def _caller_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()
