"""Sending a task's events to job_raw, in offset order, through the local spool while Kafka
is unreachable (seed §9: 重试连接, 数据暂存本地).

While Kafka is unreachable (the HTTP views' probe says so, or a send finds no room in the
producer's buffer for `kafka.send_timeout`), the events go to the spool (`spool.py`) instead and the
crawl keeps fetching; a full spool pauses it. Once Kafka answers again, the task's spooled
events are sent first, in offset order, each forgotten once acknowledged; only then do new
events of the task go to job_raw. Progress is not this module's: the page agent advances it
once a page is applied, spooled or not.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any, cast

from faust.types import TopicT

from jobstream.broker.probe import BrokerProbe
from jobstream.config import Config
from jobstream.errors import JobstreamError
from jobstream.pipeline.outbox import Outbox
from jobstream.pipeline.runs import RunFailed, TaskMoved
from jobstream.pipeline.spool import Spool
from jobstream.progress.store import ProgressStore
from jobstream.worker_state import WorkerState

logger = logging.getLogger(__name__)

SPOOL_FULL = "the spool is full"
# Spooled events sent together before their acknowledgements are awaited.
DRAIN_CHUNK = 16
# Events sent to job_raw kept in memory, to be spooled too if Kafka turns out unreachable before
# they are applied: more than a run keeps unapplied (crawl.MAX_EVENTS_UNAPPLIED).
RECENTLY_SENT = 32


class SendStalled(JobstreamError):
    """A send to job_raw did not get into the producer's buffer: Kafka is unreachable."""


class RawSender:
    """One worker's sending to job_raw (`topic`): straight to Kafka, or to the spool and back."""

    def __init__(
        self,
        config: Config,
        topic: TopicT,
        store: ProgressStore,
        probe: BrokerProbe,
        worker: WorkerState,
    ) -> None:
        self.config = config
        self.topic = topic
        self.store = store
        self.probe = probe
        self.worker = worker
        # The offset each task's last run sent pages up to.
        self.sent_until: dict[str, int] = {}
        # Events kept while Kafka is unreachable; None with `spool.enabled: false`.
        self.spool = (
            Spool(config.spool_path, config.spool.max_bytes) if config.spool.enabled else None
        )
        # The log's outage summaries say what the spool holds.
        probe.story.spool = self.spool
        self._stalled_until = 0.0
        # Per task: when its spooling began and what the drain has sent so far (for the logs).
        self._spooling_since: dict[str, float] = {}
        self._recently_sent: dict[str, deque[tuple[int, int, int, bytes]]] = {}
        self._drained: dict[str, tuple[int, int]] = {}

    def broker_down(self) -> bool:
        """Whether Kafka is known to be unreachable: the probe says so, or a send stalled."""
        return self.probe.broker_up is False or (time.monotonic() < self._stalled_until)

    def spooled(self, task_id: str) -> int:
        """How many of the task's events wait in the spool."""
        return self.spool.size(task_id).pages if self.spool is not None else 0

    async def send(self, outbox: Outbox) -> None:
        """Send what the outbox holds to job_raw, in offset order (to the spool while Kafka is
        unreachable)."""
        for event, value in outbox.take():
            rows = len(event.rows)
            while True:
                if self.spool is None:
                    await self.topic.send(
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
                    await self._until_broker_up(outbox.task_id, SPOOL_FULL)
                    continue
                try:
                    await self._send_bounded(outbox.task_id, value, outbox.partition)
                except SendStalled:
                    continue  # Kafka counts as down now: the event goes to the spool
                break
            if not self.spooled(outbox.task_id):
                outbox.unapplied.append(event.next_offset)
                self.sent_until[outbox.task_id] = event.next_offset
                if self.spool is not None:
                    self._keep_sent(outbox.task_id, (event.offset, event.next_offset, rows, value))

    async def _send_bounded(
        self, task_id: str, value: bytes, partition: int
    ) -> asyncio.Future[Any]:
        """Send one event to job_raw; its acknowledgement, a future. SendStalled when the
        producer has no room for it within `kafka.send_timeout`, or the probe finds Kafka gone."""
        sending = asyncio.ensure_future(
            self.topic.send(key=task_id, value=value, partition=partition)
        )
        if not await self._done_unless_down(sending, self.config.kafka.send_timeout):
            # Cancelled while waiting for room in the producer's buffer: nothing was added.
            sending.cancel()
            await asyncio.wait({sending})
        if sending.cancelled():
            self._stalled_until = time.monotonic() + self.config.kafka.send_timeout
            raise SendStalled
        return cast(asyncio.Future[Any], sending.result())  # what the send raised, raised

    async def _done_unless_down(self, step: asyncio.Future[Any], within: float) -> bool:
        """Wait for `step` at most `within` seconds, and no longer once the probe finds Kafka
        down; whether it is done."""
        down = asyncio.ensure_future(self.probe.went_down())
        try:
            await asyncio.wait({step, down}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        finally:
            down.cancel()
        return step.done()

    def _keep_sent(self, task_id: str, sent: tuple[int, int, int, bytes]) -> None:
        """Remember an event sent to job_raw (offset, next_offset, rows, value) until it is
        applied: it may still sit in the producer's buffer."""
        kept = self._recently_sent.setdefault(task_id, deque(maxlen=RECENTLY_SENT))
        applied = self.store.current(task_id).current_offset
        while kept and kept[0][1] <= applied:
            kept.popleft()
        kept.append(sent)

    def _spool(self, task_id: str, offset: int, next_offset: int, rows: int, value: bytes) -> None:
        assert self.spool is not None
        if not self.spooled(task_id):
            self._spooling_since[task_id] = time.monotonic()
            # The outage's one ERROR (jobstream.logs) says it for every task.
            logger.debug(
                "task_id=%s offset=%d Kafka is unreachable: fetched pages go to the local spool "
                "%s until it is back (spool holds %d bytes of at most %d)",
                task_id, offset, self.spool.path, self.spool.size().bytes, self.spool.max_bytes,
            )  # fmt: skip
            # The events sent but not applied may be lost with the producer's buffer (a restart
            # during the outage): the spool keeps them too, so that it continues the stored
            # offset. A copy that reaches job_raw twice is applied once (by its offsets).
            applied = self.store.current(task_id).current_offset
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
        self.spool.drop_applied(task_id, self.store.current(task_id).current_offset)
        while events := self.spool.first(task_id, DRAIN_CHUNK):
            if self.broker_down() or self.worker.stopping:
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
                self.sent_until[task_id] = event.next_offset
            if len(acked) < len(events):
                self._stalled_until = time.monotonic() + self.config.kafka.send_timeout
                return False
        pages, rows = self._drained.pop(task_id, (0, 0))
        since = self._spooling_since.pop(task_id, None)
        if pages:
            logger.info(
                "task_id=%s offset=%d spool drained: %d events (%d rows) sent to job_raw and "
                "acknowledged, %.1fs after spooling began",
                task_id, self.sent_until.get(task_id, 0), pages, rows,
                time.monotonic() - since if since is not None else 0.0,
            )  # fmt: skip
        return True

    async def _acknowledged(self, ack: asyncio.Future[Any]) -> bool:
        """Whether the broker acknowledged a message (within `kafka.ack_timeout`, and before the
        probe finds Kafka down)."""
        if not await self._done_unless_down(ack, self.config.kafka.ack_timeout):
            return False
        if ack.cancelled() or ack.exception() is not None:
            error = "cancelled" if ack.cancelled() else repr(ack.exception())
            logger.info("a spooled event was not acknowledged (%s): it stays spooled", error)
            return False
        return True

    async def _until_broker_up(self, task_id: str, why: str) -> None:
        """Wait until Kafka is reachable again (this run's task staying here)."""
        if self.broker_down():
            span = self.spool.span(task_id) if self.spool is not None else None
            # A full spool is the operator's to know (the limit may be too small); the end of
            # the source reached during an outage is not news.
            logger.log(
                logging.WARNING if why == SPOOL_FULL else logging.INFO,
                "task_id=%s offset=%d %s: fetching pauses until Kafka is back",
                task_id, span[1] if span else 0, why,
            )  # fmt: skip
        while self.broker_down():
            if self.worker.stopping:
                raise RunFailed("the worker is stopping")
            if not self.worker.owns(task_id):
                raise TaskMoved
            await asyncio.sleep(0.2)

    async def flush(self, outbox: Outbox) -> None:
        """At the end of the source: wait for Kafka and send what the spool holds of the task."""
        while self.spooled(outbox.task_id):
            if self.worker.stopping:
                raise RunFailed("the worker is stopping")
            await self._until_broker_up(outbox.task_id, "the source's end is reached")
            if not await self._drain(outbox):
                await asyncio.sleep(0.2)

    async def resume_at(self, outbox: Outbox, current_offset: int) -> int:
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
            logger.info(
                "task_id=%s offset=%d the spooled events start at %d, after the stored offset: "
                "%d events (%d rows) forgotten and fetched again",
                task_id, current_offset, span[0], dropped.pages, dropped.rows,
            )  # fmt: skip
            return current_offset
        if not self.broker_down():
            await self._drain(outbox)
        return span[1]
