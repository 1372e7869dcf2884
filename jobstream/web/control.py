"""POST /crawl/start and /crawl/stop: commands on job_commands, answered with the new status.

The views cannot change the progress table themselves (only an agent may); they send a command
and wait, on the task's owner, until the `apply_commands` agent has applied it. A stop is kept
in the table and its SQLite mirror, so it survives a restart; the crawl loop honours it at the
next page boundary and a start lifts it. Both need the admin token when one is set.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import ClassVar, Literal

from aiohttp import web

from jobstream.config import Config
from jobstream.pipeline.commands import send_command
from jobstream.records import Progress
from jobstream.web import forwarding, params
from jobstream.web.endpoint import JsonView
from jobstream.web.probe import PROBE
from jobstream.web.responses import require_running, unavailable
from jobstream.web.status import task_status

logger = logging.getLogger(__name__)


def warn_if_unprotected(config: Config) -> None:
    if not config.app.admin_token:
        logger.warning(
            "app.admin_token (ADMIN_TOKEN) is not set: anyone who reaches port %d can "
            "POST /crawl/start and /crawl/stop",
            config.app.web_port,
        )


class CrawlControlView(JsonView):
    """Sends `action` for the task and waits until `applied(progress)` holds."""

    methods_allowed = frozenset({"POST"})
    params = frozenset({"task_id"})
    access = "admin"
    changes_state = True
    action: ClassVar[Literal["start", "stop"]]

    def applied(self, progress: Progress) -> bool:
        raise NotImplementedError

    async def post(self, request: web.Request) -> web.Response:
        task_id = params.task_id(request, self.config.api.task_ids)
        forwarded = await forwarding.forward(self.app, request, task_id)
        if forwarded is not None:
            return forwarded
        probe = request.app[PROBE]
        timeout = self.config.kafka.http_timeout
        require_running(probe)
        if not probe.broker_up:
            raise unavailable("Kafka is unreachable; the command cannot be sent")
        try:
            await probe.bounded(send_command(task_id, self.action), timeout)
        except TimeoutError:
            raise unavailable("Kafka did not take the command in time; retry") from None
        deadline = time.monotonic() + timeout
        while not self.applied(self.app.progress_store.current(task_id)):
            if time.monotonic() > deadline or not probe.broker_up:
                # Sent, not yet applied: 202 and the status as it stands.
                return self.ok(await task_status(self.app, probe, task_id), status=202)
            await asyncio.sleep(0.05)
        return self.ok(await task_status(self.app, probe, task_id))


class CrawlStartView(CrawlControlView):
    action = "start"

    def applied(self, progress: Progress) -> bool:
        return progress.status in ("idle", "running")


class CrawlStopView(CrawlControlView):
    action = "stop"

    def applied(self, progress: Progress) -> bool:
        return progress.status == "stopped"
