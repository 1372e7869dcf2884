"""GET /status: a task's crawl progress, the consumer lag and the monitoring figures (seed §5.4,
§10). The worker that owns the task answers; any other forwards the request to it.

`Status` is the body's one declaration: the view encodes it and the OpenAPI document shows its
JSON Schema. Seed §5.4's keys come first, in the seed's order.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from jobstream import metrics
from jobstream.app import JobstreamApp
from jobstream.config import Config
from jobstream.progress import rules
from jobstream.records import Progress, TaskStatus
from jobstream.web import forwarding, params
from jobstream.web.endpoint import JsonView
from jobstream.web.lag import Lag
from jobstream.web.probe import PROBE, BrokerProbe


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


class RowCounts(msgspec.Struct, frozen=True):
    """源行计数：published + filtered + rejected + skipped = applied = current_offset"""

    fetched: Annotated[int, _about("本 worker 启动以来从 API 取到的行数")]
    applied: int
    published: Annotated[int, _about("发布到 job_data 的行数")]
    filtered: Annotated[int, _about("被 7 天规则过滤的行数")]
    rejected: Annotated[int, _about("无法使用、进入 job_rejects 的行数")]
    skipped: Annotated[int, _about("被数据源游标跳过的 offset 数")]
    future_dated: Annotated[int, _about("日期晚于今天一天以上的行数")]


class Status(msgspec.Struct, frozen=True):
    """一个采集任务的进度、Kafka 积压与监控指标"""

    task_id: str
    total: Annotated[int, _about("数据源总行数")]
    current_offset: Annotated[int, _about("下一条待处理的源偏移量")]
    progress: Annotated[str, msgspec.Meta(examples=["60.87%"])]
    kafka_lag: Annotated[int | None, _about("消费组在 job_data 上的积压条数；无法测量时为 null")]
    status: TaskStatus
    last_update: str | None
    last_error: Annotated[str | None, _about("上一轮采集失败的原因；成功后清除")]
    consecutive_failures: Annotated[int, _about("上次成功以来连续失败的采集轮数")]
    stuck_since: Annotated[str | None, _about("开始在 failing_offset 处失败的时间")]
    failing_offset: Annotated[int | None, _about("失败时的位置")]
    cursor_anomalies: Annotated[int, _about("API 游标异常（跳跃、回退、停滞等）的次数")]
    last_anomaly: str | None
    source_resets: Annotated[int, _about("数据源被清空后从 0 重新采集的次数")]
    source: Annotated[str, _about("进度所属的 API：demo 或其地址")]
    kafka: KafkaLag
    rows_per_minute: Annotated[float, _about("近 60 秒处理的源行数")]
    kept_ratio: Annotated[float | None, _about("通过 7 天过滤的行占比")]
    api_latency_ms: ApiLatency
    rows: RowCounts
    demo: Annotated[bool, _about("true 表示数据源是内置模拟器")]


def status_of(progress: Progress, lag: Lag, rows_fetched: int, config: Config) -> Status:
    """The body of /status for `progress`, as this worker sees it."""
    judged = progress.published + progress.filtered + progress.rejected
    return Status(
        task_id=progress.task_id,
        total=progress.total,
        current_offset=progress.current_offset,
        progress=rules.percent(progress),
        kafka_lag=lag.total,
        status=progress.status,
        last_update=progress.last_update or None,
        last_error=progress.last_error or None,
        consecutive_failures=progress.consecutive_failures,
        stuck_since=progress.stuck_since or None,
        failing_offset=progress.failing_offset,
        cursor_anomalies=progress.cursor_anomalies,
        last_anomaly=progress.last_anomaly or None,
        source_resets=progress.source_resets,
        source=progress.source,
        kafka=KafkaLag(
            consumer_group=config.kafka.consumer_group,
            lag_by_partition={str(p): n for p, n in sorted(lag.by_partition.items())},
            error=lag.error,
        ),
        rows_per_minute=round(metrics.rows_per_minute(), 1),
        kept_ratio=round(progress.published / judged, 4) if judged else None,
        api_latency_ms=ApiLatency(**metrics.api_latency_ms()),
        rows=RowCounts(
            fetched=rows_fetched,
            applied=judged + progress.skipped,
            published=progress.published,
            filtered=progress.filtered,
            rejected=progress.rejected,
            skipped=progress.skipped,
            future_dated=progress.future_dated,
        ),
        demo=config.api.is_demo,
    )


async def task_status(app: JobstreamApp, probe: BrokerProbe, task_id: str) -> Status:
    """The status as this worker, the task's owner, sees it."""
    lag = await probe.lag() if probe.started else Lag(None, error="the worker is starting")
    progress = app.progress_store.current(task_id)
    return status_of(progress, lag, app.crawler.fetched.get(task_id, 0), app.settings)


class StatusView(JsonView):
    params = frozenset({"task_id"})
    access = "read"

    async def get(self, request: web.Request) -> web.Response:
        task_id = params.task_id(request, self.config.api.task_ids)
        forwarded = await forwarding.forward(self.app, request, task_id)
        if forwarded is not None:
            return forwarded
        return self.ok(await task_status(self.app, request.app[PROBE], task_id))
