"""POST /replay and POST /replay/stop: apply the rules again to a task's pages still in job_raw,
without calling the API (`jobstream.pipeline.replay`), and stop it. The task's owner runs it;
any worker forwards. Its progress is the `replay` object of the task's /status."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from jobstream.config import Config
from jobstream.pipeline.replay import ReplayRefused, ReplayStatus
from jobstream.web import forwarding, params
from jobstream.web.endpoint import Doc, JsonView, Ok, Refusal
from jobstream.web.params import Integer
from jobstream.web.responses import HttpError, require_running, unavailable
from jobstream.web.services import RUNTIME

FROM_OFFSET = Integer("from_offset", "从这个源 offset 开始重放（默认 0：全部）", low=0, high=10**12)


@dataclass(frozen=True)
class FilterDays(Integer):
    """The replay's window: the configured one unless given."""

    def read_days(self, request: web.Request, config: Config) -> int:
        if self.name not in request.query:
            return config.crawler.filter_days
        return self.read(request)


FILTER_DAYS = FilterDays(
    "filter_days", "重放使用的过滤天数（默认 crawler.filter_days）", low=1, high=3650, default=7
)


class ReplayControl(JsonView):
    methods_allowed = frozenset({"POST"})
    access = "admin"
    changes_state = True

    async def post(self, request: web.Request) -> web.Response:
        config = self.config
        task_id = params.task_id(request, config.api.task_ids)
        self.read(request)  # refused here, before a forward, when a parameter is wrong
        forwarded = await forwarding.forward(self.app, request, task_id)
        if forwarded is not None:
            return forwarded
        runtime = request.app[RUNTIME]
        require_running(runtime.probe)
        if not config.trace.enabled:
            raise unavailable("a replay needs the trace (trace.enabled: false)")
        try:
            status, code = self.act(request, task_id)
        except ReplayRefused as exc:
            raise HttpError(409, str(exc)) from None
        return self.ok(status, status=code)

    def read(self, request: web.Request) -> None:
        """Check the parameters."""

    def act(self, request: web.Request, task_id: str) -> tuple[ReplayStatus, int]:
        raise NotImplementedError


class ReplayView(ReplayControl):
    params = ("task_id", FROM_OFFSET, FILTER_DAYS)
    doc = Doc(
        "重放：把规则重新应用到 job_raw 中仍保留的页，不调用 API",
        "采集控制",
        {
            202: Ok("重放已开始，返回它的状态（之后见 /status 的 replay）", ReplayStatus),
            409: Refusal("该任务已有重放在进行"),
            503: Refusal("Kafka 不可用，任务分区正在分配，或追溯功能已关闭"),
        },
        "读取该任务在 job_raw 中的页（从 from_offset 到开始时的 current_offset），"
        "用当前规则或给定的 filter_days 重新判断之前被过滤或拒绝的行，"
        "现在符合条件的交给去重环节后发布到 job_data；之前已发布或重复的行不再处理。"
        "计数随之从 filtered/rejected 移到 published/duplicates。采集可以同时进行。",
    )

    def read(self, request: web.Request) -> None:
        FROM_OFFSET.read(request)
        FILTER_DAYS.read_days(request, self.config)

    def act(self, request: web.Request, task_id: str) -> tuple[ReplayStatus, int]:
        replays = request.app[RUNTIME].replays
        days = FILTER_DAYS.read_days(request, self.config)
        return replays.start(task_id, FROM_OFFSET.read(request), days), 202


class ReplayStopView(ReplayControl):
    params = ("task_id",)
    doc = Doc(
        "停止重放",
        "采集控制",
        {
            200: Ok("重放将在当前页之后停止，返回它的状态", ReplayStatus),
            409: Refusal("该任务没有正在进行的重放"),
            503: Refusal("任务分区正在分配"),
        },
        "已经交给去重环节的行照常发布，计数保持准确。",
    )

    def act(self, request: web.Request, task_id: str) -> tuple[ReplayStatus, int]:
        return request.app[RUNTIME].replays.stop(task_id), 200
