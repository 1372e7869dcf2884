"""POST /crawl/start and /crawl/stop: commands on job_commands, answered with the new status.

The views cannot change the progress table themselves (only an agent may); they send a command
and wait, on the task's owner, until the `apply_commands` agent has applied it. A stop is kept
in the table and its SQLite mirror, so it survives a restart; the crawl loop honours it at the
next page boundary and a start lifts it. Both need the admin token when one is set.

Without `task_id` and with several tasks configured, the command goes to every enabled task,
each through its owner and all at once, and the answer lists every task's new status (200
when the command took effect on all of them, 202 otherwise: the entries say where it did not).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import ClassVar, Literal

from aiohttp import web

from jobstream.config import Config
from jobstream.records import Progress
from jobstream.web import fanout, forwarding, params
from jobstream.web.endpoint import Doc, JsonView, Ok, Refusal
from jobstream.web.history import HISTORY
from jobstream.web.responses import require_running, unavailable
from jobstream.web.services import RUNTIME
from jobstream.web.status import (
    Status,
    StatusList,
    current_lag,
    entry_of,
    lists_all,
    status_list,
    task_status,
)

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
        if lists_all(request, self.config):
            return await self.post_all(request)
        task_id = params.task_id(request, self.config.api.task_ids)
        forwarded = await forwarding.forward(self.app, request, task_id)
        if forwarded is not None:
            return forwarded
        status, body = await self.command(request, task_id)
        return self.ok(body, status=status)

    async def post_all(self, request: web.Request) -> web.Response:
        """The command for every enabled task, each on its owner."""

        async def here(task_id: str) -> tuple[int, Status]:
            return await self.command(request, task_id)

        # An owner waits up to http_timeout for the broker to take the command, as long again
        # for the command to apply.
        timeout = 2 * self.config.kafka.http_timeout + 5
        replies = await fanout.each_task(
            self.app, request, self.config.api.enabled_task_ids, here, within=timeout
        )
        entries = [entry_of(reply, self.config) for reply in replies]
        applied = all(reply.status == 200 for reply in replies)
        body = status_list(entries, await current_lag(request.app[RUNTIME].probe), self.config)
        return self.ok(body, status=200 if applied else 202)

    async def command(self, request: web.Request, task_id: str) -> tuple[int, Status]:
        """Send the command for a task this worker owns; 200 and the status once applied, 202
        and the status as it stands when it is not applied within `kafka.http_timeout`."""
        runtime, history = request.app[RUNTIME], request.app[HISTORY]
        probe, store = runtime.probe, runtime.store
        timeout = self.config.kafka.http_timeout
        require_running(probe)
        if not probe.broker_up:
            raise unavailable("Kafka is unreachable; the command cannot be sent")
        try:
            await probe.bounded(runtime.commands.send(task_id, self.action), timeout)
        except TimeoutError:
            raise unavailable("Kafka did not take the command in time; retry") from None
        deadline = time.monotonic() + timeout
        while not self.applied(store.current(task_id)):
            left = deadline - time.monotonic()
            if left <= 0 or not probe.broker_up:
                # Sent, not yet applied: 202 and the status as it stands.
                return 202, await task_status(runtime, task_id, history)
            # Woken by the store's next save of the task (or once a second, to see the probe).
            changed = store.changed(task_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(left, 1.0))
        return 200, await task_status(runtime, task_id, history)


def _doc(summary: str, description: str) -> Doc:
    status = (Status, StatusList)
    return Doc(
        summary,
        "采集控制",
        {
            200: Ok("命令已生效，返回新的状态", status),
            202: Ok("命令已发送、尚未（全部）生效，返回当前状态", status),
            503: Refusal("Kafka 不可用，或任务分区正在分配"),
        },
        description + "配置了多个任务且未指定 task_id 时发给所有启用的任务（各自由负责的 worker "
        "执行），应答为这些任务的新状态列表：全部生效时 200，否则 202，未生效的任务在列表中标明。",
    )


class CrawlStartView(CrawlControlView):
    action = "start"
    doc = _doc("立即开始采集", "解除停止状态并立即开始一轮采集（此后按周期继续）。")

    def applied(self, progress: Progress) -> bool:
        return progress.status in ("idle", "running")


class CrawlStopView(CrawlControlView):
    action = "stop"
    doc = _doc(
        "停止采集",
        "在下一个分页边界停止采集并暂停周期调度；停止状态在重启后保持，直到 /crawl/start。",
    )

    def applied(self, progress: Progress) -> bool:
        return progress.status == "stopped"
