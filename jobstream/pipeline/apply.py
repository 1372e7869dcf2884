"""The page agent: applies each raw page once. Its jobs go to job_data, its unparseable rows to
job_rejects, and the task's progress advances only once the broker has acknowledged them."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from faust import StreamT

from jobstream import metrics
from jobstream.app import app
from jobstream.progress import state, store
from jobstream.records import RawPage
from jobstream.topics import data_topic, declare_outputs, raw_topic, rejects_topic
from jobstream.transform.rows import Filtered, Kept, RowContext, classify_row, reject_message

logger = logging.getLogger(__name__)


@app.agent(raw_topic)
async def apply_pages(pages: StreamT[RawPage]) -> None:
    await declare_outputs()
    async for page in pages:
        await apply_page(page)


async def apply_page(page: RawPage) -> None:
    task_id = page.task_id
    plan = state.plan_page(store.current(task_id), page)
    if plan.action == "skip":
        logger.info("task_id=%s offset=%d page skipped: %s", task_id, page.offset, plan.reason)
        return
    if plan.action == "gap":
        # Never applied silently: the next crawl run refetches from current_offset.
        logger.error("task_id=%s offset=%d page refused: %s", task_id, page.offset, plan.reason)
        progress = store.current(task_id)
        store.save(progress.derive(status=state.ERROR, last_error=f"gap: {plan.reason}"))
        return

    settings = app.settings
    fetched_at = datetime.fromisoformat(page.fetched_at).astimezone(settings.tz)
    ctx = RowContext(
        task_id=task_id, now=fetched_at, filter_days=settings.crawler.filter_days, demo=page.demo
    )
    jobs, rejects = data_topic(), rejects_topic()
    deliveries = []
    filtered = rejected = future_dated = 0
    for index in range(plan.first_row, len(page.rows)):
        offset = page.offset + index
        outcome = classify_row(page.rows[index], offset, ctx)
        if isinstance(outcome, Kept):
            job = outcome.job
            deliveries.append(await jobs.send(key=job["id"], value=job))
            future_dated += outcome.suspicious_future
        elif isinstance(outcome, Filtered):
            filtered += 1
        else:
            rejected += 1
            logger.warning("task_id=%s offset=%d row rejected: %s", task_id, offset, outcome.reason)
            reject = reject_message(page.rows[index], offset, outcome, ctx)
            deliveries.append(await rejects.send(key=f"{task_id}:{offset}", value=reject))
    # Progress (and the mirror) may only claim what the broker holds.
    await asyncio.gather(*deliveries)
    published = len(deliveries) - rejected
    progress = state.advance(
        store.current(task_id),
        page,
        published=published,
        filtered=filtered,
        rejected=rejected,
        future_dated=future_dated,
        at=datetime.now(settings.tz),
    )
    store.save(progress)
    _count(task_id, published=published, filtered=filtered, rejected=rejected)
    metrics.PROGRESS.labels(task_id).set(
        progress.current_offset / progress.total if progress.total else 0.0
    )
    logger.debug(
        "task_id=%s offset=%d applied %d rows: %d published, %d filtered, %d rejected",
        task_id,
        page.offset,
        len(page.rows) - plan.first_row,
        published,
        filtered,
        rejected,
    )


def _count(task_id: str, **outcomes: int) -> None:
    for outcome, n in outcomes.items():
        metrics.ROWS.labels(task_id, outcome).inc(n)
    metrics.APPLIED_ROWS_RECENT.add(sum(outcomes.values()))
