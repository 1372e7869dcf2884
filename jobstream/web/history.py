"""The last hour of each task's throughput and of the consumer lag, as this worker sees them
(a service): every second it samples the rows it applied of the tasks it owns; every five
seconds it keeps their speed and the lag of job_data, for an hour. /status reads a task's rows
of the last minute and its speed from it; GET /status/history serves the series the dashboard
draws, each task's from its owner.

Two figures, each named for what it is: `rows_per_minute` on /status counts the rows of the
last 60 seconds (seed §10), so it stays up for a minute after a run ends; the speed
(`rows_per_minute_now`, and the points of the series) is the rate of the last
`RECENT_SECONDS`, in rows per minute, and falls to 0 within that once nothing is applied."""

from __future__ import annotations

import logging
import time
from typing import Annotated

import msgspec
from aiohttp import web
from mode import Service

from jobstream import metrics
from jobstream.config import Config
from jobstream.metrics import Sample, Series, TaskThroughput
from jobstream.runtime import Runtime
from jobstream.web import fanout, forwarding, params
from jobstream.web.endpoint import Doc, JsonView, Ok, Refusal

logger = logging.getLogger(__name__)

TICK_SECONDS = 1.0
# One point of the hour-long series every this many ticks.
SAMPLE_SECONDS = 5.0
KEEP_SECONDS = 3600.0
# The window of the speed: short enough that it ends with the run, long enough to hold several
# pages' worth of samples.
RECENT_SECONDS = 10.0


class RecentThroughput(TaskThroughput):
    """The rows applied in the last RECENT_SECONDS (TaskThroughput's rule on a shorter window)."""

    WINDOW = RECENT_SECONDS


class History(Service):
    def __init__(self, runtime: Runtime, **kwargs: object) -> None:
        self.runtime = runtime
        self.probe = runtime.probe
        self.throughput = TaskThroughput()
        self.recent = RecentThroughput()
        self.lag = Series(keep=KEEP_SECONDS)
        self._rates: dict[str, Series] = {}
        self._last_point = 0.0
        super().__init__(**kwargs)  # type: ignore[arg-type]

    @Service.task
    async def _keep_sampling(self) -> None:
        while not self.should_stop:
            try:
                await self.sample()
            except Exception:  # a sample missed is a point missing from a chart, no more
                logger.exception("throughput and lag not sampled")
            await self.sleep(TICK_SECONDS)

    async def sample(self, at: float | None = None) -> None:
        at = time.monotonic() if at is None else at
        point = at - self._last_point >= SAMPLE_SECONDS - TICK_SECONDS / 2
        if point:
            self._last_point = at
        if self.runtime.app.assignor.assigned_actives():
            applied = metrics.applied_rows()
            for task_id in self.runtime.worker.owned_tasks():
                rows = applied.get(task_id, 0.0)
                self.throughput.record(task_id, rows, at)
                speed = self.recent.record(task_id, rows, at) * 60.0 / RECENT_SECONDS
                if point:
                    self.series(task_id).add(speed, at)
        if point and self.probe.started and not self.probe.should_stop:
            lag = await self.probe.lag()
            if lag.total is not None:
                self.lag.add(lag.total)

    def rows_per_minute(self, task_id: str) -> float:
        """The task's rows applied here in the last minute, as of now."""
        return self.throughput.rows_per_minute(task_id, metrics.applied_rows().get(task_id, 0.0))

    def rows_per_minute_now(self, task_id: str) -> float:
        """The task's speed as of now: rows per minute over the last RECENT_SECONDS."""
        rows = self.recent.rows_per_minute(task_id, metrics.applied_rows().get(task_id, 0.0))
        return rows * 60.0 / RECENT_SECONDS

    def series(self, task_id: str) -> Series:
        """The task's speed over the last hour, a point every SAMPLE_SECONDS."""
        return self._rates.setdefault(task_id, Series(keep=KEEP_SECONDS))


HISTORY = web.AppKey("jobstream.history", History)


Point = tuple[int, float]


class TaskSeries(msgspec.Struct, frozen=True):
    """一个任务近一小时的处理速度"""

    task_id: str
    name: str
    rows_per_minute: Annotated[
        list[Point],
        msgspec.Meta(description="[Unix 时间（秒）, 处理速度：行/分钟，按该时刻之前 10 秒计算]"),
    ]
    error: Annotated[str | None, msgspec.Meta(description="取不到该任务的数据时的原因")] = None


class HistoryBody(msgspec.Struct, frozen=True):
    """近一小时的处理速度与 Kafka 积压，每 interval 秒一个点（仪表盘的折线图）"""

    interval: float
    kafka_lag: Annotated[list[Point], msgspec.Meta(description="[Unix 时间（秒）, 积压条数]")]
    tasks: list[TaskSeries]


def _points(samples: list[Sample]) -> list[Point]:
    return [(int(s.wall), round(s.value, 1)) for s in samples]


def task_series(history: History, task_id: str, config: Config) -> TaskSeries:
    return TaskSeries(
        task_id=task_id,
        name=config.task(task_id).name,
        rows_per_minute=_points(history.series(task_id).samples()),
    )


def series_of(reply: fanout.Reply, config: Config) -> TaskSeries:
    """A task's series as its owner answered (the one task of the owner's body)."""
    if reply.ok:
        if isinstance(reply.data, TaskSeries):
            return reply.data
        try:
            return msgspec.convert(reply.data, HistoryBody).tasks[0]
        except (msgspec.ValidationError, IndexError):
            error = "the owner's answer is not a history"
    else:
        error = reply.error or f"HTTP {reply.status}"
    return TaskSeries(reply.task_id, config.task(reply.task_id).name, [], error)


class HistoryView(JsonView):
    """GET /status/history: every task's series (or `task_id`'s), and this worker's lag."""

    params = frozenset({"task_id"})
    access = "read"
    doc = Doc(
        "近一小时的处理速度与 Kafka 积压",
        "状态",
        {
            200: Ok("采样序列", HistoryBody),
            503: Refusal("worker 正在启动，或任务所属 worker 无应答"),
        },
        "每个任务的处理速度（行/分钟，按之前 10 秒计算，由负责它的 worker 每 5 秒采样）"
        "与默认消费组在 job_data 上的积压，仪表盘的折线图用它。指定 task_id 时只含该任务。",
    )

    async def get(self, request: web.Request) -> web.Response:
        history = request.app[HISTORY]
        if "task_id" in request.query:
            task_id = params.task_id(request, self.config.api.task_ids)
            forwarded = await forwarding.forward(self.app, request, task_id)
            if forwarded is not None:
                return forwarded
            tasks = [task_series(history, task_id, self.config)]
        else:

            async def here(task_id: str) -> tuple[int, TaskSeries]:
                return 200, task_series(history, task_id, self.config)

            replies = await fanout.each_task(
                self.app, request, self.config.api.task_ids, here, within=fanout.LISTING_TIMEOUT
            )
            tasks = [series_of(reply, self.config) for reply in replies]
        return self.ok(HistoryBody(SAMPLE_SECONDS, _points(history.lag.samples()), tasks))
