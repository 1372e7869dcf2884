"""POST /crawl/start and /crawl/stop: commands on job_commands, answered with the new status.

The views cannot change the progress table themselves (only an agent may); they send a command
and wait, on the task's owner, until the `apply_commands` agent has applied it. A stop is kept
in the table and its SQLite mirror, so it survives a restart; the crawl loop honours it at the
next page boundary and a start lifts it.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Any, ClassVar, Literal

from aiohttp import web

from jobstream.app import app
from jobstream.pipeline.commands import send_command
from jobstream.records import Progress
from jobstream.web import gateway, owner, params
from jobstream.web.base import ApiError, JsonView
from jobstream.web.status import task_status


def check_bearer(request: web.Request, token: str) -> None:
    """Refuse the request unless it carries `Authorization: Bearer <token>` (when one is set)."""
    if not token:
        return
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise ApiError(
            401,
            "missing bearer token (Authorization: Bearer <app.admin_token>)",
            {"WWW-Authenticate": 'Bearer realm="jobstream"'},
        )
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ApiError(
            401,
            "invalid bearer token",
            {"WWW-Authenticate": 'Bearer realm="jobstream", error="invalid_token"'},
        )


class CrawlCommandView(JsonView):
    """Sends `action` for the task and waits until `applied(progress)` holds."""

    methods_allowed = frozenset({"POST"})
    params = frozenset({"task_id"})
    action: ClassVar[Literal["start", "stop"]]

    def applied(self, progress: Progress) -> bool:
        raise NotImplementedError

    async def dispatch(self, request: Any) -> Any:
        # Authentication comes before any look at the parameters.
        if request.method in self.methods_allowed:
            try:
                check_bearer(request, app.settings.app.admin_token)
            except ApiError as exc:
                return self.error(exc.code, exc.detail, **exc.extra_context)
        return await super().dispatch(request)

    async def post(self, request: web.Request) -> web.Response:
        task_id = params.task_id(request, app.settings.api.task_ids)
        forwarded = await owner.forward(request, task_id)
        if forwarded is not None:
            return forwarded
        timeout = app.settings.kafka.http_timeout
        if not gateway.current().broker_up:
            raise ApiError(
                503, "Kafka is unreachable; the command cannot be sent", gateway.RETRY_AFTER
            )
        try:
            async with asyncio.timeout(timeout):
                await send_command(task_id, self.action)
        except TimeoutError:
            raise ApiError(503, "Kafka did not take the command in time; retry") from None
        deadline = time.monotonic() + timeout
        while not self.applied(app.progress_store.current(task_id)):
            if time.monotonic() > deadline:
                # Sent, not yet applied: 202 and the status as it stands.
                return self.ok(await task_status(task_id), status=202)
            await asyncio.sleep(0.05)
        return self.ok(await task_status(task_id))


class CrawlStartView(CrawlCommandView):
    action = "start"

    def applied(self, progress: Progress) -> bool:
        return progress.status in ("idle", "running")


class CrawlStopView(CrawlCommandView):
    action = "stop"

    def applied(self, progress: Progress) -> bool:
        return progress.status == "stopped"
