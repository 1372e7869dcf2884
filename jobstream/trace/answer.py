"""GET /trace's answer: the body's one declaration (its JSON Schema is the OpenAPI document's),
and how it is made of what the trace holds: the decisions about a job id (`Sighting`s), the
records of the pages that cover an offset (`PageRecord`s), and where job_data holds a published
job (found when asked, by `Locate`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, tzinfo
from typing import Annotated, Any, Literal

import msgspec

from jobstream.trace.entries import (
    Duplicate,
    Filtered,
    Kept,
    PageRecord,
    Published,
    Rejected,
    RowFate,
    Sighting,
)

# How far a duplicate's `first_at` (milliseconds, as published_jobs keeps it) may be from the
# time of the published sighting it names.
FIRST_AT_TOLERANCE = 0.0005 + 1e-9
Fate = Literal["published", "duplicate", "filtered", "rejected", "skipped", "pending"]
NotSeenReason = Literal["not_reached", "unknown", "no_record"]
# (job_data partition, job id, when forwarded, task, source offset) -> (offset, timestamp ms)
Locate = Callable[[int, str, float, str, int], Awaitable[tuple[int, int] | None]]


def _about(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class JobDataPosition(msgspec.Struct, frozen=True):
    """职位在 job_data 中的位置"""

    topic: str
    partition: int
    offset: Annotated[
        int | None, _about("消息的 offset；已不在 job_data 中（或还没写入）时为 null")
    ]
    timestamp: Annotated[str | None, _about("消息的时间（ISO 8601）")]


class FirstSighting(msgspec.Struct, frozen=True):
    """窗口内第一次发布的那一行"""

    task_id: Annotated[str | None, _about("来自哪个任务；已超出保留期时为 null")]
    offset: Annotated[int | None, _about("源 offset；已超出保留期时为 null")]
    published_at: Annotated[str, _about("发布（转发到 job_data）的时间")]
    job_data: JobDataPosition | None


class DuplicateDetail(msgspec.Struct, frozen=True):
    """重复：同一职位 id 在去重窗口内已经发布过"""

    first: FirstSighting
    window_seconds: Annotated[float, _about("去重窗口（秒）")]
    window_ends: Annotated[str, _about("窗口结束的时间：之后再出现会重新发布")]


class FilteredDetail(msgspec.Struct, frozen=True):
    """被 7 天规则过滤：早于截止日的日期"""

    decided_by: Annotated[
        list[str],
        _about("早于截止日、决定过滤的日期：publish_date（aae397）、collect_time（Collect_time）"),
    ]
    publish_raw: Annotated[Any, _about("aae397 的原始值（文本最多 200 字符）")]
    publish_date: Annotated[str | None, _about("解析出的发布日期")]
    collect_raw: Annotated[Any, _about("Collect_time 的原始值")]
    collect_date: Annotated[str | None, _about("解析出的采集日期")]
    cutoff: Annotated[str, _about("截止日：采集这一页那天保留的最早日期")]
    filter_days: Annotated[int, _about("当时的过滤天数")]


class RejectedDetail(msgspec.Struct, frozen=True):
    """无法使用，进入 job_rejects"""

    field: Annotated[str, _about("出错的源字段（aae397、Collect_time），整行问题时为 row")]
    reason: str
    row_excerpt: Annotated[str, _about("原始行的开头（最多 500 字符）；整行在 job_rejects 中")]
    rejects_key: Annotated[str, _about("job_rejects 中这条消息的 key（task_id:offset）")]


class SkippedDetail(msgspec.Struct, frozen=True):
    """被 API 游标跳过：没有取到这一行"""

    from_offset: Annotated[int, _about("跳过的第一个 offset")]
    to_offset: Annotated[int, _about("游标跳到的 offset（不含）")]
    anomaly: Annotated[str, _about("游标异常的说明")]


class TraceSighting(msgspec.Struct, frozen=True, omit_defaults=True):
    """这一行的一次经历"""

    fate: Annotated[
        Fate,
        _about(
            "published：发布到 job_data；duplicate：重复，未发布；filtered：被 7 天规则过滤；"
            "rejected：进入 job_rejects；skipped：被游标跳过；pending：通过过滤，去重环节还没判断"
        ),
    ]
    task_id: str
    offset: Annotated[int, _about("源 offset")]
    at: Annotated[str, _about("做出判断的时间（ISO 8601）")]
    origin: Annotated[Literal["crawl", "replay"], _about("crawl：采集；replay：重放")]
    id: Annotated[str | None, _about("职位 id；不是 JSON 对象的行没有")] = None
    published: JobDataPosition | None = None
    duplicate: DuplicateDetail | None = None
    filtered: FilteredDetail | None = None
    rejected: RejectedDetail | None = None
    skipped: SkippedDetail | None = None


class NotSeen(msgspec.Struct, frozen=True):
    """没有找到这一行的经历"""

    reason: Annotated[
        NotSeenReason,
        _about(
            "not_reached：采集还没到这个 offset；unknown：保留期内没有见过这个职位 id；"
            "no_record：offset 已处理，但记录已超出保留期（或处理时还没有追溯功能）"
        ),
    ]
    message: str
    current_offset: Annotated[int | None, _about("任务的 current_offset（按 offset 查询时）")] = (
        None
    )


class TraceAnswer(msgspec.Struct, frozen=True):
    """一个职位（或一个源 offset）的每一次经历，新的在前"""

    id: Annotated[str | None, _about("查询的职位 id（按 URL 查询时由 URL 算出）")]
    url: Annotated[str | None, _about("查询的 URL")]
    task_id: str | None
    offset: int | None
    sightings: list[TraceSighting]
    not_seen: NotSeen | None
    retention_seconds: Annotated[float, _about("判断记录保留多久（trace.retention）")]


def iso(at: float, tz: tzinfo) -> str:
    return datetime.fromtimestamp(at, tz).isoformat(timespec="milliseconds")


def decided_by(detail: Filtered) -> list[str]:
    out = []
    for name, day in (("publish_date", detail.publish_date), ("collect_time", detail.collect_date)):
        if day and day < detail.cutoff:
            out.append(name)
    return out


def filtered_detail(detail: Filtered) -> FilteredDetail:
    return FilteredDetail(
        decided_by=decided_by(detail),
        publish_raw=detail.publish_raw,
        publish_date=detail.publish_date or None,
        collect_raw=detail.collect_raw,
        collect_date=detail.collect_date or None,
        cutoff=detail.cutoff,
        filter_days=detail.filter_days,
    )


def rejected_detail(detail: Rejected, task_id: str, offset: int) -> RejectedDetail:
    return RejectedDetail(detail.field, detail.reason, detail.excerpt, f"{task_id}:{offset}")


async def from_sightings(
    sightings: list[Sighting], topic: str, tz: tzinfo, locate: Locate
) -> list[TraceSighting]:
    """The answer's entries for the decisions about one id (newest first), job_data's
    positions found for the published ones and for the first sighting of each duplicate."""
    positions: dict[tuple[float, str, int], JobDataPosition] = {}

    async def position(s: Sighting, partition: int) -> JobDataPosition:
        key = (s.at, s.task_id, s.offset)
        if key not in positions:
            found = await locate(partition, s.id, s.at, s.task_id, s.offset)
            positions[key] = JobDataPosition(
                topic,
                partition,
                found[0] if found else None,
                iso(found[1] / 1000, tz) if found else None,
            )
        return positions[key]

    published = [s for s in sightings if isinstance(s.decision, Published)]
    out = []
    for s in sightings:
        base: dict[str, Any] = {
            "task_id": s.task_id,
            "offset": s.offset,
            "at": iso(s.at, tz),
            "origin": s.origin,
            "id": s.id,
        }
        decision = s.decision
        if isinstance(decision, Published):
            entry = TraceSighting(
                "published", **base, published=await position(s, decision.partition)
            )
        elif isinstance(decision, Duplicate):
            entry = TraceSighting(
                "duplicate", **base, duplicate=await _duplicate(decision, published, tz, position)
            )
        elif isinstance(decision, Filtered):
            entry = TraceSighting("filtered", **base, filtered=filtered_detail(decision))
        else:
            entry = TraceSighting(
                "rejected", **base, rejected=rejected_detail(decision, s.task_id, s.offset)
            )
        out.append(entry)
    return out


async def _duplicate(
    decision: Duplicate,
    published: list[Sighting],
    tz: tzinfo,
    position: Callable[[Sighting, int], Awaitable[JobDataPosition]],
) -> DuplicateDetail:
    # published_jobs keeps the time to the millisecond ("%.3f"), the sighting to the float's
    # precision: the first sighting is the published one within half a millisecond.
    near = [p for p in published if abs(p.at - decision.first_at) <= FIRST_AT_TOLERANCE]
    first = min(near, key=lambda p: abs(p.at - decision.first_at), default=None)
    where = None
    if first is not None and isinstance(first.decision, Published):
        where = await position(first, first.decision.partition)
    ends = datetime.fromtimestamp(decision.first_at, tz) + timedelta(seconds=decision.window)
    return DuplicateDetail(
        first=FirstSighting(
            task_id=first.task_id if first else None,
            offset=first.offset if first else None,
            published_at=iso(decision.first_at, tz),
            job_data=where,
        ),
        window_seconds=decision.window,
        window_ends=ends.isoformat(timespec="milliseconds"),
    )


def from_page(record: PageRecord, offset: int, tz: tzinfo) -> TraceSighting:
    """The page agent's own account of `offset` (which the record covers)."""
    base: dict[str, Any] = {
        "task_id": record.task_id,
        "offset": offset,
        "at": iso(record.at, tz),
        "origin": record.origin,
    }
    if offset >= record.skipped_from:
        return TraceSighting(
            "skipped",
            **base,
            skipped=SkippedDetail(
                record.skipped_from,
                record.next_offset,
                f"the API's cursor jumped from {record.skipped_from} to {record.next_offset} "
                f"(page fetched at {record.fetched_at}): {record.next_offset - record.skipped_from}"
                " offsets never served, counted in rows.skipped",
            ),
        )
    row: RowFate = record.rows[offset - record.first]
    fate = row.fate
    found = row.id or None
    if isinstance(fate, Kept):
        return TraceSighting("pending", **base, id=found)
    if isinstance(fate, Filtered):
        return TraceSighting("filtered", **base, id=found, filtered=filtered_detail(fate))
    return TraceSighting(
        "rejected", **base, id=found, rejected=rejected_detail(fate, record.task_id, offset)
    )


def merged(
    page_entries: list[TraceSighting], id_entries: list[TraceSighting]
) -> list[TraceSighting]:
    """The id's entries, and each page entry the id's decisions do not tell yet (a row whose
    decision is still on its way to the id's owner); newest first."""
    told = {(e.task_id, e.offset, e.origin) for e in id_entries}
    extra = [e for e in page_entries if (e.task_id, e.offset, e.origin) not in told]
    return sorted([*id_entries, *extra], key=lambda e: e.at, reverse=True)
