"""GET /trace: what became of every sighting of a posting, by its URL, its job id, or a task and
source offset (README: 追溯与重放).

A job id is answered by the worker that owns its partition (where the dedupe agent decided and
the trace agent kept the page agent's decisions about it); a task and offset by the task's
owner, which reads its page records and asks the id's owner about the id found there. Any
worker forwards to the owner, one hop, as /status does.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated, ClassVar

import aiohttp
import msgspec
from aiohttp import web
from yarl import URL

from jobstream.app import JobstreamApp
from jobstream.runtime import Runtime
from jobstream.topics import key_partition
from jobstream.trace import answer
from jobstream.trace.answer import NotSeen, TraceAnswer, TraceSighting
from jobstream.trace.entries import Filtered, Kept, PageRecord, Rejected
from jobstream.transform.ids import job_id_for_text
from jobstream.web import forwarding, params
from jobstream.web.endpoint import ROUTED_HEADER, Doc, JsonView, Ok, Refusal
from jobstream.web.params import Choice, Integer, Param, Pattern, TaskId
from jobstream.web.responses import RETRY_SOON, HttpError, quoted, unavailable
from jobstream.web.services import RUNTIME

UUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_UUID = re.compile(UUID_PATTERN)
MAX_URL = 4096
URL_PARAM = Pattern(
    "url", "职位链接（与 job_data 的 url 相同；按规范化后的 URL 查找）", pattern=".+"
)
ID = Pattern("id", "职位 id（UUID）", pattern=UUID_PATTERN)
TASK = TaskId(
    "task_id", "任务 ID（与 offset 一起，按源 offset 查询）", refusals={404: "未配置的 task_id"}
)
OFFSET = Integer("offset", "源 offset（与 task_id 一起）", low=0, high=10**12, default=0)


@dataclass(frozen=True)
class Query:
    job_id: str | None = None
    url: str | None = None
    task_id: str | None = None
    offset: int | None = None


def read_query(request: web.Request, task_ids: tuple[str, ...]) -> Query:
    given = {name for name in ("url", "id", "task_id", "offset") if name in request.query}
    if given not in ({"url"}, {"id"}, {"task_id", "offset"}):
        raise HttpError(
            400, "give one of: url, id, or task_id and offset (got "
            f"{', '.join(sorted(given)) or 'none'})",
        )  # fmt: skip
    if "url" in given:
        values = request.query.getall("url")
        url = values[0].strip() if len(values) == 1 else ""
        if len(values) > 1:
            raise HttpError(400, f"url: give it once, not {len(values)} times")
        if not url or len(url) > MAX_URL:
            raise HttpError(400, f"url: expected 1 to {MAX_URL} characters, got {quoted(url, 40)}")
        return Query(job_id=job_id_for_text({"url": url}), url=url)
    if "id" in given:
        values = request.query.getall("id")
        if len(values) > 1:
            raise HttpError(400, f"id: give it once, not {len(values)} times")
        if not _UUID.fullmatch(values[0]):
            raise HttpError(400, f"id: expected a job id (a UUID), got {quoted(values[0], 40)}")
        return Query(job_id=values[0].lower())
    task_id = params.task_id(request, task_ids)
    return Query(task_id=task_id, offset=OFFSET.read(request))


def owner_of_job(app: JobstreamApp, job_id: str) -> URL | None:
    """The base URL of the worker that owns the id's partition, or None when it is this one
    (always, in a process that only serves the views: the in-process tests)."""
    if not app.runs_worker:
        return None
    partition = key_partition(job_id.encode(), app.settings.kafka.partitions)
    return forwarding.owner_of_partition(app, partition)


class TraceView(JsonView):
    params: ClassVar[Collection[Param | str]] = (URL_PARAM, ID, TASK, OFFSET)
    access = "read"
    doc = Doc(
        "一个职位的每一次经历：发布、重复、过滤、拒绝、跳过",
        "追溯",
        {
            200: Ok("按时间倒序的每一次经历；没有时 not_seen 说明原因", TraceAnswer),
            503: Refusal("负责的 worker 正在启动或无应答，或追溯功能已关闭（trace.enabled）"),
        },
        "按 url、id，或 task_id 加 offset（三选一）查询。按 URL 或 id 时回答这个职位 id 的"
        "每一次经历；按 offset 时先找出这一行的职位 id，再回答同样的内容（不是 JSON 对象的行"
        "没有 id，只有这一行自己）。判断记录保留 trace.retention 秒（默认等于去重窗口）。"
        "由负责的 worker 回答，任何 worker 都会转发。",
    )

    async def get(self, request: web.Request) -> web.Response:
        config = self.config
        query = read_query(request, config.api.task_ids)
        runtime = request.app[RUNTIME]
        if not config.trace.enabled:
            raise unavailable("the trace is off (trace.enabled: false)")
        if query.job_id is not None:
            owner = owner_of_job(self.app, query.job_id)
            if owner is not None:
                return await forwarding.forward_to(
                    self.app, request, owner, "the job id", f"job id {query.job_id}"
                )
            return self.ok(await by_id(runtime, query.job_id, query.url))
        assert query.task_id is not None and query.offset is not None
        forwarded = await forwarding.forward(self.app, request, query.task_id)
        if forwarded is not None:
            return forwarded
        return self.ok(await self.by_offset(request, runtime, query.task_id, query.offset))

    async def by_offset(
        self, request: web.Request, runtime: Runtime, task_id: str, offset: int
    ) -> TraceAnswer:
        config = self.config
        progress = runtime.store.current(task_id)
        records = [
            r
            for r in runtime.trace.pages_at(task_id, offset)
            if (r.source, r.source_resets) == (progress.source, progress.source_resets)
        ]
        retention = config.trace_retention
        if not records:
            if offset >= progress.current_offset:
                why = NotSeen(
                    "not_reached",
                    f"the crawl has not reached offset {offset} yet (current_offset "
                    f"{progress.current_offset})",
                    progress.current_offset,
                )
            else:
                why = NotSeen(
                    "no_record",
                    f"offset {offset} was applied, but no record of it is held (older than the "
                    f"retention of {retention:.0f}s, or applied before tracing was on)",
                    progress.current_offset,
                )
            return TraceAnswer(None, None, task_id, offset, [], why, retention)
        page_entries = [answer.from_page(r, offset, config.tz) for r in records]
        ids = sorted({e.id for e in page_entries if e.id})
        id_entries: list[TraceSighting] = []
        for job_id in ids:
            owner = owner_of_job(self.app, job_id)
            if owner is None:
                told = await by_id(runtime, job_id, None)
            else:
                told = await _ask(self.app, request, owner, job_id)
            id_entries.extend(told.sightings)
        sightings = answer.merged(page_entries, id_entries)
        return TraceAnswer(
            ids[0] if ids else None, None, task_id, offset, sightings, None, retention
        )


async def by_id(runtime: Runtime, job_id: str, url: str | None) -> TraceAnswer:
    """The answer of the id's owner (this worker)."""
    config = runtime.config
    sightings = await answer.from_sightings(
        runtime.trace.sightings_of(job_id), config.kafka.topic, config.tz, runtime.locator.locate
    )
    why = None
    if not sightings:
        why = NotSeen(
            "unknown",
            "no decision about this job id is held: not seen yet, or only longer ago than the "
            f"retention ({config.trace_retention:.0f}s)",
        )
    return TraceAnswer(job_id, url, None, None, sightings, why, config.trace_retention)


async def _ask(app: JobstreamApp, request: web.Request, owner: URL, job_id: str) -> TraceAnswer:
    """The id owner's answer about `job_id`, for an answer by offset (one hop more)."""
    url = owner.with_path("/trace").with_query({"id": job_id})
    headers = {ROUTED_HEADER: "1"}
    if "Authorization" in request.headers:
        headers["Authorization"] = request.headers["Authorization"]
    timeout = aiohttp.ClientTimeout(total=app.settings.kafka.http_timeout + 10)
    try:
        async with app.http_client.get(url, headers=headers, timeout=timeout) as reply:
            body = await reply.json(content_type=None)
    except (TimeoutError, aiohttp.ClientError, ValueError):
        raise unavailable(
            "the worker that owns the job id did not answer; retry", RETRY_SOON
        ) from None
    if reply.status != 200 or not isinstance(body, dict):
        message = body.get("message") if isinstance(body, dict) else None
        raise unavailable(f"the worker that owns the job id answered {reply.status}: {message}")
    try:
        return msgspec.convert(body.get("data"), TraceAnswer)
    except msgspec.ValidationError as exc:
        raise unavailable(f"the id owner's answer is not a trace: {exc}") from None


# GET /trace/recent: a task's recent rows of one fate, each with its whole trace.
RECENT_FATES = ("published", "duplicate", "filtered", "rejected")
FATE = Choice(
    "fate",
    "哪一种结果：published（已发布）、duplicate（重复）、filtered（被过滤）、rejected（被拒绝）",
    choices=RECENT_FATES,
    default="published",
)
LIMIT = Integer("limit", "最多几个例子", low=1, high=50, default=10)
RECENT_TASK = TaskId("task_id", "任务 ID", refusals={404: "未配置的 task_id"})
# Rows that passed the filter are looked up by id (on the id's owner) to tell published from
# duplicate: at most this many per request.
MAX_LOOKUPS = 200


class RecentTraces(msgspec.Struct, frozen=True):
    """一个任务最近的某种结果的例子，每个带完整的追溯"""

    task_id: str
    fate: str
    examples: Annotated[
        list[TraceAnswer],
        _about("按 offset 从新到旧；每个是按 task_id 加 offset 查询 /trace 的回答"),
    ]
    rows_looked_at: Annotated[int, _about("为找到这些例子查看了多少行（从最新的页往前）")]
    retention_seconds: Annotated[
        float, _about("判断记录保留多久（trace.retention）：更早的行不在这里")
    ]


def _about(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


def recent_rows(records: list[PageRecord], fate: str) -> list[int]:
    """Offsets of the records' rows whose page fate may be `fate`, newest offset first (a row
    judged twice, by a crawl and a replay, once)."""
    wanted: tuple[type, ...] = (
        (Filtered,) if fate == "filtered" else (Rejected,) if fate == "rejected" else (Kept,)
    )
    seen: set[int] = set()
    out = []
    for record in sorted(records, key=lambda r: (r.first, r.at), reverse=True):
        for index in range(len(record.rows) - 1, -1, -1):
            offset = record.first + index
            if offset not in seen and isinstance(record.rows[index].fate, wanted):
                seen.add(offset)
                out.append(offset)
    return sorted(out, reverse=True)


class RecentTraceView(TraceView):
    params = (RECENT_TASK, FATE, LIMIT)
    doc = Doc(
        "一个任务最近的已发布、重复、被过滤或被拒绝的行，每行带追溯",
        "追溯",
        {
            200: Ok("例子（可能少于 limit：保留期内没有更多）", RecentTraces),
            503: Refusal("负责的 worker 正在启动或无应答，或追溯功能已关闭（trace.enabled）"),
        },
        "仪表盘上每个任务的计数链接到这里。按任务最近处理的页从新到旧找出这种结果的行，"
        "每行给出与 GET /trace?task_id=…&offset=… 相同的回答。由任务的负责 worker 回答。",
    )

    async def get(self, request: web.Request) -> web.Response:
        config = self.config
        task_id = params.task_id(request, config.api.task_ids)
        fate = FATE.read(request)
        limit = LIMIT.read(request)
        if not config.trace.enabled:
            raise unavailable("the trace is off (trace.enabled: false)")
        forwarded = await forwarding.forward(self.app, request, task_id)
        if forwarded is not None:
            return forwarded
        runtime = request.app[RUNTIME]
        progress = runtime.store.current(task_id)
        records = runtime.trace.pages_of(task_id, progress.source, progress.source_resets)
        examples: list[TraceAnswer] = []
        looked = 0
        for offset in recent_rows(records, fate):
            if len(examples) >= limit or looked >= MAX_LOOKUPS:
                break
            looked += 1
            told = await self.by_offset(request, runtime, task_id, offset)
            # The row's newest entry decides: a row filtered by the crawl and published by a
            # replay is an example of published.
            mine = [s for s in told.sightings if (s.task_id, s.offset) == (task_id, offset)]
            if mine and mine[0].fate == fate:
                examples.append(told)
        return self.ok(RecentTraces(task_id, fate, examples, looked, config.trace_retention))
