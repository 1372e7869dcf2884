"""The page agent: applies each raw page once. Its jobs go to job_data, its unusable rows to
job_rejects, and the task's progress advances only once the broker has acknowledged them."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import msgspec
from faust import StreamT

from jobstream import metrics
from jobstream.app import app
from jobstream.pipeline.messages import PageMessages, page_messages
from jobstream.progress import rules
from jobstream.records import Progress, RawPage
from jobstream.topics import data_topic, declare_outputs, raw_topic, rejects_topic
from jobstream.transform.outcome import RowContext

logger = logging.getLogger(__name__)

_DECODER = msgspec.json.Decoder(RawPage)


@app.agent(raw_topic)
async def apply_pages(events: StreamT[bytes]) -> None:
    await declare_outputs()
    async for value in events:
        try:
            page = _DECODER.decode(value)
        except msgspec.DecodeError as exc:
            # Not a page this version wrote (or not a page at all): nothing of the source is in
            # it that the crawl will not fetch again from the stored offset.
            logger.error("an event on %s is not a page and was skipped: %s", raw_topic, exc)
            continue
        try:
            await apply_page(page)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The page stays unapplied; the crawl run waiting for it fails and says so, and the
            # next run fetches it again. The agent itself must live on.
            logger.exception("task_id=%s offset=%d page not applied", page.task_id, page.offset)


async def apply_page(page: RawPage) -> None:
    store = app.progress_store
    task_id = page.task_id
    progress = store.current(task_id)
    plan = rules.plan_page(progress, page)
    if plan.action == "skip":
        logger.info("task_id=%s offset=%d page skipped: %s", task_id, page.offset, plan.reason)
        return
    if plan.action == "gap":
        # Never applied silently: the crawl run that sent it fails, and the next one refetches
        # from current_offset.
        logger.error("task_id=%s offset=%d page refused: %s", task_id, page.offset, plan.reason)
        return
    settings = app.settings
    ctx = RowContext(
        task_id=task_id,
        now=datetime.fromisoformat(page.fetched_at).astimezone(settings.tz),
        filter_days=settings.crawler.filter_days,
        demo=page.demo,
    )
    out = page_messages(page, plan.first_row, ctx, settings.kafka.max_message_bytes)
    await _publish(out)
    # Read again: the commands agent may have changed the task (a stop, a report) meanwhile.
    latest = store.current(task_id)
    if latest.current_offset != progress.current_offset:
        logger.warning(
            "task_id=%s offset=%d page not counted: the task moved to offset %d meanwhile "
            "(a source reset); its messages were sent and carry their stable ids",
            task_id,
            page.offset,
            latest.current_offset,
        )
        return
    after = rules.advance(
        latest, page, out.counts, datetime.now(settings.tz).isoformat(timespec="seconds")
    )
    store.save(after)
    _observe(task_id, page, out, after)


async def _publish(out: PageMessages) -> None:
    """Send the page's messages and wait until the broker holds every one of them."""
    producer = app.producer
    deliveries = []
    for topic, messages in ((data_topic(), out.jobs), (rejects_topic(), out.rejects)):
        name = topic.get_topic_name()
        for key, value in messages:
            deliveries.append(await producer.send(name, key, value, None, None, None))
    # Progress (and the mirror) may only claim what the broker holds.
    await asyncio.gather(*deliveries)


def _observe(task_id: str, page: RawPage, out: PageMessages, progress: Progress) -> None:
    counts = out.counts
    for outcome, n in (
        ("published", counts.published),
        ("filtered", counts.filtered),
        ("rejected", counts.rejected),
    ):
        metrics.ROWS.labels(task_id, outcome).inc(n)
    metrics.APPLIED_ROWS_RECENT.add(counts.published + counts.filtered + counts.rejected)
    metrics.PROGRESS.labels(task_id).set(
        progress.current_offset / progress.total if progress.total else 0.0
    )
    if out.rejects:
        # One line a page, not one a row: the reasons are in job_rejects.
        level = logging.ERROR if out.internal_errors else logging.WARNING
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
    logger.debug(
        "task_id=%s offset=%d applied %d rows: %d published, %d filtered, %d rejected",
        task_id,
        page.offset,
        counts.published + counts.filtered + counts.rejected,
        counts.published,
        counts.filtered,
        counts.rejected,
    )
