"""Replays: the rules applied again to a task's pages still in job_raw, without one API call
(README: 追溯与重放).

A replay runs on the task's owner. It reads the task's partition of job_raw with a consumer of
its own (no group: nothing is committed, the page agent is not disturbed), takes the pages that
were applied (the trace's page records say which, by their fetch time, and what became of each
row then), and judges their rows again with the page agent's own code and the given
`filter_days`, each page against the day it was fetched (as the crawl did). Only rows that were
filtered or rejected and are eligible now are sent, through job_candidates, so dedupe applies;
rows kept before are left alone (they are in job_data, or were duplicates). Before each page's
candidates are sent, a `replayed` command moves them out of `filtered` / `rejected`; the dedupe
agent then counts them as published or duplicates, as for a crawl, so the counts still add up
to `current_offset`. The offsets the crawl applies meanwhile are beyond the replay's end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust import StreamT
from faust.types import AgentT, AppT

from jobstream.broker import batches
from jobstream.broker.clients import client_options, start_or_close, stream_reader
from jobstream.broker.lag import LagProbe
from jobstream.config import Config
from jobstream.dedupe.sightings import candidate_messages
from jobstream.frames import BrokenFrame
from jobstream.pipeline.messages import page_messages
from jobstream.pipeline.pages import decode_event
from jobstream.progress.commands import Commands
from jobstream.progress.store import ProgressStore
from jobstream.records import Command, Progress, RawPage
from jobstream.topics import (
    candidates_topic,
    commands_topic,
    data_topic,
    key_partition,
    key_partitions,
    partition_for,
    raw_topic,
)
from jobstream.trace.entries import Filtered, Kept, PageRecord, Published, RowFate, Sighting
from jobstream.trace.judge import by_partition, job_offset, page_trace
from jobstream.trace.recorder import ORIGIN_HEADER, Tracer
from jobstream.trace.store import TraceStore
from jobstream.transform.outcome import RowContext
from jobstream.worker_state import WorkerState

logger = logging.getLogger(__name__)

ReplayState = Literal["running", "finished", "stopped", "failed"]
READ_BYTES = 4 * 1024 * 1024
_HEADERS = [(ORIGIN_HEADER, b"replay")]


def _about(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class ReplayStatus(msgspec.Struct, kw_only=True):
    """任务最近一次重放：把规则重新应用到 job_raw 中仍保留的页，不调用 API"""

    state: Annotated[
        ReplayState, _about("running：进行中；finished：完成；stopped：被停止；failed：出错")
    ]
    from_offset: Annotated[int, _about("从哪个源 offset 开始")]
    to_offset: Annotated[int, _about("到哪个源 offset 为止（不含）：开始时的 current_offset")]
    filter_days: Annotated[int, _about("重放使用的过滤天数")]
    started_at: str
    ended_at: str | None = None
    pages: Annotated[int, _about("读过的 job_raw 事件数（本任务的）")] = 0
    scanned: Annotated[int, _about("重新判断的行数")] = 0
    sent: Annotated[int, _about("现在符合条件、交给去重环节的行数（之前被过滤或拒绝）")] = 0
    published: Annotated[int, _about("其中发布到 job_data 的行数（去重环节报告后）")] = 0
    duplicates: Annotated[int, _about("其中因重复没有发布的行数（去重环节报告后）")] = 0
    still_filtered: Annotated[int, _about("仍被过滤的行数")] = 0
    still_rejected: Annotated[int, _about("仍无法使用的行数")] = 0
    unchanged: Annotated[int, _about("之前已通过过滤（已发布或重复）、不再处理的行数")] = 0
    untraced: Annotated[
        int, _about("没有判断记录（超出 trace.retention，或 job_raw 中已没有这一页）而未重放的行数")
    ] = 0
    api_calls: Annotated[int, _about("重放调用八爪鱼 API 的次数：总是 0")] = 0
    error: str | None = None


class ReplayRefused(Exception):
    """A replay that cannot start or stop as asked (one is running, or none is)."""


class Replays:
    """The replays of the tasks this worker owns, one at a time per task; the last one's status
    is kept until the next (in memory: a worker that stops ends its replays, as `stopped`)."""

    def __init__(
        self,
        config: Config,
        worker: WorkerState,
        store: ProgressStore,
        trace: TraceStore,
        tracer: Tracer,
        commands: Commands,
    ) -> None:
        self.config = config
        self.worker = worker
        self.store = store
        self.trace = trace
        self.tracer = tracer
        self.commands = commands
        self._status: dict[str, ReplayStatus] = {}
        self._runs: dict[str, asyncio.Task[None]] = {}
        self._stopping: set[str] = set()

    def status(self, task_id: str) -> ReplayStatus | None:
        return self._status.get(task_id)

    def start(self, task_id: str, from_offset: int, filter_days: int) -> ReplayStatus:
        run = self._runs.get(task_id)
        if run is not None and not run.done():
            raise ReplayRefused("a replay of this task is running; stop it first")
        progress = self.store.current(task_id)
        status = ReplayStatus(
            state="running",
            from_offset=from_offset,
            to_offset=max(from_offset, progress.current_offset),
            filter_days=filter_days,
            started_at=self._now(),
        )
        self._status[task_id] = status
        self._stopping.discard(task_id)
        self._runs[task_id] = asyncio.create_task(self._run(task_id, progress, status))
        logger.info(
            "task_id=%s replay of offsets %d..%d with filter_days %d starts",
            task_id, status.from_offset, status.to_offset, filter_days,
        )  # fmt: skip
        return status

    def stop(self, task_id: str) -> ReplayStatus:
        run = self._runs.get(task_id)
        if run is None or run.done():
            raise ReplayRefused("no replay of this task is running")
        self._stopping.add(task_id)
        return self._status[task_id]

    async def wait(self, task_id: str) -> None:
        run = self._runs.get(task_id)
        if run is not None:
            await asyncio.wait([run])

    def counted(self, task_id: str, published: int, duplicates: int) -> None:
        """The dedupe agent's decisions about the replayed rows of a task (a
        `replay_deduped` command)."""
        status = self._status.get(task_id)
        if status is not None:
            status.published += published
            status.duplicates += duplicates

    async def close(self) -> None:
        for task_id, run in self._runs.items():
            if not run.done():
                self._stopping.add(task_id)
                run.cancel()
        await asyncio.gather(*self._runs.values(), return_exceptions=True)

    def _now(self) -> str:
        return datetime.now(self.config.tz).isoformat(timespec="seconds")

    async def _run(self, task_id: str, progress: Progress, status: ReplayStatus) -> None:
        try:
            await Replay(self, task_id, progress, status).run()
            status.state = "stopped" if task_id in self._stopping else "finished"
        except asyncio.CancelledError:
            status.state = "stopped"
        except Exception as exc:
            logger.exception("task_id=%s replay failed", task_id)
            status.state = "failed"
            status.error = f"{type(exc).__name__}: {exc}"
        finally:
            status.ended_at = self._now()
            logger.info(
                "task_id=%s replay %s: %d rows judged again, %d sent to job_data's way, %d "
                "still filtered, %d still rejected, %d kept before, %d without a record",
                task_id, status.state, status.scanned, status.sent, status.still_filtered,
                status.still_rejected, status.unchanged, status.untraced,
            )  # fmt: skip

    def stopping(self, task_id: str) -> bool:
        return task_id in self._stopping or self.worker.stopping or not self.worker.owns(task_id)


class Replay:
    """One replay of one task."""

    def __init__(
        self, replays: Replays, task_id: str, progress: Progress, status: ReplayStatus
    ) -> None:
        self.replays = replays
        self.config = replays.config
        self.task_id = task_id
        self.progress = progress
        self.status = status
        records = replays.trace.pages_of(task_id, progress.source, progress.source_resets)
        # What each offset became last (a later replay's record over the crawl's).
        self.latest: dict[int, RowFate] = {}
        for record in records:
            for index, row in enumerate(record.rows):
                self.latest[record.first + index] = row
        # The crawl's records by fetch time: the pages that were applied.
        self.applied: dict[str, list[PageRecord]] = {}
        for record in records:
            if record.origin == "crawl":
                self.applied.setdefault(record.fetched_at, []).append(record)
        self.skipped = {
            offset
            for record in records
            for offset in range(record.skipped_from, record.next_offset)
        }
        self.done: set[int] = set()

    async def run(self) -> None:
        consumer, tp, end = await self._reader()
        try:
            while await consumer.position(tp) < end:
                if self.replays.stopping(self.task_id):
                    return
                if (
                    self.replays.store.current(self.task_id).source_resets
                    != self.progress.source_resets
                ):
                    raise RuntimeError("the task's source was reset meanwhile")
                found = await consumer.getmany(tp, timeout_ms=500, max_records=50)
                for record in found.get(tp, []):
                    if record.offset >= end:
                        break
                    await self._event(record.key, record.value)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
        status = self.status
        # Rows of the range not judged again: no record of them, or their page is no longer
        # in job_raw (the offsets the cursor jumped over are no rows).
        status.untraced = sum(
            1
            for offset in range(status.from_offset, status.to_offset)
            if offset not in self.done and offset not in self.skipped
        )

    async def _reader(self) -> tuple[AIOKafkaConsumer, TopicPartition, int]:
        options = client_options(self.config)
        tp = TopicPartition(
            raw_topic.get_topic_name(), partition_for(self.task_id, self.config.kafka.partitions)
        )
        probe = LagProbe(options)
        try:
            end = (await probe.true_end_offsets([tp]))[tp]
        finally:
            await probe.close()
        consumer = stream_reader(
            options, "jobstream-replay", self.config.kafka.fetch_max_wait_ms, READ_BYTES
        )
        await start_or_close(consumer.start(), consumer.stop)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        return consumer, tp, end

    async def _event(self, key: bytes | None, value: bytes | None) -> None:
        if key is None or value is None or key.decode(errors="replace") != self.task_id:
            return
        try:
            page = decode_event(value)
        except (msgspec.DecodeError, BrokenFrame):
            return
        if page.task_id != self.task_id or page.source != self.progress.source:
            return
        self.status.pages += 1
        for record in self.applied.get(page.fetched_at, ()):
            if page.offset <= record.first < page.next_offset:
                await self._page(page, record)

    async def _page(self, page: RawPage, applied: PageRecord) -> None:
        """Judge the rows `applied` covers again; send the ones eligible now."""
        status, config = self.status, self.config
        ctx = RowContext(
            task_id=self.task_id,
            now=datetime.fromisoformat(page.fetched_at).astimezone(config.tz),
            filter_days=status.filter_days,
            demo=page.demo,
        )
        first_row = applied.first - page.offset
        out = page_messages(page, first_row, ctx, config.kafka.max_message_bytes, trace=True)
        partitions = config.kafka.partitions
        again = page_trace(
            page, first_row, ctx, out, source_resets=applied.source_resets, at=time.time(),
            partitions=partitions, origin="replay",
        )  # fmt: skip
        jobs = {job_offset(value): (key, value) for key, value in out.jobs}
        rows: list[RowFate] = []
        sent: list[tuple[bytes, bytes]] = []
        moved = {"filtered": 0, "rejected": 0}
        told = []  # the replay's decisions the id's owner keeps: rows still filtered or rejected
        for index, now in enumerate(again.record.rows):
            offset = applied.first + index
            before = self.latest.get(offset, applied.rows[index])
            if not status.from_offset <= offset < status.to_offset or offset in self.done:
                rows.append(before)
                continue
            self.done.add(offset)
            status.scanned += 1
            was = type(before.fate)
            if was is Kept:
                status.unchanged += 1
                rows.append(before)
            elif isinstance(now.fate, Kept):
                sent.append(jobs[offset])
                moved["filtered" if was is Filtered else "rejected"] += 1
                rows.append(now)
            else:
                if was is Filtered:
                    status.still_filtered += 1
                else:
                    status.still_rejected += 1
                same = type(now.fate) is was
                rows.append(now if same else before)
                if same and now.id:
                    told.append(offset)
        record = msgspec.structs.replace(
            again.record, first=applied.first, rows=rows, next_offset=applied.next_offset
        )
        kept = set(told)
        sightings = [s for group in again.sightings.values() for s in group if s.offset in kept]
        if sent:
            await self._send(sent, moved)
            status.sent += len(sent)
            if not config.dedupe.enabled:
                data = config.kafka.partitions
                sightings += [
                    _published(key, self.task_id, job_offset(value), record.at, data)
                    for key, value in sent
                ]
        await asyncio.gather(
            *await self.replays.tracer.record(record, by_partition(sightings, partitions))
        )

    async def _send(self, jobs: list[tuple[bytes, bytes]], moved: dict[str, int]) -> None:
        """Move the rows out of filtered/rejected, then send them on; a failed send moves
        them back."""
        deduped = self.config.dedupe.enabled
        published = None if deduped else len(jobs)
        await self._report(moved["filtered"], moved["rejected"], published)
        try:
            worker = self.replays.worker
            kafka = worker.producer()
            if deduped:
                name = candidates_topic.get_topic_name()
                count = len(await kafka.partitions_for(name))
                # No source offsets: the rows lie below the counting marks the crawl's
                # decisions set (rules.count_decided), so they are counted as given.
                messages = candidate_messages(
                    self.progress, jobs, lambda keys: key_partitions(keys, count),
                    self.config.kafka.max_message_bytes,
                )  # fmt: skip
                deliveries = await _send_marked(kafka, name, messages, count)
            else:
                deliveries = await batches.send_keyed(kafka, data_topic().get_topic_name(), jobs)
            await asyncio.gather(*deliveries)
        except BaseException:
            with contextlib.suppress(Exception):
                await self._report(
                    -moved["filtered"], -moved["rejected"], -published if published else None
                )
            raise

    async def _report(self, filtered: int, rejected: int, published: int | None) -> None:
        await self.replays.commands.send(
            self.task_id,
            "replayed",
            filtered=filtered,
            rejected=rejected,
            published=published,
            source=self.progress.source,
            source_resets=self.progress.source_resets,
        )


def _published(key: bytes, task_id: str, offset: int, at: float, partitions: int) -> Sighting:
    """A replayed row published without dedupe, as the id's owner keeps it."""
    where = Published(key_partition(key, partitions))
    return Sighting(key.decode(), task_id, offset, at, "replay", where)


async def _send_marked(
    kafka: Any, topic: str, messages: Sequence[tuple[bytes, bytes]], partitions: int
) -> list[asyncio.Future[Any]]:
    """job_candidates messages marked as the replay's (the dedupe agent's decisions about them
    are traced as such), each to its key's partition."""
    futures = []
    for key, value in messages:
        batch = kafka.create_batch()
        batch.append(key=key, value=value, timestamp=None, headers=_HEADERS)
        batch.close()
        futures.append(
            await kafka.send_batch(batch, topic, partition=key_partition(key, partitions))
        )
    return futures


_COMMAND = msgspec.json.Decoder(Command)


def declare(app: AppT, replays: Replays) -> AgentT:
    """The agent that tells each replay what the dedupe agent made of its rows (a second
    reader of job_commands beside `apply_commands`, which leaves these to it)."""

    @app.agent(commands_topic, name="jobstream.pipeline.replay.count_replayed")
    async def count_replayed(events: StreamT[bytes]) -> None:
        async for value in events:
            try:
                command = _COMMAND.decode(value)
            except msgspec.DecodeError:
                continue
            if command.action == "replay_deduped":
                replays.counted(command.task_id, command.published or 0, command.duplicates or 0)

    return count_replayed
