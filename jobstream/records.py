"""Every record jobstream puts on a topic or in its table, declared once as a msgspec Struct.

The same declaration validates what is decoded, encodes compact UTF-8 JSON (Chinese stays
readable to any Kafka consumer, 3 bytes a character instead of a 6-byte `\\u` escape), and gives
the JSON Schema that the OpenAPI document shows. Field order is the order on the wire.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

TaskStatus = Literal["idle", "running", "stopped", "error"]
"""idle: waiting for the next run; running: a run is fetching; stopped: by a user, until a
start; error: the last run failed and no run has succeeded since (see `last_error`)."""

CommandAction = Literal["start", "stop", "report", "anomaly", "reset", "deduped"]
"""start/stop come from users; report, anomaly and reset from the crawl loop; deduped from the
dedupe agent (what became of the task's kept jobs)."""

RunOutcome = Literal["running", "succeeded", "failed"]
"""What the crawl loop reports about one run of a task."""


def _about(text: str) -> msgspec.Meta:
    # The description the OpenAPI document shows for a field (users read it in Chinese).
    return msgspec.Meta(description=text)


def _copied_from(source_field: str, text: str) -> msgspec.Meta:
    # A job field copied from the API row's `source_field` (seed §6.1): the mapping and the
    # simulator's policy derive the field map from these. Meta.extra stays out of the schema.
    return msgspec.Meta(description=text, extra={"source_field": source_field})


# The one declaration of the job's fields: transform/mapping.py derives seed §6.1's field map
# from the fields marked `_copied_from` (the two dates carry the day the source field names,
# the others its text). The docstring is the schema's description in /openapi.json.
class Job(msgspec.Struct, frozen=True, kw_only=True):
    """A job posting on `job_data` (seed §6.2), keyed by `id`."""

    id: Annotated[str, _about("稳定的岗位 ID（UUID，按 URL 或行内容生成，重放时不变）")]
    job_category: Annotated[str, _copied_from("Std_class", "岗位类别")]
    job_title: Annotated[str, _copied_from("aca112", "岗位名称")]
    company: Annotated[str, _copied_from("AAB004", "公司名称")]
    salary: Annotated[str, _copied_from("acb241", "薪资")]
    location: Annotated[str, _copied_from("aab302", "工作地点")]
    publish_date: Annotated[str, _copied_from("aae397", "发布日期 YYYY-MM-DD")]
    collect_time: Annotated[str, _copied_from("Collect_time", "采集日期 YYYY-MM-DD")]
    url: Annotated[str, _copied_from("ACE760", "岗位链接")]
    description: Annotated[str, _copied_from("acb22a", "岗位描述")]
    experience: Annotated[str, _copied_from("Experience", "经验要求")]
    education: Annotated[str, _copied_from("aac011", "学历要求")]
    crawl_time: Annotated[str, _about("本服务抓取时间（ISO 8601，带时区）")]
    task_id: Annotated[str, _about("八爪鱼任务 ID")]
    source_offset: Annotated[int, _about("该行在八爪鱼任务中的偏移量")]
    demo: Annotated[bool, _about("true 表示来自内置模拟器的演示数据")]


class Reject(msgspec.Struct, frozen=True, kw_only=True):
    """A source row that could not become a job, on `job_rejects`, keyed `task_id:offset`."""

    task_id: Annotated[str, _about("八爪鱼任务 ID")]
    source_offset: Annotated[int, _about("该行在八爪鱼任务中的偏移量")]
    field: Annotated[str, _about("出错的源字段（aae397、Collect_time），整行问题时为 row")]
    reason: Annotated[str, _about("原因")]
    row: Annotated[Any, _about("API 返回的原始行（无效 Unicode 已替换）；过大的行为 null")] = None
    row_excerpt: Annotated[str, _about("过大或无法解析的行的开头片段，否则为空")] = ""
    crawl_time: Annotated[str, _about("本服务抓取时间（ISO 8601，带时区）")] = ""


class RawPage(msgspec.Struct, frozen=True, kw_only=True):
    """A contiguous slice of one API page on `job_raw`, keyed by task: source offsets
    `offset` .. `next_offset`-1. `rows` hold each row's JSON as received, decoded one by one by
    the page agent, so one row's bytes can never fail the others."""

    task_id: str
    source: str  # the API the offsets refer to: "demo" or its base URL
    offset: int
    next_offset: int
    total: int
    fetched_at: str  # ISO 8601 with offset; the reference "now" for the 7-day rule
    demo: bool = False
    rows: list[msgspec.Raw] = []
    # Row index -> why that row cannot be judged (too large, unparseable); its entry in `rows`
    # is only an excerpt kept for job_rejects.
    unreadable: dict[int, str] = {}


class Command(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A change to one task's crawl state on `job_commands`, applied by the commands agent."""

    task_id: str
    action: CommandAction
    at: str  # ISO 8601
    run: RunOutcome | None = None  # for "report"
    offset: int | None = None  # where a failed run stopped, or where an anomaly was seen
    error: str = ""  # why a run failed; what an anomaly was
    total: int | None = None  # the source total the crawl loop last saw
    source: str = ""  # for "reset": the API whose data was reset
    published: int | None = None  # for "deduped": jobs of the task forwarded to job_data
    duplicates: int | None = None  # for "deduped": jobs of the task already published
    # For "deduped": the progress the jobs were counted out of (with `source`); a report about
    # jobs of another source, or from before a source reset, is not added to the progress.
    source_resets: int | None = None


# Progress's marks for the views derived from it (jobstream/progress/fields.py). Meta.extra
# stays out of the JSON Schema.
_EMPTY_IS_NONE = msgspec.Meta(extra={"empty_is_none": True})


def _row_count(text: str) -> msgspec.Meta:
    # A count of source rows by what became of them (the invariant): /status shows it in `rows`.
    return msgspec.Meta(description=text, extra={"row_count": True})


class Progress(msgspec.Struct, frozen=True, kw_only=True):
    """One task's crawl state: the value of the `crawl_progress` table and its SQLite mirror.

    Invariant: published + duplicates + filtered + rejected + skipped == current_offset, where
    `skipped` counts offsets the API's cursor jumped over (rows deleted at the source). With
    dedupe on, `published` (reached job_data) and `duplicates` are reported by the dedupe agent
    a moment after the page advanced `current_offset`: the sum holds once it has caught up.

    The one declaration of progress's fields. The SQLite mirror's columns take their SQL type
    and default from here; the /status body shows every field, in this order and with these
    descriptions, the row counters under `rows`, and null for a text marked `_EMPTY_IS_NONE`
    that is "" (see jobstream/progress/fields.py).
    """

    task_id: str
    total: Annotated[int, _about("数据源总行数")] = 0
    # The next source offset to apply.
    current_offset: Annotated[int, _about("下一条待处理的源偏移量")] = 0
    status: TaskStatus = "idle"
    last_update: Annotated[str, _EMPTY_IS_NONE] = ""
    last_error: Annotated[str, _about("上一轮采集失败的原因；成功后清除"), _EMPTY_IS_NONE] = ""
    # Failed runs since the last successful one.
    consecutive_failures: Annotated[int, _about("上次成功以来连续失败的采集轮数")] = 0
    # When the task started failing at `failing_offset`.
    stuck_since: Annotated[str, _about("开始在 failing_offset 处失败的时间"), _EMPTY_IS_NONE] = ""
    failing_offset: Annotated[int | None, _about("失败时的位置")] = None
    cursor_anomalies: Annotated[int, _about("API 游标异常（跳跃、回退、停滞等）的次数")] = 0
    last_anomaly: Annotated[str, _EMPTY_IS_NONE] = ""
    source_resets: Annotated[int, _about("数据源被清空后从 0 重新采集的次数")] = 0
    # The API `current_offset` refers to ("demo" or its base URL).
    source: Annotated[str, _about("进度所属的 API：demo 或其地址")] = ""
    published: Annotated[int, _row_count("发布到 job_data 的行数")] = 0
    filtered: Annotated[int, _row_count("被 7 天规则过滤的行数")] = 0
    rejected: Annotated[int, _row_count("无法使用、进入 job_rejects 的行数")] = 0
    skipped: Annotated[int, _row_count("被数据源游标跳过的 offset 数")] = 0
    future_dated: Annotated[int, _row_count("日期晚于今天一天以上的行数")] = 0
    # Kept rows whose job was already published within the dedupe window.
    duplicates: Annotated[
        int, _row_count("重复的职位数：同一职位（同一 id）在去重窗口内已发布过，未再次发布")
    ] = 0
    # When each thing the operator is shown happened (added after /status was published: they
    # come last in its body). `last_error_at` goes with `last_error`, cleared by a success; the
    # error a success ended stays as `resolved_error`, until the next one is resolved.
    last_error_at: Annotated[
        str, _about("last_error 的时间（最近一轮失败的时间）；成功后清除"), _EMPTY_IS_NONE
    ] = ""
    last_success_at: Annotated[str, _about("最近一轮采集成功结束的时间"), _EMPTY_IS_NONE] = ""
    resolved_error: Annotated[
        str, _about("最近一个已解决的错误：之后有一轮采集成功了"), _EMPTY_IS_NONE
    ] = ""
    resolved_error_at: Annotated[str, _about("resolved_error 发生的时间"), _EMPTY_IS_NONE] = ""
    resolved_at: Annotated[
        str, _about("resolved_error 被解决的时间（之后第一轮成功结束的时间）"), _EMPTY_IS_NONE
    ] = ""
    last_reset_at: Annotated[
        str, _about("最近一次数据源重置（从 0 重新采集）的时间"), _EMPTY_IS_NONE
    ] = ""


class Candidate(msgspec.Struct, frozen=True, array_like=True):
    """A kept job on its way to the dedupe agent: its id and its job_data JSON, as published."""

    id: str
    job: msgspec.Raw


class Candidates(msgspec.Struct, frozen=True, kw_only=True):
    """Kept jobs of one task on `job_candidates`, all of them in the message's partition: the
    partition of their ids (the message's key is the first one's). The jobs stay bytes: the
    dedupe agent forwards them to job_data as the page agent encoded them."""

    task_id: str
    # The progress the jobs were counted out of: its source and its source_resets.
    source: str = ""
    source_resets: int = 0
    jobs: list[Candidate]
