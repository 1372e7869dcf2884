"""The /status body is a published contract: its keys, their order, its nulls and its JSON Schema
stay what they were when `Status` was written out by hand, now that Progress's fields in it are
derived from `records.Progress`."""

from __future__ import annotations

import json
from typing import Annotated

import msgspec
import pytest

from jobstream.broker.lag import Lag
from jobstream.config import from_mapping
from jobstream.records import Progress, TaskStatus
from jobstream.web import status as status_module
from jobstream.web.error_kinds import ErrorKind
from jobstream.web.responses import json_body
from jobstream.web.status import (
    ApiLatency,
    KafkaLag,
    RowCounts,
    SpoolStatus,
    Status,
    status_of,
)

CONFIG = from_mapping({"api": {"tasks": [{"id": "t1", "name": "北京"}]}})
LAG = Lag(25, {0: 10, 1: 15, 2: 0})
SPOOL = SpoolStatus(pages=1, rows=100, bytes=2048, max_bytes=4096, enabled=True)
KINDS = (
    "credentials（账号或密码）、task_not_found（任务 ID 不存在）、network（网络）、"
    "timeout（超时）、rate_limit（限流）、api_server（API 服务端错误）、"
    "api_request（请求被 API 拒绝）、kafka（写入 Kafka）、internal（程序内部错误）"
)


def _about(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


# The declarations as published before they were derived from Progress (commit p0), kept here
# as the contract the derived ones must still give, schema and all. The fields after `spool`
# were added later (the dashboard's times, error kinds and speed): only added, after the others.
class PublishedRowCounts(msgspec.Struct, frozen=True):
    """源行计数：published + duplicates + filtered + rejected + skipped = applied =
    current_offset（开启去重时，去重环节追上之后）"""

    fetched: Annotated[int, _about("本 worker 启动以来从 API 取到的行数")]
    applied: int
    published: Annotated[int, _about("发布到 job_data 的行数")]
    filtered: Annotated[int, _about("被 7 天规则过滤的行数")]
    rejected: Annotated[int, _about("无法使用、进入 job_rejects 的行数")]
    skipped: Annotated[int, _about("被数据源游标跳过的 offset 数")]
    future_dated: Annotated[int, _about("日期晚于今天一天以上的行数")]
    duplicates: Annotated[
        int, _about("重复的职位数：同一职位（同一 id）在去重窗口内已发布过，未再次发布")
    ] = 0


class PublishedStatus(msgspec.Struct, frozen=True):
    """一个采集任务的进度、Kafka 积压与监控指标"""

    task_id: str
    total: Annotated[int, _about("数据源总行数")]
    current_offset: Annotated[int, _about("下一条待处理的源偏移量")]
    progress: Annotated[str, msgspec.Meta(examples=["60.87%"])]
    kafka_lag: Annotated[int | None, _about("消费组在 job_data 上的积压条数；无法测量时为 null")]
    status: TaskStatus
    last_update: str | None
    name: Annotated[str, _about("任务名称（api.tasks[].name），未配置时为任务 ID")]
    enabled: Annotated[bool, _about("false：配置为不采集（api.tasks[].enabled）")]
    last_error: Annotated[str | None, _about("上一轮采集失败的原因；成功后清除")]
    consecutive_failures: Annotated[int, _about("上次成功以来连续失败的采集轮数")]
    stuck_since: Annotated[str | None, _about("开始在 failing_offset 处失败的时间")]
    failing_offset: Annotated[int | None, _about("失败时的位置")]
    cursor_anomalies: Annotated[int, _about("API 游标异常（跳跃、回退、停滞等）的次数")]
    last_anomaly: str | None
    source_resets: Annotated[int, _about("数据源被清空后从 0 重新采集的次数")]
    source: Annotated[str, _about("进度所属的 API：demo 或其地址")]
    kafka: KafkaLag
    rows_per_minute: Annotated[float, _about("该任务近 60 秒处理的源行数")]
    kept_ratio: Annotated[float | None, _about("通过 7 天过滤的行占比")]
    api_latency_ms: ApiLatency
    rows: PublishedRowCounts
    demo: Annotated[bool, _about("true 表示数据源是内置模拟器")]
    kafka_reachable: Annotated[
        bool | None, _about("探针最近一次能否连上 Kafka；false 时采集到的页进入本地暂存")
    ] = None
    spool: Annotated[SpoolStatus | None, _about("该任务在本地暂存中的页")] = None
    last_error_at: Annotated[
        str | None, _about("last_error 的时间（最近一轮失败的时间）；成功后清除")
    ] = ""
    last_success_at: Annotated[str | None, _about("最近一轮采集成功结束的时间")] = ""
    resolved_error: Annotated[str | None, _about("最近一个已解决的错误：之后有一轮采集成功了")] = ""
    resolved_error_at: Annotated[str | None, _about("resolved_error 发生的时间")] = ""
    resolved_at: Annotated[
        str | None, _about("resolved_error 被解决的时间（之后第一轮成功结束的时间）")
    ] = ""
    last_reset_at: Annotated[str | None, _about("最近一次数据源重置（从 0 重新采集）的时间")] = ""
    error_kind: Annotated[ErrorKind | None, _about(f"last_error 的类别：{KINDS}")] = None
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


def schema_text(struct: type) -> str:
    """The JSON Schema components of `struct` as /openapi.json writes them, names unified."""
    _, components = msgspec.json.schema_components(
        [struct], ref_template="#/components/schemas/{name}"
    )
    text = json.dumps(components, ensure_ascii=False)
    return text.replace("PublishedRowCounts", "RowCounts").replace("PublishedStatus", "Status")


def test_status_body_schema_is_the_published_one_byte_for_byte() -> None:
    assert schema_text(Status) == schema_text(PublishedStatus)
    assert schema_text(RowCounts) == schema_text(PublishedRowCounts)


@pytest.fixture
def fixed_latency(monkeypatch: pytest.MonkeyPatch) -> None:
    # Process-wide figures other tests feed; pinned so the whole body can be compared.
    monkeypatch.setattr(status_module.metrics, "api_latency_ms", lambda: {"p50": 80.5, "p95": None})


@pytest.mark.usefixtures("fixed_latency")
def test_status_body_of_a_new_task_exact_bytes_empty_texts_null() -> None:
    body = json_body(status_of(Progress(task_id="t1"), LAG, 0, CONFIG))
    assert body.decode() == (
        '{"task_id":"t1","total":0,"current_offset":0,"progress":"0.00%","kafka_lag":25,'
        '"status":"idle","last_update":null,"name":"北京","enabled":true,"last_error":null,'
        '"consecutive_failures":0,"stuck_since":null,"failing_offset":null,'
        '"cursor_anomalies":0,"last_anomaly":null,"source_resets":0,"source":"",'
        '"kafka":{"consumer_group":"job_consumer_group",'
        '"lag_by_partition":{"0":10,"1":15,"2":0},"error":null},"rows_per_minute":0.0,'
        '"kept_ratio":null,"api_latency_ms":{"p50":80.5,"p95":null},'
        '"rows":{"fetched":0,"applied":0,"published":0,"filtered":0,"rejected":0,"skipped":0,'
        '"future_dated":0,"duplicates":0},"demo":true,"kafka_reachable":null,"spool":null,'
        '"last_error_at":null,"last_success_at":null,"resolved_error":null,'
        '"resolved_error_at":null,"resolved_at":null,"last_reset_at":null,"error_kind":null,'
        '"resolved_error_kind":null,"next_run_at":null,"rows_per_minute_now":0,'
        '"kafka_unreachable_since":null}'
    )


@pytest.mark.usefixtures("fixed_latency")
def test_status_body_of_a_failing_task_exact_bytes_every_progress_field_copied() -> None:
    progress = Progress(
        task_id="t1",
        total=480,
        current_offset=120,
        status="error",
        last_update="2026-01-15T10:30:00+08:00",
        last_error="HTTP 502 from the API",
        consecutive_failures=3,
        stuck_since="2026-01-15T10:00:00+08:00",
        failing_offset=120,
        cursor_anomalies=2,
        last_anomaly="2026-01-15T09:00:00+08:00 cursor jump",
        source_resets=1,
        source="demo",
        published=60,
        filtered=40,
        rejected=10,
        skipped=5,
        future_dated=4,
        duplicates=5,
        last_error_at="2026-01-15T10:30:00+08:00",
        last_success_at="2026-01-15T09:55:00+08:00",
        resolved_error="the Bazhuayu API refused the credentials (Invalid.Grant: wrong)",
        resolved_error_at="2026-01-15T09:50:00+08:00",
        resolved_at="2026-01-15T09:55:00+08:00",
        last_reset_at="2026-01-15T09:00:00+08:00",
    )
    status = status_of(
        progress, LAG, 150, CONFIG, 42.04, True, SPOOL, rows_per_minute_now=2480.6,
        kafka_unreachable_since="2026-01-15T10:29:58+08:00",
    )  # fmt: skip
    assert json_body(status).decode() == (
        '{"task_id":"t1","total":480,"current_offset":120,"progress":"25.00%","kafka_lag":25,'
        '"status":"error","last_update":"2026-01-15T10:30:00+08:00","name":"北京",'
        '"enabled":true,"last_error":"HTTP 502 from the API","consecutive_failures":3,'
        '"stuck_since":"2026-01-15T10:00:00+08:00","failing_offset":120,'
        '"cursor_anomalies":2,"last_anomaly":"2026-01-15T09:00:00+08:00 cursor jump",'
        '"source_resets":1,"source":"demo","kafka":{"consumer_group":"job_consumer_group",'
        '"lag_by_partition":{"0":10,"1":15,"2":0},"error":null},"rows_per_minute":42.0,'
        '"kept_ratio":0.5652,"api_latency_ms":{"p50":80.5,"p95":null},'
        '"rows":{"fetched":150,"applied":120,"published":60,"filtered":40,"rejected":10,'
        '"skipped":5,"future_dated":4,"duplicates":5},"demo":true,"kafka_reachable":true,'
        '"spool":{"pages":1,"rows":100,"bytes":2048,"max_bytes":4096,"enabled":true},'
        '"last_error_at":"2026-01-15T10:30:00+08:00","last_success_at":"2026-01-15T09:55:00+08:00",'
        '"resolved_error":"the Bazhuayu API refused the credentials (Invalid.Grant: wrong)",'
        '"resolved_error_at":"2026-01-15T09:50:00+08:00","resolved_at":"2026-01-15T09:55:00+08:00",'
        '"last_reset_at":"2026-01-15T09:00:00+08:00","error_kind":"api_server",'
        '"resolved_error_kind":"credentials","next_run_at":"2026-01-15T10:35:00+08:00",'
        '"rows_per_minute_now":2481,"kafka_unreachable_since":"2026-01-15T10:29:58+08:00"}'
    )


def test_status_body_without_duplicates_from_an_earlier_owner_still_reads() -> None:
    """A listing converts each owner's answer; one from before dedupe has no rows.duplicates."""
    body = json.loads(json_body(status_of(Progress(task_id="t1", published=3), LAG, 0, CONFIG)))
    del body["rows"]["duplicates"]
    assert msgspec.convert(body, Status).rows.duplicates == 0


def test_status_body_from_an_owner_before_the_dashboard_times_still_reads() -> None:
    """An owner on an earlier version answers without the fields added after `spool`."""
    body = json.loads(json_body(status_of(Progress(task_id="t1", last_error="x"), LAG, 0, CONFIG)))
    added = list(body)[list(body).index("spool") + 1 :]
    assert added[0] == "last_error_at" and added[-1] == "kafka_unreachable_since"
    for key in added:
        del body[key]
    status = msgspec.convert(body, Status)
    assert (status.last_error, status.error_kind, status.rows_per_minute_now) == ("x", None, 0)
