"""The crawl loop: for every task this worker owns, follow the API cursor from the task's
`current_offset` and send the pages to job_raw. It never advances progress itself: the
`apply_pages` agent does, once a page's jobs are in job_data. A run succeeds only when every
page it sent has been applied; any other end is a failed run, reported with its reason.

While Kafka is unreachable (the HTTP views' probe says so, or a send finds no room in the
producer's buffer for SEND_TIMEOUT), the events go to the local spool (`spool.py`) instead and
the crawl keeps fetching; a full spool pauses it. Once Kafka answers again, the task's spooled
events are sent first, in offset order, each forgotten once acknowledged; only then do new
events of the task go to job_raw."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import msgspec
from faust.types import TP

from jobstream import metrics
from jobstream.app import app
from jobstream.errors import AuthError, SourceError
from jobstream.pipeline.commands import send_command
from jobstream.pipeline.outbox import Outbox
from jobstream.pipeline.pages import slice_page, unreadable_row
from jobstream.pipeline.readahead import ReadAhead
from jobstream.pipeline.spool import Spool
from jobstream.records import Progress
from jobstream.source import BazhuayuClient, Page, UnreadableAnswer
from jobstream.topics import declare_outputs, partition_for, raw_topic

if TYPE_CHECKING:
    from jobstream.app import JobstreamApp

logger = logging.getLogger(__name__)

# How long a run waits for the pages it sent to be applied before it counts as failed.
APPLY_TIMEOUT = 60.0
# Events sent but not yet applied before the loop waits: bounds what a crawl holds in flight
# (each at most kafka.max_message_bytes).
MAX_EVENTS_UNAPPLIED = 8

# Longest a send to job_raw waits for room in the producer's buffer: longer means Kafka is
# unreachable though the probe has not noticed yet, and the event goes to the spool.
SEND_TIMEOUT = 5.0
# Longest a spooled event's acknowledgement is awaited while draining.
ACK_TIMEOUT = 30.0
# After a send stalled, how long Kafka counts as unreachable without asking it again.
STALL_SECONDS = 5.0
# Spooled events sent together before their acknowledgements are awaited.
DRAIN_CHUNK = 16
# Events sent to job_raw kept in memory, to be spooled too if Kafka turns out unreachable before
# they are applied: more than a run keeps unapplied (MAX_EVENTS_UNAPPLIED).
RECENTLY_SENT = 4 * MAX_EVENTS_UNAPPLIED

_ENCODER = msgspec.json.Encoder()


class SendStalled(Exception):
    """A send to job_raw did not get into the producer's buffer: Kafka is unreachable."""


class RunFailed(Exception):
    """A crawl run ended before it reached the end of the source; the message says why."""


class TaskMoved(Exception):
    """This worker no longer owns the task (a rebalance began): the run ends at once, without
    sending what it holds, and the task's owner crawls on from the stored offset."""


class Crawler:
    """This worker's crawl: the loop, its wake-up event and what it has fetched."""

    def __init__(self, app: JobstreamApp) -> None:
        self.app = app
        self.wakeup = asyncio.Event()
        # Rows fetched by this worker since it started, per task (the table counts applied).
        self.fetched: dict[str, int] = {}
        # The offset each task's last run sent pages up to.
        self._sent_until: dict[str, int] = {}
        # Pulsed by the page agent on this worker whenever it advances a task.
        self._progressed = asyncio.Event()
        settings = app.settings
        # Events kept while Kafka is unreachable; None with `spool.enabled: false`.
        self.spool = (
            Spool(settings.spool_path, settings.spool.max_bytes) if settings.spool.enabled else None
        )
        self._stalled_until = 0.0
        # Per task: when its spooling began and what the drain has sent so far (for the logs).
        self._spooling_since: dict[str, float] = {}
        self._recently_sent: dict[str, deque[tuple[int, int, int, bytes]]] = {}
        self._drained: dict[str, tuple[int, int]] = {}

    def broker_down(self) -> bool:
        """Whether Kafka is known to be unreachable: the probe says so, or a send stalled."""
        probe = self.app.broker_probe
        return (probe is not None and probe.broker_up is False) or (
            time.monotonic() < self._stalled_until
        )

    def spooled(self, task_id: str) -> int:
        """How many of the task's events wait in the spool."""
        return self.spool.size(task_id).pages if self.spool is not None else 0

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
        reader.start(await self._resume_at(outbox, progress.current_offset), batch_size)
        first = True
        try:
            while True:
                if self.app.should_stop:
                    return None
                offset, size = reader.offset, reader.size
                if task_id not in self.owned_tasks():
                    raise TaskMoved
                if self.app.progress_store.current(task_id).status == "stopped":
                    await self._send(outbox)
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
                    await self._send(outbox)
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
                    await self._send(outbox)
                if is_last:
                    await self._flush_spool(outbox)
                    await self._applied(task_id, next_offset)
                    return events[-1].total
                while len(outbox.unapplied) > MAX_EVENTS_UNAPPLIED:
                    # While Kafka is unreachable nothing is applied: fetching goes on into the
                    # spool instead of waiting.
                    until_down = self.spool is not None
                    if not await self._applied(task_id, outbox.unapplied.popleft(), until_down):
                        break
        finally:
            reader.cancel()
            self._count_misses(task_id, reader)

    async def _send(self, outbox: Outbox) -> None:
        """Send what the outbox holds to job_raw, in offset order (to the spool while Kafka is
        unreachable)."""
        for event, value in outbox.take(self.app.settings.kafka.max_message_bytes):
            rows = len(event.rows)
            while True:
                if self.spool is None:
                    await raw_topic.send(
                        key=outbox.task_id, value=value, partition=outbox.partition
                    )
                    break
                if self.spooled(outbox.task_id) and not self.broker_down():
                    await self._drain(outbox)
                if self.spooled(outbox.task_id) or self.broker_down():
                    if self.spool.fits(len(value)):
                        self._spool(outbox.task_id, event.offset, event.next_offset, rows, value)
                        break
                    # Full: fetching pauses, nothing is dropped, until Kafka is back.
                    await self._until_broker_up(outbox.task_id, "the spool is full")
                    continue
                try:
                    await self._send_bounded(outbox.task_id, value, outbox.partition)
                except SendStalled:
                    continue  # Kafka counts as down now: the event goes to the spool
                break
            if not self.spooled(outbox.task_id):
                outbox.unapplied.append(event.next_offset)
                self._sent_until[outbox.task_id] = event.next_offset
                if self.spool is not None:
                    self._keep_sent(outbox.task_id, (event.offset, event.next_offset, rows, value))

    async def _send_bounded(
        self, task_id: str, value: bytes, partition: int
    ) -> asyncio.Future[Any]:
        """Send one event to job_raw; its acknowledgement, a future. SendStalled when the
        producer has no room for it within SEND_TIMEOUT, or the probe finds Kafka gone."""
        sending = asyncio.ensure_future(
            raw_topic.send(key=task_id, value=value, partition=partition)
        )
        if not await self._done_unless_down(sending, SEND_TIMEOUT):
            # Cancelled while waiting for room in the producer's buffer: nothing was added.
            sending.cancel()
            await asyncio.wait({sending})
        if sending.cancelled():
            self._stalled_until = time.monotonic() + STALL_SECONDS
            raise SendStalled
        return cast(asyncio.Future[Any], sending.result())  # what the send raised, raised

    async def _done_unless_down(self, step: asyncio.Future[Any], within: float) -> bool:
        """Wait for `step` at most `within` seconds, and no longer once the probe finds Kafka
        down; whether it is done."""
        probe = self.app.broker_probe
        down = asyncio.ensure_future(probe.went_down()) if probe is not None else None
        try:
            await asyncio.wait(
                {step} if down is None else {step, down},
                timeout=within,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            if down is not None:
                down.cancel()
        return step.done()

    def _keep_sent(self, task_id: str, sent: tuple[int, int, int, bytes]) -> None:
        """Remember an event sent to job_raw (offset, next_offset, rows, value) until it is
        applied: it may still sit in the producer's buffer."""
        kept = self._recently_sent.setdefault(task_id, deque(maxlen=RECENTLY_SENT))
        applied = self.app.progress_store.current(task_id).current_offset
        while kept and kept[0][1] <= applied:
            kept.popleft()
        kept.append(sent)

    def _spool(self, task_id: str, offset: int, next_offset: int, rows: int, value: bytes) -> None:
        assert self.spool is not None
        if not self.spooled(task_id):
            self._spooling_since[task_id] = time.monotonic()
            logger.warning(
                "task_id=%s offset=%d Kafka is unreachable: fetched pages go to the local spool "
                "%s until it is back (spool holds %d bytes of at most %d)",
                task_id, offset, self.spool.path, self.spool.size().bytes, self.spool.max_bytes,
            )  # fmt: skip
            # The events sent but not applied may be lost with the producer's buffer (a restart
            # during the outage): the spool keeps them too, so that it continues the stored
            # offset. A copy that reaches job_raw twice is applied once (by its offsets).
            applied = self.app.progress_store.current(task_id).current_offset
            for sent in self._recently_sent.pop(task_id, ()):
                if applied < sent[1] <= offset and self.spool.fits(len(sent[3]) + len(value)):
                    self.spool.put(task_id, *sent)
        self.spool.put(task_id, offset, next_offset, rows, value)

    async def _drain(self, outbox: Outbox) -> bool:
        """Send the task's spooled events to job_raw in offset order, each forgotten once the
        broker acknowledged it; True when none is left. Stops (False) when Kafka is
        unreachable again: what was not acknowledged stays, and is sent again later."""
        assert self.spool is not None
        task_id = outbox.task_id
        self.spool.drop_applied(task_id, self.app.progress_store.current(task_id).current_offset)
        while events := self.spool.first(task_id, DRAIN_CHUNK):
            if self.broker_down() or self.app.should_stop:
                return False
            acks: list[asyncio.Future[Any]] = []
            for event in events:
                try:
                    acks.append(await self._send_bounded(task_id, event.value, outbox.partition))
                except SendStalled:
                    break
            acked = []
            for event, ack in zip(events, acks, strict=False):
                if not await self._acknowledged(ack):
                    break
                acked.append(event)
            self.spool.remove(acked)
            pages, rows = self._drained.get(task_id, (0, 0))
            self._drained[task_id] = (pages + len(acked), rows + sum(e.rows for e in acked))
            for event in acked:
                outbox.unapplied.append(event.next_offset)
                self._sent_until[task_id] = event.next_offset
            if len(acked) < len(events):
                self._stalled_until = time.monotonic() + STALL_SECONDS
                return False
        pages, rows = self._drained.pop(task_id, (0, 0))
        since = self._spooling_since.pop(task_id, None)
        if pages:
            logger.info(
                "task_id=%s offset=%d spool drained: %d events (%d rows) sent to job_raw and "
                "acknowledged, %.1fs after spooling began",
                task_id, self._sent_until.get(task_id, 0), pages, rows,
                time.monotonic() - since if since is not None else 0.0,
            )  # fmt: skip
        return True

    async def _acknowledged(self, ack: asyncio.Future[Any]) -> bool:
        """Whether the broker acknowledged a message (within ACK_TIMEOUT, and before the probe
        finds Kafka down)."""
        if not await self._done_unless_down(ack, ACK_TIMEOUT):
            return False
        if ack.cancelled() or ack.exception() is not None:
            error = "cancelled" if ack.cancelled() else repr(ack.exception())
            logger.warning("a spooled event was not acknowledged (%s): it stays spooled", error)
            return False
        return True

    async def _until_broker_up(self, task_id: str, why: str) -> None:
        """Wait until Kafka is reachable again (this run's task staying here)."""
        if self.broker_down():
            span = self.spool.span(task_id) if self.spool is not None else None
            logger.warning(
                "task_id=%s offset=%d %s: fetching pauses until Kafka is back",
                task_id, span[1] if span else 0, why,
            )  # fmt: skip
        while self.broker_down():
            if self.app.should_stop:
                raise RunFailed("the worker is stopping")
            if task_id not in self.owned_tasks():
                raise TaskMoved
            await asyncio.sleep(0.2)

    async def _flush_spool(self, outbox: Outbox) -> None:
        """At the end of the source: wait for Kafka and send what the spool holds of the task."""
        while self.spooled(outbox.task_id):
            if self.app.should_stop:
                raise RunFailed("the worker is stopping")
            await self._until_broker_up(outbox.task_id, "the source's end is reached")
            if not await self._drain(outbox):
                await asyncio.sleep(0.2)

    async def _resume_at(self, outbox: Outbox, current_offset: int) -> int:
        """Where the run fetches from: the stored offset, or where the task's spooled events end
        when they continue from it. Spooled events that do not (those between were lost with
        the producer's buffer, a restart during an outage) are forgotten: the run fetches again
        from the stored offset, which loses nothing."""
        spool, task_id = self.spool, outbox.task_id
        if spool is None or not self.spooled(task_id):
            return current_offset
        spool.drop_applied(task_id, current_offset)
        span = spool.span(task_id)
        if span is None:
            return current_offset
        if span[0] > current_offset and not self.broker_down():
            dropped = spool.discard(task_id)
            logger.warning(
                "task_id=%s offset=%d the spooled events start at %d, after the stored offset: "
                "%d events (%d rows) forgotten and fetched again",
                task_id, current_offset, span[0], dropped.pages, dropped.rows,
            )  # fmt: skip
            return current_offset
        if not self.broker_down():
            await self._drain(outbox)
        return span[1]

    def _count_misses(self, task_id: str, reader: ReadAhead) -> None:
        if reader.misses:
            metrics.FETCH_AHEAD_MISSES.labels(task_id).inc(reader.misses)
            reader.misses = 0
        if reader.dropped:
            metrics.FETCH_AHEAD_DROPPED.labels(task_id).inc(reader.dropped)
            reader.dropped = 0

    def _last_total(self, progress: Progress) -> int:
        return max(progress.total, self._sent_until.get(progress.task_id, 0))

    async def _applied(self, task_id: str, offset: int, until_down: bool = False) -> bool:
        """Wait until the task's pages are applied up to `offset`; RunFailed if they are not.
        With `until_down`, False as soon as Kafka is known to be unreachable."""
        deadline = time.monotonic() + APPLY_TIMEOUT
        store = self.app.progress_store
        # Polling: the agent that advances the offset may run on this worker or, after a
        # rebalance, on another one.
        while (current := store.current(task_id)).current_offset < offset:
            if task_id not in self.owned_tasks():
                raise TaskMoved
            if until_down and self.broker_down():
                return False
            if time.monotonic() > deadline:
                raise RunFailed(
                    f"pages up to offset {offset} were sent but not applied within "
                    f"{APPLY_TIMEOUT:.0f}s (applied up to {current.current_offset}); "
                    "see the worker log for why"
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
        after APPLY_TIMEOUT: then the run refetches from where the progress stands)."""
        try:
            await self._applied(task_id, self._sent_until.get(task_id, 0))
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
        self._sent_until[task_id] = 0
        deadline = time.monotonic() + APPLY_TIMEOUT
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
