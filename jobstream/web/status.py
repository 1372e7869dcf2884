"""GET /status: each task's crawl progress, the consumer lag and the monitoring figures (seed
§5.4, §10). The worker that owns a task answers for it; any other forwards the request to it.

With `task_id`, or when one task is configured, the body is that task's `Status`. Otherwise it
is a `StatusList`: every configured task, each answered by its owner concurrently and within
`LISTING_TIMEOUT`; a task whose owner does not answer in time is listed as unavailable, the
others as usual.

`Status` is the body's one declaration: the view encodes it and the OpenAPI document shows its
JSON Schema. Seed §5.4's keys come first, in the seed's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from jobstream import metrics
from jobstream.broker.lag import Lag
from jobstream.broker.probe import BrokerProbe
from jobstream.config import Config
from jobstream.progress import rules
from jobstream.progress.fields import after, showing, shown
from jobstream.records import Progress
from jobstream.runtime import Runtime
from jobstream.web import fanout, forwarding, params
from jobstream.web.endpoint import Doc, JsonView, Ok, Refusal
from jobstream.web.error_kinds import ErrorKind, error_kind
from jobstream.web.history import HISTORY, History
from jobstream.web.services import RUNTIME


def _about(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class KafkaLag(msgspec.Struct, frozen=True):
    consumer_group: str
    lag_by_partition: Annotated[dict[str, int], _about("各分区的积压条数")]
    error: Annotated[str | None, _about("无法测量积压时的原因")]


class ApiLatency(msgspec.Struct, frozen=True):
    """近期八爪鱼 API 数据请求的响应时间（毫秒）"""

    p50: float | None
    p95: float | None


# Every row counter of Progress comes in after these two, with its description. `duplicates`
# came after /status was published: a body without it (an owner on an earlier version, in a
# listing) still reads as a Status.
@showing(row_counts=True, defaults={"duplicates"})
class RowCounts(msgspec.Struct, frozen=True):
    """源行计数：published + duplicates + filtered + rejected + skipped = applied =
    current_offset（开启去重时，去重环节追上之后）"""

    fetched: Annotated[int, _about("本 worker 启动以来从 API 取到的行数")]
    applied: int


class SpoolStatus(msgspec.Struct, frozen=True):
    """本地暂存：Kafka 不可达时采集到、尚未发送到 job_raw 的页（不计入进度）"""

    pages: Annotated[int, _about("暂存的事件数（job_raw 上的一条消息，一页或几页）")]
    rows: Annotated[int, _about("暂存的源行数")]
    bytes: Annotated[int, _about("暂存占用的字节数")]
    max_bytes: Annotated[int, _about("上限（spool.max_bytes），满了之后暂停采集")]
    enabled: Annotated[bool, _about("spool.enabled")]


def spool_status(runtime: Runtime, task_id: str | None = None) -> SpoolStatus:
    """What the spool holds for `task_id` (every task when None) on this worker."""
    config = runtime.config
    spool = runtime.sender.spool
    size = spool.size(task_id) if spool is not None else None
    return SpoolStatus(
        pages=size.pages if size else 0,
        rows=size.rows if size else 0,
        bytes=size.bytes if size else 0,
        max_bytes=config.spool.max_bytes,
        enabled=config.spool.enabled,
    )


# Progress's fields added after /status was published: an owner on an earlier version leaves
# them out of its answer, which still reads as a Status (in a listing).
_ADDED_LATER = (
    "last_error_at",
    "last_success_at",
    "resolved_error",
    "resolved_error_at",
    "resolved_at",
    "last_reset_at",
)
_KIND_TEXT = (
    "credentials（账号或密码）、task_not_found（任务 ID 不存在）、network（网络）、"
    "timeout（超时）、rate_limit（限流）、api_server（API 服务端错误）、"
    "api_request（请求被 API 拒绝）、kafka（写入 Kafka）、internal（程序内部错误）"
)


# Every field of Progress but its row counters comes in, with its type and description (null
# for a text that is empty for none); these figures go among them. Seed §5.4's keys come first:
# task_id, total, current_offset, progress, kafka_lag, status, last_update. What was added
# later comes last, after `spool`, so that the published keys keep their order.
@showing(row_counts=False, defaults=_ADDED_LATER)
class Status(msgspec.Struct, frozen=True):
    """一个采集任务的进度、Kafka 积压与监控指标"""

    progress: Annotated[str, msgspec.Meta(examples=["60.87%"]), after("current_offset")]
    kafka_lag: Annotated[int | None, _about("消费组在 job_data 上的积压条数；无法测量时为 null")]
    name: Annotated[
        str, _about("任务名称（api.tasks[].name），未配置时为任务 ID"), after("last_update")
    ]
    enabled: Annotated[bool, _about("false：配置为不采集（api.tasks[].enabled）")]
    kafka: Annotated[KafkaLag, after("source")]
    rows_per_minute: Annotated[float, _about("该任务近 60 秒处理的源行数")]
    kept_ratio: Annotated[float | None, _about("通过 7 天过滤的行占比")]
    api_latency_ms: ApiLatency
    rows: RowCounts
    demo: Annotated[bool, _about("true 表示数据源是内置模拟器")]
    kafka_reachable: Annotated[
        bool | None, _about("探针最近一次能否连上 Kafka；false 时采集到的页进入本地暂存")
    ] = None
    spool: Annotated[SpoolStatus | None, _about("该任务在本地暂存中的页")] = None
    error_kind: Annotated[
        ErrorKind | None, _about(f"last_error 的类别：{_KIND_TEXT}"), after("last_reset_at")
    ] = None
    resolved_error_kind: Annotated[ErrorKind | None, _about("resolved_error 的类别")] = None
    next_run_at: Annotated[
        str | None,
        _about(
            "下一轮采集预计开始的时间（上一轮结束时间 + 采集间隔）；运行中、已停止或未启用时为 null"
        ),
    ] = None
    rows_per_minute_now: Annotated[
        int, _about("该任务当前的处理速度：近 10 秒处理的源行数，折算为每分钟")
    ] = 0
    kafka_unreachable_since: Annotated[
        str | None, _about("Kafka 从何时起不可达（kafka_reachable 为 false 时）")
    ] = None


class TaskUnavailable(msgspec.Struct, frozen=True):
    """列表中无法取得状态的任务：负责它的 worker 没有及时应答，或其分区正在分配"""

    task_id: str
    name: str
    enabled: bool
    status: Literal["unavailable"]
    error: Annotated[str, _about("原因")]


class StatusList(msgspec.Struct, frozen=True):
    """所有采集任务的状态（配置了多个任务且未指定 task_id 时）"""

    tasks: Annotated[
        list[Any],
        msgspec.Meta(
            description="按配置顺序的每个任务：Status，或 status 为 unavailable 的 TaskUnavailable",
            extra_json_schema={
                "items": {
                    "anyOf": [
                        {"$ref": "#/components/schemas/Status"},
                        {"$ref": "#/components/schemas/TaskUnavailable"},
                    ]
                }
            },
        ),
    ]
    kafka_lag: Annotated[int | None, _about("消费组在 job_data 上的积压条数；无法测量时为 null")]
    kafka: KafkaLag
    rows_per_minute: Annotated[float, _about("各任务近 60 秒处理的源行数之和（不含不可用的任务）")]
    demo: Annotated[bool, _about("true 表示数据源是内置模拟器")]
    kafka_reachable: Annotated[bool | None, _about("探针最近一次能否连上 Kafka")] = None
    spool: Annotated[SpoolStatus | None, _about("本 worker 的本地暂存（所有任务）")] = None
    rows_per_minute_now: Annotated[
        int, _about("各任务当前处理速度之和（行/分钟，近 10 秒；不含不可用的任务）")
    ] = 0
    kafka_unreachable_since: Annotated[
        str | None, _about("Kafka 从何时起不可达（kafka_reachable 为 false 时）")
    ] = None


def kafka_lag(lag: Lag, config: Config) -> KafkaLag:
    return KafkaLag(
        consumer_group=config.kafka.consumer_group,
        lag_by_partition={str(p): n for p, n in sorted(lag.by_partition.items())},
        error=lag.error,
    )


def next_run_at(progress: Progress, interval: float, enabled: bool) -> str | None:
    """When the crawl loop starts the task's next run: `interval` after the last run ended
    (its success or its failure), unless a run is going on, the task is stopped or disabled,
    or no run has ended yet (the first run starts with the worker)."""
    if not enabled or progress.status not in ("idle", "error"):
        return None
    ended = [t for t in (progress.last_success_at, progress.last_error_at) if t]
    try:
        last = max(datetime.fromisoformat(t) for t in ended) if ended else None
    except ValueError:
        return None
    if last is None:
        return None
    return (last + timedelta(seconds=interval)).isoformat(timespec="seconds")


def since_text(wall: float | None, config: Config) -> str | None:
    """A wall-clock time as /status writes times (ISO 8601 in crawler.timezone)."""
    if wall is None:
        return None
    return datetime.fromtimestamp(wall, config.tz).isoformat(timespec="seconds")


def status_of(
    progress: Progress,
    lag: Lag,
    rows_fetched: int,
    config: Config,
    rows_per_minute: float = 0.0,
    kafka_reachable: bool | None = None,
    spool: SpoolStatus | None = None,
    *,
    rows_per_minute_now: float = 0.0,
    kafka_unreachable_since: str | None = None,
) -> Status:
    """The body of /status for `progress`, as this worker sees it."""
    kept = progress.published + progress.duplicates
    judged = kept + progress.filtered + progress.rejected
    task = config.task(progress.task_id)
    return Status(
        **shown(progress, row_counts=False),
        progress=rules.percent(progress),
        kafka_lag=lag.total,
        name=task.name,
        enabled=task.enabled,
        kafka=kafka_lag(lag, config),
        rows_per_minute=round(rows_per_minute, 1),
        kept_ratio=round(kept / judged, 4) if judged else None,
        api_latency_ms=ApiLatency(**metrics.api_latency_ms()),
        rows=RowCounts(
            fetched=rows_fetched,
            applied=judged + progress.skipped,
            **shown(progress, row_counts=True),
        ),
        demo=config.api.is_demo,
        kafka_reachable=kafka_reachable,
        spool=spool,
        error_kind=error_kind(progress.last_error),
        resolved_error_kind=error_kind(progress.resolved_error),
        next_run_at=next_run_at(progress, task.interval, task.enabled),
        rows_per_minute_now=round(rows_per_minute_now),
        kafka_unreachable_since=kafka_unreachable_since,
    )


async def current_lag(probe: BrokerProbe) -> Lag:
    return await probe.lag() if probe.started else Lag(None, error="the worker is starting")


async def task_status(runtime: Runtime, task_id: str, history: History | None = None) -> Status:
    """The status as this worker, the task's owner, sees it."""
    probe = runtime.probe
    lag = await current_lag(probe)
    progress = runtime.store.current(task_id)
    return status_of(
        progress,
        lag,
        runtime.crawler.fetched.get(task_id, 0),
        runtime.config,
        rows_per_minute=history.rows_per_minute(task_id) if history is not None else 0.0,
        kafka_reachable=probe.broker_up,
        spool=spool_status(runtime, task_id),
        rows_per_minute_now=history.rows_per_minute_now(task_id) if history is not None else 0.0,
        kafka_unreachable_since=since_text(probe.unreachable_since, runtime.config),
    )


def entry_of(reply: fanout.Reply, config: Config) -> Status | TaskUnavailable:
    """A task's entry in a listing: its status as its owner answered, or why there is none."""
    if reply.ok:
        if isinstance(reply.data, Status):
            return reply.data
        try:
            return msgspec.convert(reply.data, Status)
        except msgspec.ValidationError as exc:
            error = f"the owner's answer is not a status: {exc}"
    else:
        error = reply.error or f"HTTP {reply.status}"
    task = config.task(reply.task_id)
    return TaskUnavailable(
        task_id=reply.task_id, name=task.name, enabled=task.enabled, status="unavailable",
        error=error,
    )  # fmt: skip


def status_list(
    entries: Sequence[Status | TaskUnavailable],
    lag: Lag,
    config: Config,
    kafka_reachable: bool | None = None,
    spool: SpoolStatus | None = None,
    kafka_unreachable_since: str | None = None,
) -> StatusList:
    statuses = [e for e in entries if isinstance(e, Status)]
    return StatusList(
        tasks=list(entries),
        kafka_lag=lag.total,
        kafka=kafka_lag(lag, config),
        rows_per_minute=round(sum(e.rows_per_minute for e in statuses), 1),
        demo=config.api.is_demo,
        kafka_reachable=kafka_reachable,
        spool=spool,
        rows_per_minute_now=round(sum(e.rows_per_minute_now for e in statuses)),
        kafka_unreachable_since=kafka_unreachable_since,
    )


def lists_all(request: web.Request, config: Config) -> bool:
    """Whether the request is about every task (no task_id, several configured)."""
    return "task_id" not in request.query and len(config.api.task_ids) > 1


class StatusView(JsonView):
    params = frozenset({"task_id"})
    access = "read"
    doc = Doc(
        "采集进度、Kafka 积压与监控指标",
        "状态",
        {
            200: Ok(
                "任务状态；配置了多个任务且未指定 task_id 时为所有任务的列表", (Status, StatusList)
            ),
            503: Refusal("任务分区正在分配，或其所属 worker 无应答"),
        },
    )

    async def get(self, request: web.Request) -> web.Response:
        runtime, history = request.app[RUNTIME], request.app[HISTORY]
        if lists_all(request, self.config):
            return self.ok(await self.listing(request, runtime, history))
        task_id = params.task_id(request, self.config.api.task_ids)
        forwarded = await forwarding.forward(self.app, request, task_id)
        if forwarded is not None:
            return forwarded
        return self.ok(await task_status(runtime, task_id, history))

    async def listing(self, request: web.Request, runtime: Runtime, history: History) -> StatusList:
        probe = runtime.probe

        async def here(task_id: str) -> tuple[int, Status]:
            return 200, await task_status(runtime, task_id, history)

        replies = await fanout.each_task(
            self.app, request, self.config.api.task_ids, here, within=fanout.LISTING_TIMEOUT
        )
        entries = [entry_of(reply, self.config) for reply in replies]
        return status_list(
            entries,
            await current_lag(probe),
            self.config,
            probe.broker_up,
            spool_status(runtime),
            since_text(probe.unreachable_since, self.config),
        )
