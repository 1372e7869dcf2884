"""The crawl loop: for every task this worker owns, follow the API cursor from the task's
`current_offset` and send the pages to job_raw. It never advances progress itself: the
`apply_pages` agent does, once a page's jobs are in job_data, and the crawl waits for the store
to say so. A run succeeds only when every page it sent has been applied; any other end is a
failed run, reported with its reason.

Pages go to job_raw through `RawSender`, which keeps them in the local spool while Kafka is
unreachable, so the crawl goes on fetching through an outage (`raw_sender.py`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from datetime import datetime
from functools import partial
from typing import Any

from jobstream import metrics
from jobstream.config import Config
from jobstream.errors import AuthError, SourceError
from jobstream.pipeline.fetching import Fetched, SourceReset, Unreadable, pages_from
from jobstream.pipeline.outbox import Outbox
from jobstream.pipeline.raw_sender import RawSender
from jobstream.pipeline.readahead import ReadAhead
from jobstream.pipeline.runs import RunFailed, TaskMoved
from jobstream.progress.commands import Commands
from jobstream.progress.store import ProgressStore
from jobstream.records import Progress
from jobstream.source import BazhuayuClient, Page
from jobstream.topics import declare_outputs, partition_for
from jobstream.worker_state import WorkerState

logger = logging.getLogger(__name__)

# Events sent but not yet applied before the loop waits: bounds what a crawl holds in flight
# (each at most kafka.max_message_bytes).
MAX_EVENTS_UNAPPLIED = 8


class Crawler:
    """This worker's crawl: the loop, its wake-up and what it has fetched."""

    def __init__(
        self,
        config: Config,
        store: ProgressStore,
        sender: RawSender,
        commands: Commands,
        worker: WorkerState,
    ) -> None:
        self.config = config
        self.store = store
        self.sender = sender
        self.commands = commands
        self.worker = worker
        self._wakeup = asyncio.Event()
        # Rows fetched by this worker since it started, per task (the table counts applied).
        self.fetched: dict[str, int] = {}

    def run_now(self) -> None:
        """Start a run of every idle task at once (a start command, a new assignment)."""
        self._wakeup.set()

    async def run_forever(self) -> None:
        """Each task's first run at worker start, then one every `interval` seconds (the task's
        own in `api.tasks`, else `crawler.interval`) after its last ended, or at once on a start
        command. The tasks this worker owns are crawled together, each with its own pages in
        flight, all under the account's one rate limiter (`api.max_requests_per_second`); a
        task with `enabled: false` is not crawled."""
        config = self.config
        endpoint = self.worker.api_endpoint()
        await declare_outputs()
        running: dict[str, asyncio.Task[None]] = {}
        due: dict[str, float] = {}  # when each task's next run starts (absent: now)
        async with BazhuayuClient(
            endpoint.base_url,
            endpoint.username,
            endpoint.password,
            request_timeout=config.api.request_timeout,
            max_retries=config.api.max_retries,
            min_interval=config.api.min_interval,
            max_requests_per_second=config.api.max_requests_per_second,
            on_request=metrics.observe_request,
        ) as client:
            try:
                while not self.worker.stopping:
                    if self._wakeup.is_set():
                        self._wakeup.clear()
                        due.clear()  # a start command: every idle task runs now
                    self._start_due(client, endpoint.demo, running, due)
                    await self._until_something_ends(running, due)
                    self._collect(running, due)
            finally:
                for run in running.values():
                    run.cancel()
                await asyncio.gather(*running.values(), return_exceptions=True)

    def _start_due(
        self,
        client: BazhuayuClient,
        demo: bool,
        running: dict[str, asyncio.Task[None]],
        due: dict[str, float],
    ) -> None:
        now = time.monotonic()
        for task_id in self.worker.owned_tasks():
            task = self.config.task(task_id)
            if task.enabled and task_id not in running and due.get(task_id, 0) <= now:
                running[task_id] = asyncio.create_task(
                    self.run_once(client, task_id, demo, task.batch_size)
                )

    async def _until_something_ends(
        self, running: dict[str, asyncio.Task[None]], due: dict[str, float]
    ) -> None:
        """Wait for a run to end, the next run to be due, or a wake-up."""
        now = time.monotonic()
        later = [t - now for t in due.values() if t > now]
        # Owning nothing yet (the worker is joining its group): look again soon.
        idle = self.config.crawler.interval if self.worker.owned_tasks() else 1.0
        woken = asyncio.ensure_future(self._wakeup.wait())
        try:
            await asyncio.wait(
                [*running.values(), woken],
                timeout=min(later, default=idle),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            woken.cancel()

    def _collect(self, running: dict[str, asyncio.Task[None]], due: dict[str, float]) -> None:
        for task_id, run in list(running.items()):
            if not run.done():
                continue
            del running[task_id]
            due[task_id] = time.monotonic() + self.config.task(task_id).interval
            if not run.cancelled() and run.exception() is not None:
                # run_once reports every failure itself; this is a defect.
                logger.error("task_id=%s crawl run crashed", task_id, exc_info=run.exception())

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
        logger.info("task_id=%s offset=%d crawl run starts", task_id, progress.current_offset)
        try:
            await self.commands.send(task_id, "report", run="running")
            total = await self._crawl(client, progress, demo, batch_size)
        except asyncio.CancelledError:
            raise
        except TaskMoved:
            logger.info("task_id=%s crawl run ends: the task may go to another worker", task_id)
            return
        except Exception as exc:
            if self.worker.stopping:
                return  # the worker is shutting down under the run (its producer is gone)
            await self._report_failure(task_id, exc)
            return
        if total is not None:
            await self.commands.send(task_id, "report", run="succeeded", total=total)

    async def _crawl(
        self, client: BazhuayuClient, progress: Progress, demo: bool, batch_size: int
    ) -> int | None:
        """Fetch from `progress.current_offset` to the end; the source total, or None when the
        run was stopped. Raises RunFailed (or what the source raised) when it cannot finish.

        Pages are requested ahead (`api.max_pages_in_flight`) and sent to job_raw in offset
        order, consecutive ones joined into events (`Outbox`)."""
        config = self.config
        task_id = progress.task_id
        reader = ReadAhead(partial(client.fetch_page, task_id), config.api.max_pages_in_flight)
        outbox = Outbox(
            task_id,
            partition_for(task_id, config.kafka.partitions),
            source=progress.source,
            demo=demo,
            max_message_bytes=config.kafka.max_message_bytes,
        )
        start = await self.sender.resume_at(outbox, progress.current_offset)
        pages = pages_from(reader, task_id, start, batch_size, self._now)
        try:
            while True:
                if self.worker.stopping:
                    return None
                if not self.worker.owns(task_id):
                    raise TaskMoved
                if self.store.current(task_id).status == "stopped":
                    await self.sender.send(outbox)
                    logger.info(
                        "task_id=%s offset=%d stopped at a page boundary", task_id, reader.offset
                    )
                    return None
                try:
                    fetched = await anext(pages)
                except Exception:
                    # What was fetched before the failure is good: it goes to job_raw.
                    await self.sender.send(outbox)
                    raise
                finally:
                    self._count_misses(task_id, reader)
                if isinstance(fetched, SourceReset):
                    await self._restart_after_reset(task_id, fetched.page)
                    continue
                if isinstance(fetched, Fetched):
                    await self._report_anomalies(task_id, fetched.page)
                    rows = outbox.add_page(fetched.page, fetched.fetched_at)
                else:
                    rows = self._keep_unreadable(outbox, progress, fetched)
                self.fetched[task_id] = self.fetched.get(task_id, 0) + rows
                metrics.ROWS.labels(task_id, "fetched").inc(rows)
                # Pages that have arrived are joined into fewer, larger events; what is taken is
                # sent as soon as the next page is not there yet.
                if fetched.is_last or not reader.ready() or outbox.full():
                    await self.sender.send(outbox)
                if isinstance(fetched, Fetched) and fetched.is_last:
                    await self.sender.flush(outbox)
                    await self._until_applied(task_id, fetched.page.next_offset)
                    return fetched.page.total
                while len(outbox.unapplied) > MAX_EVENTS_UNAPPLIED:
                    # While Kafka is unreachable nothing is applied: fetching goes on into the
                    # spool instead of waiting.
                    until_down = self.sender.spool is not None
                    if not await self._until_applied(
                        task_id, outbox.unapplied.popleft(), until_down
                    ):
                        break
        finally:
            await pages.aclose()
            reader.cancel()
            self._count_misses(task_id, reader)

    def _now(self) -> str:
        return datetime.now(self.config.tz).isoformat()

    def _keep_unreadable(self, outbox: Outbox, progress: Progress, row: Unreadable) -> int:
        total = max(progress.total, self.sender.sent_until.get(progress.task_id, 0))
        return outbox.add_unreadable(
            row.offset, total, why=row.why, excerpt_text=row.excerpt, fetched_at=row.fetched_at
        )

    def _count_misses(self, task_id: str, reader: ReadAhead) -> None:
        if reader.misses:
            metrics.FETCH_AHEAD_MISSES.labels(task_id).inc(reader.misses)
            reader.misses = 0
        if reader.dropped:
            metrics.FETCH_AHEAD_DROPPED.labels(task_id).inc(reader.dropped)
            reader.dropped = 0

    async def _until_applied(self, task_id: str, offset: int, until_down: bool = False) -> bool:
        """Wait until the store says the task's pages are applied up to `offset`; RunFailed
        if they are not within `crawler.apply_timeout`, TaskMoved if the task goes to another
        worker. With `until_down`, False as soon as Kafka is known to be unreachable."""
        timeout = self.config.crawler.apply_timeout
        deadline = time.monotonic() + timeout
        while (current := self.store.current(task_id)).current_offset < offset:
            if not self.worker.owns(task_id):
                raise TaskMoved
            if until_down and self.sender.broker_down():
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                raise RunFailed(
                    f"pages up to offset {offset} were sent but not applied within "
                    f"{timeout:.0f}s (applied up to {current.current_offset}); see the worker "
                    "log for why"
                )
            waits: list[Coroutine[Any, Any, Any]] = [
                self.store.changed(task_id).wait(),
                self.worker.reassigned.wait(),
            ]
            if until_down:
                waits.append(self.sender.probe.went_down())
            await _first_of(waits, left)
        return True

    async def _caught_up(self, task_id: str) -> Progress:
        """The task's progress once the pages this worker sent before have been applied (or
        after `crawler.apply_timeout`: then the run refetches from where the progress
        stands)."""
        try:
            await self._until_applied(task_id, self.sender.sent_until.get(task_id, 0))
        except RunFailed as exc:
            logger.warning("task_id=%s %s; refetching from the stored offset", task_id, exc)
        return self.store.current(task_id)

    async def _report_anomalies(self, task_id: str, page: Page) -> None:
        """One warning, one count and one command for a page whose cursor was odd."""
        if not page.anomalies:
            return
        note = "; ".join(page.anomalies)
        logger.warning("task_id=%s offset=%d %s", task_id, page.offset, note)
        metrics.CURSOR_ANOMALIES.labels(task_id).inc()
        await self.commands.send(task_id, "anomaly", offset=page.offset, error=note)

    async def _restart_after_reset(self, task_id: str, page: Page) -> None:
        """The source holds fewer rows than were applied: its data was cleared and collected
        again. Start over from 0; ids are deterministic, so rows seen before keep theirs."""
        note = (
            f"source reset: the API's total is {page.total}, below the {page.offset} rows "
            "applied; crawling again from offset 0"
        )
        logger.warning("task_id=%s offset=%d %s", task_id, page.offset, note)
        metrics.SOURCE_RESETS.labels(task_id).inc()
        source = self.store.current(task_id).source
        await self.commands.send(task_id, "reset", total=page.total, error=note, source=source)
        self.sender.sent_until[task_id] = 0
        timeout = self.config.crawler.apply_timeout
        deadline = time.monotonic() + timeout
        while self.store.current(task_id).current_offset != 0:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RunFailed("the source reset was not applied in time")
            await _first_of([self.store.changed(task_id).wait()], left)

    async def _report_failure(self, task_id: str, exc: Exception) -> None:
        offset = self.store.current(task_id).current_offset
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
            await self.commands.send(task_id, "report", run="failed", offset=offset, error=error)
        except Exception as report_exc:  # Kafka is down: the log line above is what remains
            logger.error("task_id=%s the failure could not be reported: %r", task_id, report_exc)


async def _first_of(waits: list[Coroutine[Any, Any, Any]], within: float) -> None:
    """Wait until the first of `waits` is done, at most `within` seconds."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
