"""The crawl loop: for every task this worker owns, follow the API cursor from the task's
`current_offset` and send the pages to job_raw. It never advances progress itself: the
`apply_pages` agent does, once the page's jobs are in job_data."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime

from faust.types import TP

from jobstream import metrics
from jobstream.app import app
from jobstream.errors import AuthError, SourceError
from jobstream.pipeline.commands import send_command, wakeup
from jobstream.progress import state, store
from jobstream.records import RawPage
from jobstream.source import BazhuayuClient, Page
from jobstream.topics import RAW_TOPIC, declare_outputs, partition_for, raw_topic

logger = logging.getLogger(__name__)

# A raw event stays under the embedded broker's ~1 MB message limit (and Kafka's default).
MAX_EVENT_BYTES = 900_000
# How long a new run waits for the previous run's pages to be applied before refetching.
CATCH_UP_TIMEOUT = 60.0

# Rows fetched by this worker since it started, per task (the table counts applied rows).
fetched: dict[str, int] = {}
# Where this worker's last run stopped sending, per task.
_sent_until: dict[str, int] = {}


def owned_tasks() -> list[str]:
    """The tasks whose job_raw partition is assigned to this worker."""
    partitions = app.settings.kafka.partitions
    assigned = app.assignor.assigned_actives()
    return [
        task_id
        for task_id in app.settings.api.task_ids
        if TP(RAW_TOPIC, partition_for(task_id, partitions)) in assigned
    ]


def split_page(page: Page, fetched_at: datetime, demo: bool) -> Iterator[RawPage]:
    """One API page as raw events of at most MAX_EVENT_BYTES, each a contiguous slice."""
    start, size = 0, 0
    for i, row in enumerate(page.rows):
        row_bytes = len(json.dumps(row, ensure_ascii=False).encode())
        if i > start and size + row_bytes > MAX_EVENT_BYTES:
            yield _slice(page, start, i, fetched_at, demo)
            start, size = i, 0
        size += row_bytes
    yield _slice(page, start, len(page.rows), fetched_at, demo)


def _slice(page: Page, start: int, end: int, fetched_at: datetime, demo: bool) -> RawPage:
    last = end == len(page.rows)
    return RawPage(
        task_id=page.task_id,
        offset=page.offset + start,
        next_offset=page.next_offset if last else page.offset + end,
        total=page.total,
        rows=page.rows[start:end],
        fetched_at=fetched_at.isoformat(),
        demo=demo,
    )


async def _wait_for_catch_up(task_id: str) -> None:
    target = _sent_until.get(task_id, 0)
    deadline = time.monotonic() + CATCH_UP_TIMEOUT
    # Polling: the agent that advances the offset may run on this worker or, after a
    # rebalance, on another one.
    while store.current(task_id).current_offset < target and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.2)


async def crawl_task(client: BazhuayuClient, task_id: str, demo: bool) -> None:
    """One run: from current_offset until restTotal is 0, or until the task is stopped."""
    await _wait_for_catch_up(task_id)
    progress = store.current(task_id)
    if progress.status == state.STOPPED:
        return
    settings = app.settings
    partition = partition_for(task_id, settings.kafka.partitions)
    offset = start = progress.current_offset
    logger.info("task_id=%s offset=%d crawl run starts", task_id, offset)
    await send_command(task_id, "report", status=state.RUNNING)
    try:
        while True:
            if app.should_stop:
                return
            if store.current(task_id).status == state.STOPPED:
                logger.info("task_id=%s offset=%d stopped at a page boundary", task_id, offset)
                return
            page = await client.fetch_page(task_id, offset, settings.api.batch_size)
            fetched_at = datetime.now(settings.tz)
            for raw in split_page(page, fetched_at, demo):
                await raw_topic.send(key=task_id, value=raw, partition=partition)
            fetched[task_id] = fetched.get(task_id, 0) + len(page.rows)
            metrics.ROWS.labels(task_id, "fetched").inc(len(page.rows))
            offset = _sent_until[task_id] = page.next_offset
            if page.is_last:
                break
    except AuthError as exc:
        logger.error(
            "task_id=%s offset=%d the API refused the credentials: %s", task_id, offset, exc
        )
        await send_command(task_id, "report", status=state.ERROR, error=f"authentication: {exc}")
        return
    except SourceError as exc:
        logger.error("task_id=%s offset=%d crawl run failed: %s", task_id, offset, exc)
        await send_command(task_id, "report", status=state.ERROR, error=str(exc))
        return
    logger.info(
        "task_id=%s offset=%d crawl run done: %d rows fetched, source total %d",
        task_id,
        offset,
        offset - start,
        page.total,
    )
    await send_command(task_id, "report", status=state.IDLE, total=page.total)


@app.task
async def crawl_forever() -> None:
    """First run at worker start, then every `crawler.interval` seconds or on a start command."""
    settings = app.settings
    endpoint = app.embedded.api_endpoint()
    await declare_outputs()
    async with BazhuayuClient(
        endpoint.base_url,
        endpoint.username,
        endpoint.password,
        request_timeout=settings.api.request_timeout,
        max_retries=settings.api.max_retries,
        min_interval=settings.api.min_interval,
        on_request=metrics.observe_request,
    ) as client:
        while not app.should_stop:
            wakeup.clear()
            for task_id in owned_tasks():
                try:
                    await crawl_task(client, task_id, endpoint.demo)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    if app.should_stop:
                        # The worker is shutting down under us (its producer is gone).
                        return
                    # Kafka unreachable, or a bug: nothing was advanced, so the next run
                    # refetches from the stored offset. Keep the loop alive.
                    logger.exception("task_id=%s crawl run aborted", task_id)
            try:
                await asyncio.wait_for(wakeup.wait(), timeout=settings.crawler.interval)
            except TimeoutError:
                pass
