"""The page agent: applies each raw page once. Its jobs go to job_data (with dedupe on, to
job_candidates, on their way to job_data), its unusable rows to job_rejects, and the task's
progress advances only once the broker has acknowledged them."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import replace
from datetime import datetime
from typing import Any

import msgspec
from faust import StreamT
from faust.types import AgentT, AppT

from jobstream import metrics
from jobstream.broker import batches
from jobstream.config import Config
from jobstream.dedupe.sightings import candidate_messages
from jobstream.frames import BrokenFrame
from jobstream.pipeline.messages import Message, PageMessages, page_messages
from jobstream.pipeline.pages import decode_event
from jobstream.pipeline.reject_log import RejectLog
from jobstream.progress import rules
from jobstream.progress.store import ProgressStore
from jobstream.records import Progress, RawPage
from jobstream.topics import (
    candidates_topic,
    data_topic,
    declare_outputs,
    key_partitions,
    raw_topic,
    rejects_topic,
)
from jobstream.trace.recorder import Tracer
from jobstream.transform.outcome import RowContext
from jobstream.worker_state import WorkerState

logger = logging.getLogger(__name__)


def declare(
    app: AppT,
    config: Config,
    store: ProgressStore,
    worker: WorkerState,
    tracer: Tracer | None = None,
) -> AgentT:
    """The page agent: applies job_raw's pages to `store`, sending with `worker`'s producer;
    `tracer` records what became of each row."""

    @app.agent(raw_topic, name="jobstream.pipeline.apply.apply_pages")
    async def apply_pages(events: StreamT[bytes]) -> None:
        await declare_outputs()
        # This agent's pages awaiting acknowledgements; it lives as long as the agent.
        pipeline = Pipeline(config, store, worker, tracer=tracer)
        async for value in events:
            try:
                page = decode_event(value)
            except (msgspec.DecodeError, BrokenFrame) as exc:
                # Not a page this version wrote (or not a page at all): nothing of the source
                # is in it that the crawl will not fetch again from the stored offset.
                logger.error("an event on %s is not a page and was skipped: %s", raw_topic, exc)
                continue
            try:
                await pipeline.apply(page)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The page stays unapplied; the crawl run waiting for it fails and says so, and
                # the next run fetches it again. The agent itself must live on.
                logger.exception("task_id=%s offset=%d page not applied", page.task_id, page.offset)

    return apply_pages


class Pipeline:
    """Each task's pages whose messages are sent and whose acknowledgements are awaited.

    Waiting for a page's acknowledgements before judging the next left the worker idle for
    the broker's round trip on every page. Now the agent judges and sends page N+1 while
    page N's acknowledgements are on their way; a task at most `depth` pages deep. Each page's
    progress is still written only after every message of that page (and of every page before
    it) is acknowledged, strictly in offset order: `settle` steps are chained per task, and a
    page whose predecessor failed fails too. Those writes happen outside the agent's iteration,
    which the `crawl_progress` table allows (see `KeyPartitionedTable` in jobstream.topics).
    """

    def __init__(
        self,
        config: Config,
        store: ProgressStore,
        worker: WorkerState,
        depth: int = 2,
        tracer: Tracer | None = None,
    ) -> None:
        self.config = config
        self.tracer = tracer
        self.store = store
        self.worker = worker
        self.depth = depth
        # Per task: the offset the task will stand at once its pages in flight are applied,
        # and the settle steps of those pages, oldest first.
        self._planned: dict[str, int] = {}
        self._steps: dict[str, deque[asyncio.Task[bool]]] = {}
        # Collect days by the strings that name them, for every page (see RowContext).
        self._collect_memo: dict[str, Any] = {}
        # The log's one line a run about rejected rows.
        self.reject_log = RejectLog(config.kafka.rejects_topic)

    def progress(self, task_id: str) -> Progress:
        """The task's progress as the next page must be planned against: what the store holds,
        moved past the pages in flight."""
        current = self.store.current(task_id)
        planned = self._planned.get(task_id)
        if planned is None:
            return current
        return msgspec.structs.replace(current, current_offset=planned)

    async def add(
        self, page: RawPage, before: int, out: PageMessages, deliveries: list[asyncio.Future[Any]]
    ) -> None:
        """Chain the page's settle step after its task's others; wait while the task has more
        than `depth` pages in flight."""
        task_id = page.task_id
        steps = self._steps.setdefault(task_id, deque())
        previous = steps[-1] if steps else None
        self._planned[task_id] = page.next_offset
        step = asyncio.create_task(self._settle(page, before, out, deliveries, previous))
        steps.append(step)
        while len(steps) > self.depth:
            await asyncio.shield(steps[0])

    async def _settle(
        self,
        page: RawPage,
        before: int,
        out: PageMessages,
        deliveries: list[asyncio.Future[Any]],
        previous: asyncio.Task[bool] | None,
    ) -> bool:
        task_id = page.task_id
        ok = False
        try:
            ok = await previous if previous is not None else True
            if ok:
                ok = await _acknowledged(page, deliveries)
            else:
                _discard(deliveries)
            if ok:
                ok = self._advance(page, before, out)
        except Exception:
            logger.exception("task_id=%s offset=%d page not applied", task_id, page.offset)
            ok = False
        finally:
            if not ok:
                # Pages planned after this one are refused as gaps until the crawl refetches.
                self._planned.pop(task_id, None)
            steps = self._steps.get(task_id)
            if steps and steps[0] is asyncio.current_task():
                steps.popleft()
            if not steps:
                self._steps.pop(task_id, None)
                self._planned.pop(task_id, None)
        return ok

    async def apply(self, page: RawPage) -> None:
        """Judge the page's rows, send what they became, and settle its progress behind."""
        task_id = page.task_id
        progress = self.progress(task_id)
        plan = rules.plan_page(progress, page)
        if plan.action == "skip":
            logger.info("task_id=%s offset=%d page skipped: %s", task_id, page.offset, plan.reason)
            return
        if plan.action == "gap":
            # Never applied silently: the crawl run that sent it fails, and the next one
            # refetches from current_offset.
            logger.error("task_id=%s offset=%d page refused: %s", task_id, page.offset, plan.reason)
            return
        config = self.config
        ctx = RowContext(
            task_id=task_id,
            now=datetime.fromisoformat(page.fetched_at).astimezone(config.tz),
            filter_days=config.crawler.filter_days,
            demo=page.demo,
            collect_memo=self._collect_memo,
        )
        tracing = self.tracer is not None and self.tracer.enabled
        out = page_messages(page, plan.first_row, ctx, config.kafka.max_message_bytes, tracing)
        deliveries = await self._publish(progress, out)
        if self.tracer is not None:  # what became of each row, acknowledged with the page
            deliveries += await self.tracer.page_applied(page, plan.first_row, ctx, out, progress)
        await self.add(page, progress.current_offset, out, deliveries)

    async def _publish(self, progress: Progress, out: PageMessages) -> list[asyncio.Future[Any]]:
        """Send the page's messages; the futures that resolve once the broker holds them.

        The messages are already bytes: they go to the broker in batches built here, one per
        partition (see `jobstream.broker.batches`). With dedupe on, the kept jobs go to
        job_candidates, joined into messages by the partition of their ids, and the dedupe
        agent forwards the first sightings to job_data; otherwise straight to job_data.
        """
        config = self.config
        kafka = self.worker.producer()
        outputs: list[tuple[str, list[Message]]] = [(rejects_topic().get_topic_name(), out.rejects)]
        if not config.dedupe.enabled:
            outputs.append((data_topic().get_topic_name(), out.jobs))
        elif out.jobs:
            name = candidates_topic.get_topic_name()
            count = len(await kafka.partitions_for(name))
            jobs = candidate_messages(
                progress,
                out.jobs,
                lambda keys: key_partitions(keys, count),
                config.kafka.max_message_bytes,
                out.job_offsets,
            )
            outputs.append((name, jobs))
        deliveries: list[asyncio.Future[Any]] = []
        for name, messages in outputs:
            if messages:
                deliveries.extend(await batches.send_keyed(kafka, name, messages))
        return deliveries

    def _advance(self, page: RawPage, before: int, out: PageMessages) -> bool:
        """Count the acknowledged page in the task's progress, unless the task moved meanwhile."""
        task_id = page.task_id
        # Read again: the commands agent may have changed the task (a stop, a report) meanwhile.
        latest = self.store.current(task_id)
        if latest.current_offset != before:
            logger.warning(
                "task_id=%s offset=%d page not counted: the task moved to offset %d meanwhile "
                "(a source reset); its messages were sent and carry their stable ids",
                task_id,
                page.offset,
                latest.current_offset,
            )
            return False
        counts = out.counts
        deduped = self.config.dedupe.enabled
        if deduped:
            # Its kept jobs are candidates: the dedupe agent reports which reached job_data.
            counts = replace(counts, published=0)
        after = rules.advance(
            latest, page, counts, datetime.now(self.config.tz).isoformat(timespec="seconds")
        )
        self.store.save(after)
        _observe(task_id, page, out, after, deduped)
        self.reject_log.count(
            task_id, page.offset, page.next_offset, page.total, out.reasons, page.demo
        )
        return True


async def _acknowledged(page: RawPage, deliveries: list[asyncio.Future[Any]]) -> bool:
    try:
        # Progress (and the mirror) may only claim what the broker holds.
        await asyncio.gather(*deliveries)
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception(
            "task_id=%s offset=%d page not applied: its messages were not acknowledged",
            page.task_id,
            page.offset,
        )
        return False
    return True


def _discard(deliveries: list[asyncio.Future[Any]]) -> None:
    """Retrieve what failed deliveries raised: the page before already failed and said so."""
    for delivery in deliveries:
        delivery.add_done_callback(lambda f: f.cancelled() or f.exception())


def _observe(
    task_id: str, page: RawPage, out: PageMessages, progress: Progress, deduped: bool
) -> None:
    counts = out.counts
    for outcome, n in (
        ("kept", counts.published),
        ("filtered", counts.filtered),
        ("rejected", counts.rejected),
    ):
        metrics.ROWS.labels(task_id, outcome).inc(n)
    if not deduped:
        metrics.ROWS.labels(task_id, "published").inc(counts.published)
    metrics.APPLIED_ROWS_RECENT.add(counts.published + counts.filtered + counts.rejected)
    metrics.PROGRESS.labels(task_id).set(
        progress.current_offset / progress.total if progress.total else 0.0
    )
    if out.rejects:
        # At DEBUG, one line a page (the INFO line is one a run: RejectLog); the reasons are in
        # job_rejects. A row the code failed on is an ERROR each page.
        level = logging.ERROR if out.internal_errors else logging.DEBUG
        logger.log(
            level,
            "task_id=%s offset=%d %d rows rejected (%s)%s; see %s",
            task_id,
            page.offset,
            counts.rejected,
            ", ".join(f"{field}: {n}" for field, n in out.reasons.most_common()),
            f", {out.internal_errors} by an internal error" if out.internal_errors else "",
            rejects_topic().get_topic_name(),
        )
        if logger.isEnabledFor(logging.DEBUG):
            for offset, reason in out.details:
                logger.debug("task_id=%s offset=%d row rejected: %s", task_id, offset, reason)
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "task_id=%s offset=%d applied %d rows: %d published, %d filtered, %d rejected",
            task_id,
            page.offset,
            counts.published + counts.filtered + counts.rejected,
            counts.published,
            counts.filtered,
            counts.rejected,
        )
