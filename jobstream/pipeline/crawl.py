"""The crawl loop: for every task this worker owns, follow the API cursor from the task's
`current_offset` and send the pages to job_raw. It never advances progress itself: the
`apply_pages` agent does, once a page's jobs are in job_data. A run succeeds only when every
page it sent has been applied; any other end is a failed run, reported with its reason.

Pages go to job_raw through `RawSender`, which keeps them in the local spool while Kafka is
unreachable, so the crawl goes on fetching through an outage (`raw_sender.py`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from faust.types import TP

from jobstream import metrics
from jobstream.app import app
from jobstream.errors import AuthError, SourceError
from jobstream.pipeline.commands import send_command
from jobstream.pipeline.outbox import Outbox
from jobstream.pipeline.pages import slice_page, unreadable_row
from jobstream.pipeline.raw_sender import RawSender
from jobstream.pipeline.readahead import ReadAhead
from jobstream.pipeline.runs import RunFailed, TaskMoved
from jobstream.records import Progress
from jobstream.source import BazhuayuClient, Page, UnreadableAnswer
from jobstream.topics import declare_outputs, partition_for, raw_topic

if TYPE_CHECKING:
    from jobstream.app import JobstreamApp

logger = logging.getLogger(__name__)

# Events sent but not yet applied before the loop waits: bounds what a crawl holds in flight
# (each at most kafka.max_message_bytes).
MAX_EVENTS_UNAPPLIED = 8


class Crawler:
    """This worker's crawl: the loop, its wake-up event and what it has fetched."""

    def __init__(self, app: JobstreamApp) -> None:
        self.app = app
        self.wakeup = asyncio.Event()
        # Rows fetched by this worker since it started, per task (the table counts applied).
        self.fetched: dict[str, int] = {}
        # Pulsed by the page agent on this worker whenever it advances a task.
        self._progressed = asyncio.Event()
        # Sends to job_raw, or to the local spool while Kafka is unreachable.
        self.sender = RawSender(app, lambda task_id: task_id in self.owned_tasks())

    def owned_tasks(self) -> list[str]:
        """The tasks whose job_raw partition is assigned to this worker; none during a
        rebalance, which may hand any of them to another worker."""
        if self.app.rebalancing:
            return []
        settings = self.app.settings
        assigned = self.app.assignor.assigned_actives()
        return [
            task_id
            for task_id in settings.api.task_ids
            if TP(raw_topic.get_topic_name(), partition_for(task_id, settings.kafka.partitions))
            in assigned
        ]

    async def run_forever(self) -> None:
        """Each task's first run at worker start, then one every `interval` seconds (the task's
        own in `api.tasks`, else `crawler.interval`) after its last ended, or at once on a start
        command. The tasks this worker owns are crawled together, each with its own pages in
        flight, all under the account's one rate limiter (`api.max_requests_per_second`); a
        task with `enabled: false` is not crawled."""
        settings = self.app.settings
        endpoint = self.app.embedded.api_endpoint()
        await declare_outputs()
        running: dict[str, asyncio.Task[None]] = {}
        due: dict[str, float] = {}  # when each task's next run starts (absent: now)
        async with BazhuayuClient(
            endpoint.base_url,
            endpoint.username,
            endpoint.password,
            request_timeout=settings.api.request_timeout,
            max_retries=settings.api.max_retries,
            min_interval=settings.api.min_interval,
            max_requests_per_second=settings.api.max_requests_per_second,
            on_request=metrics.observe_request,
        ) as client:
            try:
                while not self.app.should_stop:
                    if self.wakeup.is_set():
                        self.wakeup.clear()
                        due.clear()  # a start command: every idle task runs now
                    now = time.monotonic()
                    owned = self.owned_tasks()
                    for task_id in owned:
                        task = settings.task(task_id)
                        if task.enabled and task_id not in running and due.get(task_id, 0) <= now:
                            running[task_id] = asyncio.create_task(
                                self.run_once(client, task_id, endpoint.demo, task.batch_size)
                            )
                    waiting = [*running.values(), asyncio.ensure_future(self.wakeup.wait())]
                    later = [t - now for t in due.values() if t > now]
                    # Owning nothing yet (the worker is joining its group): look again soon.
                    idle = settings.crawler.interval if owned else 1.0
                    done, _ = await asyncio.wait(
                        waiting,
                        timeout=min(later, default=idle),
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    waiting[-1].cancel()
                    for task_id, run in list(running.items()):
                        if run in done:
                            del running[task_id]
                            due[task_id] = time.monotonic() + settings.task(task_id).interval
                            if not run.cancelled() and run.exception() is not None:
                                # run_once reports every failure itself; this is a defect.
                                logger.error(
                                    "task_id=%s crawl run crashed",
                                    task_id,
                                    exc_info=run.exception(),
                                )
            finally:
                for run in running.values():
                    run.cancel()
                await asyncio.gather(*running.values(), return_exceptions=True)

    async def run_once(
        self, client: BazhuayuClient, task_id: str, demo: bool, batch_size: int
    ) -> None:
        """One run of one task; whatever happens is reported, never raised (but cancellation)."""
        try:
            progress = await self._caught_up(task_id)
        except TaskMoved:
            return
        if progress.status == "stopped":
            return
        offset = progress.current_offset
        logger.info("task_id=%s offset=%d crawl run starts", task_id, offset)
        try:
            await send_command(task_id, "report", run="running")
            total = await self._crawl(client, progress, demo, batch_size)
        except asyncio.CancelledError:
            raise
        except TaskMoved:
            logger.info("task_id=%s crawl run ends: the task may go to another worker", task_id)
            return
        except Exception as exc:
            if self.app.should_stop:
                return  # the worker is shutting down under the run (its producer is gone)
            await self._report_failure(task_id, exc)
            return
        if total is not None:
            await send_command(task_id, "report", run="succeeded", total=total)

    async def _crawl(
        self, client: BazhuayuClient, progress: Progress, demo: bool, batch_size: int
    ) -> int | None:
        """Fetch from `progress.current_offset` to the end; the source total, or None when the
        run was stopped. Raises RunFailed (or what the source raised) when it cannot finish.

        Pages are requested ahead (`api.max_pages_in_flight`) and sent to job_raw in offset
        order, consecutive ones joined into events of up to `kafka.max_message_bytes`."""
        settings = self.app.settings
        task_id, source = progress.task_id, progress.source
        reader = ReadAhead(partial(client.fetch_page, task_id), settings.api.max_pages_in_flight)
        outbox = Outbox(task_id, partition_for(task_id, settings.kafka.partitions))
        reader.start(await self.sender.resume_at(outbox, progress.current_offset), batch_size)
        first = True
        try:
            while True:
                if self.app.should_stop:
                    return None
                offset, size = reader.offset, reader.size
                if task_id not in self.owned_tasks():
                    raise TaskMoved
                if self.app.progress_store.current(task_id).status == "stopped":
                    await self.sender.send(outbox)
                    logger.info("task_id=%s offset=%d stopped at a page boundary", task_id, offset)
                    return None
                fetched_at = datetime.now(settings.tz).isoformat()
                try:
                    page = await reader.take()
                except UnreadableAnswer as exc:
                    if size > 1:
                        # The answer's content cannot be parsed: narrow down to the row that
                        # holds it, one request at a time.
                        size = max(1, size // 2)
                        logger.warning(
                            "task_id=%s offset=%d %s; asking for %d rows to find the row",
                            task_id, offset, exc, size,
                        )  # fmt: skip
                        reader.start(offset, size, ahead=False)
                        continue
                    events = [
                        unreadable_row(
                            task_id, offset, self._last_total(progress),
                            why=f"the API's answer for this row cannot be parsed: {exc}",
                            excerpt_text=exc.excerpt, source=source, fetched_at=fetched_at,
                            demo=demo,
                        )
                    ]  # fmt: skip
                    next_offset, is_last = offset + 1, False
                    reader.start(next_offset, batch_size)
                except Exception:
                    # What was fetched before the failure is good: it goes to job_raw.
                    await self.sender.send(outbox)
                    raise
                else:
                    if first and page.offset > 0 and page.total < page.offset and not page.rows:
                        await self._restart_after_reset(task_id, source, page)
                        reader.start(0, batch_size)
                        first = False
                        continue
                    await self._report_anomalies(task_id, page)
                    events = slice_page(
                        page,
                        source=source,
                        fetched_at=fetched_at,
                        demo=demo,
                        max_event_bytes=settings.kafka.max_message_bytes,
                    )
                    next_offset, is_last = page.next_offset, page.is_last
                    if size != batch_size and not is_last:
                        reader.start(next_offset, batch_size)  # the row was narrowed down
                self._count_misses(task_id, reader)
                first = False
                rows = outbox.add(events)
                self.fetched[task_id] = self.fetched.get(task_id, 0) + rows
                metrics.ROWS.labels(task_id, "fetched").inc(rows)
                # Pages that have arrived are joined into fewer, larger events; what is taken
                # is sent as soon as the next page is not there yet.
                if is_last or not reader.ready() or outbox.full(settings.kafka.max_message_bytes):
                    await self.sender.send(outbox)
                if is_last:
                    await self.sender.flush(outbox)
                    await self._applied(task_id, next_offset)
                    return events[-1].total
                while len(outbox.unapplied) > MAX_EVENTS_UNAPPLIED:
                    # While Kafka is unreachable nothing is applied: fetching goes on into the
                    # spool instead of waiting.
                    until_down = self.sender.spool is not None
                    if not await self._applied(task_id, outbox.unapplied.popleft(), until_down):
                        break
        finally:
            reader.cancel()
            self._count_misses(task_id, reader)

    def _count_misses(self, task_id: str, reader: ReadAhead) -> None:
        if reader.misses:
            metrics.FETCH_AHEAD_MISSES.labels(task_id).inc(reader.misses)
            reader.misses = 0
        if reader.dropped:
            metrics.FETCH_AHEAD_DROPPED.labels(task_id).inc(reader.dropped)
            reader.dropped = 0

    def _last_total(self, progress: Progress) -> int:
        return max(progress.total, self.sender.sent_until.get(progress.task_id, 0))

    async def _applied(self, task_id: str, offset: int, until_down: bool = False) -> bool:
        """Wait until the task's pages are applied up to `offset`; RunFailed if they are not.
        With `until_down`, False as soon as Kafka is known to be unreachable."""
        deadline = time.monotonic() + self.app.settings.crawler.apply_timeout
        store = self.app.progress_store
        # Polling: the agent that advances the offset may run on this worker or, after a
        # rebalance, on another one.
        while (current := store.current(task_id)).current_offset < offset:
            if task_id not in self.owned_tasks():
                raise TaskMoved
            if until_down and self.sender.broker_down():
                return False
            if time.monotonic() > deadline:
                raise RunFailed(
                    f"pages up to offset {offset} were sent but not applied within "
                    f"{self.app.settings.crawler.apply_timeout:.0f}s (applied up to "
                    f"{current.current_offset}); see the worker log for why"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progressed.wait(), timeout=0.05)
        return True

    def progressed(self) -> None:
        """Called by the page agent after it advanced a task: wakes the runs waiting for it."""
        self._progressed.set()
        self._progressed.clear()

    async def _caught_up(self, task_id: str) -> Progress:
        """The task's progress once the pages this worker sent before have been applied (or
        after `crawler.apply_timeout`: then the run refetches from where the progress stands)."""
        try:
            await self._applied(task_id, self.sender.sent_until.get(task_id, 0))
        except RunFailed as exc:
            logger.warning("task_id=%s %s; refetching from the stored offset", task_id, exc)
        return self.app.progress_store.current(task_id)

    async def _report_anomalies(self, task_id: str, page: Page) -> None:
        """One warning, one count and one command for a page whose cursor was odd."""
        if not page.anomalies:
            return
        note = "; ".join(page.anomalies)
        logger.warning("task_id=%s offset=%d %s", task_id, page.offset, note)
        metrics.CURSOR_ANOMALIES.labels(task_id).inc()
        await send_command(task_id, "anomaly", offset=page.offset, error=note)

    async def _restart_after_reset(self, task_id: str, source: str, page: Page) -> None:
        """The source holds fewer rows than were applied: its data was cleared and collected
        again. Start over from 0; ids are deterministic, so rows seen before keep theirs."""
        note = (
            f"source reset: the API's total is {page.total}, below the {page.offset} rows "
            "applied; crawling again from offset 0"
        )
        logger.warning("task_id=%s offset=%d %s", task_id, page.offset, note)
        metrics.SOURCE_RESETS.labels(task_id).inc()
        await send_command(task_id, "reset", total=page.total, error=note, source=source)
        self.sender.sent_until[task_id] = 0
        deadline = time.monotonic() + self.app.settings.crawler.apply_timeout
        while self.app.progress_store.current(task_id).current_offset != 0:
            if time.monotonic() > deadline:
                raise RunFailed("the source reset was not applied in time")
            await asyncio.sleep(0.05)

    async def _report_failure(self, task_id: str, exc: Exception) -> None:
        offset = self.app.progress_store.current(task_id).current_offset
        if isinstance(exc, AuthError):
            error = f"authentication: {exc}"
        elif isinstance(exc, RunFailed | SourceError):
            error = str(exc)
        else:
            error = f"{type(exc).__name__}: {exc}"
        # One line per failed run, at ERROR; the traceback only for what is not ours.
        logger.error(
            "task_id=%s offset=%d crawl run failed: %s",
            task_id,
            offset,
            error,
            exc_info=not isinstance(exc, RunFailed | SourceError),
        )
        metrics.RUN_FAILURES.labels(task_id).inc()
        try:
            await send_command(task_id, "report", run="failed", offset=offset, error=error)
        except Exception as report_exc:  # Kafka is down: the log line above is what remains
            logger.error("task_id=%s the failure could not be reported: %r", task_id, report_exc)


@app.task
async def crawl_forever() -> None:
    await app.crawler.run_forever()
