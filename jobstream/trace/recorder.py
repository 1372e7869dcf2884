"""Recording the trace where the pipeline decides: the page agent (each applied page's record,
and its decisions about ids sent to job_trace), the dedupe agent (its decision about each
candidate) and the trace agent (job_trace's batches into `trace_sightings`); and pruning.

Recording never stops the pipeline: a defect here is logged and the page or message goes on
without its trace. The page agent's trace messages are acknowledged with the page's own (its
progress advances only once they are durable); the dedupe agent's are sent with each settled
round, before its messages are acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from faust.types import EventT

from jobstream.broker import batches
from jobstream.config import Config
from jobstream.dedupe.sightings import prune_interval
from jobstream.pipeline.messages import PageMessages
from jobstream.progress.commands import Commands
from jobstream.records import Candidates, Progress, RawPage
from jobstream.topics import data_topic, raw_topic, trace_topic
from jobstream.trace import entries
from jobstream.trace.entries import Duplicate, PageRecord, Sighting
from jobstream.trace.judge import dedupe_trace, page_trace
from jobstream.trace.store import Message, TraceStore, batch_key, page_key
from jobstream.transform.outcome import RowContext
from jobstream.worker_state import WorkerState

logger = logging.getLogger(__name__)

# A job_candidates message's header naming where its jobs come from ("replay"; none: a crawl).
ORIGIN_HEADER = "jobstream-origin"


class Tracer:
    """Writes this worker's trace (`store`); does nothing with `trace.enabled: false`."""

    def __init__(
        self, config: Config, worker: WorkerState, store: TraceStore, commands: Commands
    ) -> None:
        self.config = config
        self.commands = commands
        # Per task: the dedupe agent's decisions about replayed rows (published, duplicates)
        # not yet told to the replay (a `replay_deduped` command to the task's owner).
        self._replayed: dict[str, list[int]] = {}
        self.worker = worker
        self.store = store
        self.enabled = config.trace.enabled
        # The dedupe agent's batches not yet known to be durable, by partition.
        self._queued: dict[int, list[Message]] = {}
        # The trace agent's changelog sends in flight.
        self._storing: set[asyncio.Future[Any]] = set()

    async def record(
        self, record: PageRecord, sightings: dict[int, list[Sighting]]
    ) -> list[asyncio.Future[Any]]:
        """Keep a page's record here and send its decisions about ids to their owners; the
        sends' acknowledgements."""
        kafka = self.worker.producer()
        name = trace_topic.get_topic_name()
        partition, message = self.store.pages.put(page_key(record), entries.encode_page(record))
        deliveries = await self.store.pages.send(self.worker, {partition: [message]})
        for p, batch in sightings.items():
            value = entries.encode_batch(record.at, batch)
            key = batch[0].id.encode()
            deliveries.extend(await batches.send_batches(kafka, name, p, [(key, value)]))
        return deliveries

    async def page_applied(
        self,
        page: RawPage,
        first_row: int,
        ctx: RowContext,
        out: PageMessages,
        progress: Progress,
        origin: str = "crawl",
    ) -> list[asyncio.Future[Any]]:
        """Record what became of the page's rows; the sends' acknowledgements."""
        if not self.enabled:
            return []
        try:
            kafka = self.worker.producer()
            partitions = len(await kafka.partitions_for(trace_topic.get_topic_name()))
            published = None
            if not self.config.dedupe.enabled:
                published = len(await kafka.partitions_for(data_topic().get_topic_name()))
            trace = page_trace(
                page,
                first_row,
                ctx,
                out,
                source_resets=progress.source_resets,
                at=time.time(),
                partitions=partitions,
                origin=origin,
                published_partitions=published,
            )
            return await self.record(trace.record, trace.sightings)
        except Exception:
            logger.exception("task_id=%s offset=%d the page's trace was not recorded",
                             page.task_id, page.offset)  # fmt: skip
            return []

    def decided(
        self,
        event: EventT,
        candidates: Candidates,
        first: dict[bytes, bytes],
        published_at: Any,
        at: float,
    ) -> None:
        """Note the dedupe agent's decisions about one job_candidates message (sent by the
        next `flush`)."""
        if not self.enabled:
            return
        message = event.message
        try:
            sightings = dedupe_trace(
                candidates.task_id,
                candidates.jobs,
                first,
                published_at,
                at=at,
                partition=message.partition,
                window=self.config.dedupe_window,
                origin=origin_of(message.headers),
            )
            if not sightings:
                return
            if sightings[0].origin == "replay":
                counts = self._replayed.setdefault(candidates.task_id, [0, 0])
                for s in sightings:
                    counts[isinstance(s.decision, Duplicate)] += 1
            key = batch_key(b"d", message.partition, message.offset)
            partition, change = self.store.sightings.put(key, entries.encode_batch(at, sightings))
            self._queued.setdefault(partition, []).append(change)
        except Exception:
            logger.exception(
                "partition=%d offset=%d the dedupe decisions' trace was not recorded",
                message.partition,
                message.offset,
            )

    async def flush(self) -> None:
        """Make the noted decisions durable; on failure they stay queued for the next round
        (the dedupe agent goes on: the trace never holds the pipeline back)."""
        replayed, self._replayed = self._replayed, {}
        for task_id, (published, duplicates) in replayed.items():
            try:
                await self.commands.send(
                    task_id, "replay_deduped", published=published, duplicates=duplicates
                )
            except Exception as exc:  # the replay's status only: the task's counts are exact
                logger.warning("task_id=%s the replay's decisions were not told: %r", task_id, exc)
        if not self._queued:
            return
        queued, self._queued = self._queued, {}
        try:
            await asyncio.gather(*await self.store.sightings.send(self.worker, queued))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("trace: the dedupe decisions were not recorded yet (%r); again", exc)
            for partition, messages in queued.items():
                self._queued.setdefault(partition, [])[:0] = messages

    async def store_batch(self, event: EventT) -> None:
        """Keep one job_trace message (a batch of the page agent's decisions) in the table."""
        message = event.message
        value = message.value
        if not isinstance(value, bytes) or not entries.is_batch(value):
            logger.error(
                "partition=%d offset=%d not a trace batch, skipped", message.partition,
                message.offset,
            )  # fmt: skip
            return
        key = batch_key(b"t", message.partition, message.offset)
        partition, change = self.store.sightings.put(key, value)
        for sent in await self.store.sightings.send(self.worker, {partition: [change]}):
            self._storing.add(sent)
            sent.add_done_callback(self._stored)

    def _stored(self, sent: asyncio.Future[Any]) -> None:
        self._storing.discard(sent)
        if not sent.cancelled() and sent.exception() is not None:
            logger.warning("trace: a batch of decisions was not recorded: %r", sent.exception())

    async def prune_forever(self) -> None:
        """Every tenth of the retention (0.2 s to 10 minutes), delete the entries of this
        worker's partitions that are older than it."""
        every = prune_interval(self.store.retention)
        app = self.worker.app
        while not self.worker.stopping:
            await asyncio.sleep(every)
            if not self.enabled or self.worker.rebalancing or not app.tables_recovered():
                continue
            owned = {
                tp.partition
                for tp in app.assignor.assigned_actives()
                if tp.topic == raw_topic.get_topic_name()
            }
            try:
                await self.store.prune(self.worker, owned)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("trace: pruning failed (%r); trying again later", exc)


def origin_of(headers: Any) -> str:
    """ "replay" for a message a replay sent, else "crawl"."""
    items = headers.items() if isinstance(headers, dict) else (headers or ())
    for name, value in items:
        if name == ORIGIN_HEADER:
            return value.decode() if isinstance(value, bytes) else str(value)
    return "crawl"
