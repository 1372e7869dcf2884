"""The dedupe agent: forwards the first sighting of each job id within the window from
job_candidates to job_data, records it in `published_jobs`, and reports per task what it
forwarded and what it found duplicate (a `deduped` command on job_commands).

Each job_candidates partition is the partition of its job ids, so the worker that owns it owns
those ids' entries (the table's changelog partition), and job_data gets each job on the same
partition as without dedupe: the key and the bytes are the page agent's, unchanged.

Decisions are made in offset order as messages arrive; what they send is settled behind them,
several messages at a time, strictly in this order: the forwarded jobs are acknowledged, then
the counts, then the entries (and each partition's marker) are written, and only then are the
messages acknowledged to Faust, so the consumer offset commits only recorded work. Ids decided
but not yet recorded are held in `pending`, so a duplicate right behind its first sighting is
seen. A crash between forwarding and recording republishes that work after the restart, with
the same ids (at-least-once, like every Kafka consumer without transactions, which the
embedded broker does not offer), and reports it again: the report names every job by its
source offset, and the commands agent counts each offset once (`rules.count_decided`), so the
counters stay exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, cast

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust import StreamT
from faust.types import AgentT, AppT, EventT

from jobstream import metrics
from jobstream.broker import batches
from jobstream.broker.clients import client_options, start_or_close, stop_consumer
from jobstream.config import Config
from jobstream.dedupe import sightings
from jobstream.dedupe.published import PublishedJobs
from jobstream.frames import BrokenFrame
from jobstream.records import Command, Decided
from jobstream.topics import (
    candidates_topic,
    commands_topic,
    data_topic,
    declare_outputs,
    partition_for,
    published_jobs,
)
from jobstream.trace.recorder import Tracer
from jobstream.worker_state import WorkerState

logger = logging.getLogger(__name__)

# Messages decided but not yet settled before the agent waits: bounds what is held in flight.
MAX_UNSETTLED = 64
# How long settling waits for more messages once one has arrived (unless half the bound is
# reached): a round sends one command per task and one changelog batch per partition, so
# gathering keeps the commands few (about 20 a second under a full crawl, not one a message).
GATHER_SECONDS = 0.05
# Seconds between attempts when Kafka does not acknowledge (the producer has retried already).
RETRY_PAUSE = 1.0
# Source offsets one `deduped` command carries at most (about 7 bytes each): a long backlog
# settled at once is reported in several commands, well below a message's size limit.
MAX_OFFSETS_PER_COMMAND = 20_000

_ENCODER = msgspec.json.Encoder()


def declare(app: AppT, config: Config, worker: WorkerState, tracer: Tracer | None = None) -> AgentT:
    """The dedupe agent, sending with `worker`'s producer; `tracer` records its decisions."""

    @app.agent(candidates_topic, name="jobstream.pipeline.dedupe.forward_first_sightings")
    async def forward_first_sightings(events: StreamT[bytes]) -> None:
        await declare_outputs()
        # Acknowledged by the stage once settled (StreamT does not declare noack).
        stream: StreamT[bytes] = cast(Any, events).noack()
        table = PublishedJobs(published_jobs, candidates_topic.get_topic_name())
        metrics.DEDUPE_ENTRIES.set_function(lambda: len(table))
        stage = Stage(config, worker, table, stream, tracer=tracer)
        settling = asyncio.create_task(stage.settle_forever())
        try:
            async for event in stream.events():
                try:
                    await stage.take(event)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # A defect: the message stays unacknowledged, so it is read again after a
                    # restart; the agent itself must live on.
                    message = event.message
                    logger.exception(
                        "partition=%d offset=%d candidates not deduped",
                        message.partition,
                        message.offset,
                    )
        finally:
            settling.cancel()
            await asyncio.gather(settling, return_exceptions=True)

    return forward_first_sightings


class Counted(NamedTuple):
    """The progress a message's jobs were counted out of: a task, its source, its resets."""

    task_id: str
    source: str
    source_resets: int


@dataclass
class Step:
    """One job_candidates message: what was decided, and what is sent for it."""

    event: EventT
    partition: int
    offset: int
    progress: Counted  # what the jobs were counted out of
    at: float  # when the first sightings were forwarded
    first: dict[bytes, bytes]
    duplicates: int
    # The source offsets of the first sightings and of the duplicates, ascending (-1 for
    # candidates of an earlier version, which carry none).
    first_offsets: list[int] = field(default_factory=list)
    duplicate_offsets: list[int] = field(default_factory=list)
    # The acknowledgements of the forwarded jobs; None once awaited (a retry sends again).
    deliveries: list[asyncio.Future[Any]] | None = field(default_factory=list)


@dataclass
class _Message:
    """A job_candidates message the agent read itself (see `Stage.take`)."""

    topic: str
    partition: int
    offset: int
    value: bytes
    headers: Any
    key: bytes | None = None


@dataclass
class Backfilled:
    """An event for a message Faust's stream skipped, read by the stage itself: there is
    nothing to acknowledge to Faust for it."""

    message: _Message

    @property
    def value(self) -> bytes:
        return self.message.value


class Stage:
    """Decisions in arrival order, settled behind them (see the module)."""

    def __init__(
        self,
        config: Config,
        worker: WorkerState,
        table: PublishedJobs,
        stream: StreamT[bytes],
        tracer: Tracer | None = None,
    ) -> None:
        self.config = config
        self.tracer = tracer
        self.worker = worker
        self.table = table
        self.stream = stream
        self.window = self.config.dedupe_window
        # Ids forwarded (or being forwarded) and not yet in the table -> when.
        self.pending: dict[bytes, float] = {}
        self.steps: deque[Step] = deque()
        self._arrived = asyncio.Event()
        self._plenty = asyncio.Event()
        self._settled = asyncio.Event()
        self._prune_every = sightings.prune_interval(self.window)
        self._next_prune = time.monotonic() + self._prune_every
        # Per job_candidates partition, the offset after the last message taken.
        self.next_offset: dict[int, int] = {}

    def published_at(self, key: bytes) -> float | None:
        at = self.pending.get(key)
        return at if at is not None else self.table.published_at(key)

    async def take(self, event: EventT) -> None:
        """Decide the message's candidates, after any of the partition's messages before it
        that were neither recorded nor taken.

        A partition's decisions must be made (and reported) in its order: the commands agent
        counts each partition's source offsets above the highest it counted (see
        `rules.count_decided`), so a message decided after a later one is never counted.
        Faust's stream does not guarantee it across a restart: a restarted worker was seen
        to get its first job_candidates message past messages it had never recorded (its
        fetch ran before the seek to the committed offsets, and Faust drops what it fetches
        again below what it has read), so the new run's decisions raised the marks past the
        rows of the old run's last pages, which the next restart decided again below them.
        Such a hole is read here directly from the broker and decided first."""
        message = event.message
        partition, offset = message.partition, message.offset
        expected = max(
            self.next_offset.get(partition, 0), self.table.recorded_through(partition) + 1
        )
        if offset > expected:
            missed = await self._read(message.topic, partition, expected, offset)
            logger.warning(
                "dedupe: partition=%d offsets %d..%d were not delivered before offset %d; "
                "%d of them read from the broker and decided first",
                partition,
                expected,
                offset - 1,
                offset,
                len(missed),
            )
            for fetched in missed:
                await self._take(cast(Any, Backfilled(fetched)))
        await self._take(event)

    async def _read(self, topic: str, partition: int, start: int, end: int) -> list[_Message]:
        """The partition's messages from `start` (or the oldest kept) up to `end`."""
        consumer = AIOKafkaConsumer(
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **client_options(self.config),
        )
        await start_or_close(consumer.start(), lambda: stop_consumer(consumer))
        out: list[_Message] = []
        try:
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            oldest = (await consumer.beginning_offsets([tp]))[tp]
            consumer.seek(tp, max(start, oldest))
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for record in batch.get(tp, []):
                    if record.offset >= end:
                        break
                    out.append(
                        _Message(
                            topic,
                            partition,
                            record.offset,
                            record.value,
                            list(record.headers or ()),
                            record.key,
                        )
                    )
        finally:
            await stop_consumer(consumer)
        return out

    async def _ack(self, event: EventT) -> None:
        if not isinstance(event, Backfilled):
            await self.stream.ack(event)

    async def _take(self, event: EventT) -> None:
        message = event.message
        partition, offset = message.partition, message.offset
        self.next_offset[partition] = max(self.next_offset.get(partition, 0), offset + 1)
        if offset <= self.table.recorded_through(partition):
            # Recorded before a crash, read again because the commit lagged: done already.
            await self._ack(event)
            return
        try:
            candidates = sightings.decode_candidates(event.value)
        except (msgspec.DecodeError, BrokenFrame) as exc:
            logger.error(
                "partition=%d offset=%d not candidates, skipped: %s", partition, offset, exc
            )
            await self._ack(event)
            return
        now = time.time()
        sorting = sightings.sort_candidates(candidates.jobs, self.published_at, now - self.window)
        for key in sorting.first:
            self.pending[key] = now
        if self.tracer is not None:  # each candidate's decision, for GET /trace
            self.tracer.decided(event, candidates, sorting.first, self.published_at, now)
        counted = Counted(candidates.task_id, candidates.source, candidates.source_resets)
        step = Step(
            event,
            partition,
            offset,
            counted,
            now,
            sorting.first,
            sorting.duplicates,
            sorting.first_offsets,
            sorting.duplicate_offsets,
        )
        step.deliveries = await self._forward(step)
        self.steps.append(step)
        self._arrived.set()
        if len(self.steps) >= MAX_UNSETTLED // 2:
            self._plenty.set()
        while len(self.steps) > MAX_UNSETTLED:
            self._settled.clear()
            await self._settled.wait()

    async def _forward(self, step: Step) -> list[asyncio.Future[Any]]:
        if not step.first:
            return []
        kafka = self.worker.producer()
        name = data_topic().get_topic_name()
        messages = list(step.first.items())
        data = await kafka.partitions_for(name)
        if len(data) == len(await kafka.partitions_for(candidates_topic.get_topic_name())):
            # The partition the ids have on job_data is theirs on job_candidates: this one.
            return await batches.send_batches(kafka, name, step.partition, messages)
        return await batches.send_keyed(kafka, name, messages)

    async def settle_forever(self) -> None:
        while True:
            timeout = max(0.0, self._next_prune - time.monotonic())
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout)
            except TimeoutError:
                pass
            self._arrived.clear()
            try:
                if self.steps:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._plenty.wait(), GATHER_SECONDS)
                    self._plenty.clear()
                    await self.settle(list(self.steps))
                if time.monotonic() >= self._next_prune:
                    await self.prune()
                    self._next_prune = time.monotonic() + self._prune_every
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("dedupe: settling failed; trying again")
                await asyncio.sleep(RETRY_PAUSE)
                self._arrived.set()

    async def settle(self, steps: list[Step]) -> None:
        """Make the steps' outcome durable in order (forwards, counts, entries), then let
        Faust commit past them."""
        for step in steps:
            await self._acknowledged(step)
        counts = tally(steps)
        await self._until_sent("reporting the counts", lambda: self._report(counts))
        await self._until_sent("recording the first sightings", lambda: self._record(steps))
        if self.tracer is not None:
            await self.tracer.flush()
        pending = self.pending
        for step in steps:
            for key in step.first:
                if pending.get(key) == step.at:
                    del pending[key]
            await self._ack(step.event)
            self.steps.popleft()
        self._settled.set()
        for counted, found in counts.items():
            metrics.ROWS.labels(counted.task_id, "published").inc(found.forwarded)
            metrics.ROWS.labels(counted.task_id, "duplicate").inc(found.repeated)

    async def _acknowledged(self, step: Step) -> None:
        """Wait until job_data holds the step's forwarded jobs, sending them again if the
        broker refused them (the worker waits for Kafka like everywhere else)."""

        async def deliveries() -> list[asyncio.Future[Any]]:
            if step.deliveries is None:
                step.deliveries = await self._forward(step)
            sent, step.deliveries = step.deliveries, None
            return sent

        await self._until_sent(
            f"partition={step.partition} offset={step.offset} forwarding {len(step.first)} "
            "jobs to job_data",
            deliveries,
        )

    async def _until_sent(
        self, what: str, send: Callable[[], Awaitable[list[asyncio.Future[Any]]]]
    ) -> None:
        """Send and wait for the acknowledgements, again after a pause while Kafka refuses."""
        attempt = 0
        while True:
            try:
                await asyncio.gather(*await send())
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                attempt += 1
                logger.warning(
                    "dedupe: %s failed (attempt %d): %r; sending again", what, attempt, exc
                )
                await asyncio.sleep(RETRY_PAUSE)

    async def _report(self, counts: dict[Counted, Tally]) -> list[asyncio.Future[Any]]:
        """`deduped` commands per task: each job forwarded or found duplicate, by its source
        offset and job_candidates partition (see `rules.count_decided`)."""
        at = datetime.now(self.config.tz).isoformat(timespec="seconds")
        partitions = self.config.kafka.partitions
        by_partition: dict[int, list[sightings.Message]] = {}
        for counted, found in counts.items():
            task_id = counted.task_id
            for decided, published, duplicates in found.commands():
                command = Command(
                    task_id=task_id,
                    action="deduped",
                    at=at,
                    published=published or None,
                    duplicates=duplicates or None,
                    source=counted.source,
                    source_resets=counted.source_resets,
                    decided=decided,
                )
                by_partition.setdefault(partition_for(task_id, partitions), []).append(
                    (task_id.encode(), _ENCODER.encode(command))
                )
        kafka = self.worker.producer()
        name = commands_topic.get_topic_name()
        deliveries = []
        for partition, messages in by_partition.items():
            deliveries.extend(await batches.send_batches(kafka, name, partition, messages))
        return deliveries

    async def _record(self, steps: list[Step]) -> list[asyncio.Future[Any]]:
        """The steps' first sightings and each partition's marker into published_jobs."""
        through: dict[int, int] = {}
        for step in steps:
            through[step.partition] = max(step.offset, through.get(step.partition, -1))
        changes = self.table.record(
            ((step.first, step.at, step.partition) for step in steps), through
        )
        return await self._send_changes(changes)

    async def _send_changes(
        self, changes: dict[int, list[tuple[bytes, Any]]]
    ) -> list[asyncio.Future[Any]]:
        kafka = self.worker.producer()
        name = self.table.table.changelog_topic_name
        deliveries = []
        for partition, messages in changes.items():
            deliveries.extend(await batches.send_batches(kafka, name, partition, messages))
        return deliveries

    async def prune(self) -> None:
        """Delete the entries of this worker's partitions older than the window."""
        if self.worker.rebalancing:
            return  # the partitions are moving; the next prune sees where they went
        expired = await self.table.expired(time.time() - self.window, self.table.owned())
        if not expired:
            return
        tombstones = {p: [(key, None) for key in keys] for p, keys in expired.items()}
        await self._until_sent("pruning", lambda: self._send_changes(tombstones))
        pruned = [key for keys in expired.values() for key in keys]
        self.table.forget(pruned)
        metrics.DEDUPE_PRUNED.inc(len(pruned))
        logger.debug("dedupe: %d entries older than %.0fs pruned", len(pruned), self.window)


@dataclass
class Tally:
    """What a round of steps decided for one task (and progress): per job_candidates
    partition, the source offsets of the first sightings and of the duplicates, ascending,
    each above those before it (a step that repeats offsets is a replay within the round);
    and counts of candidates that carry no offsets: those of an earlier version, and those a
    POST /replay sends (their offsets lie below the marks the crawl's decisions set)."""

    first: dict[int, list[int]] = field(default_factory=dict)
    duplicates: dict[int, list[int]] = field(default_factory=dict)
    tops: dict[int, int] = field(default_factory=dict)
    unplaced_first: int = 0
    unplaced_duplicates: int = 0
    forwarded: int = 0  # for the metrics: every forward, replays included
    repeated: int = 0

    def add(self, step: Step) -> None:
        self.forwarded += len(step.first)
        self.repeated += step.duplicates
        offsets = [*step.first_offsets, *step.duplicate_offsets]
        if any(offset < 0 for offset in offsets) or len(offsets) != len(step.first) + (
            step.duplicates
        ):
            self.unplaced_first += len(step.first)
            self.unplaced_duplicates += step.duplicates
            return
        p = step.partition
        top = self.tops.get(p, -1)
        # Sorted: a message's jobs are in source order, but nothing downstream may rely on it.
        self.first.setdefault(p, []).extend(sorted(o for o in step.first_offsets if o > top))
        self.duplicates.setdefault(p, []).extend(
            sorted(o for o in step.duplicate_offsets if o > top)
        )
        self.tops[p] = max([top, *offsets])

    def commands(self) -> list[tuple[list[Decided], int, int]]:
        """The decisions cut into commands of at most MAX_OFFSETS_PER_COMMAND offsets, each
        partition's lowest offsets first (so each command stays above the one before); the
        unplaced counts go with the first."""
        pieces: list[list[Decided]] = []
        current: list[Decided] = []
        room = MAX_OFFSETS_PER_COMMAND
        for p in sorted(self.first.keys() | self.duplicates.keys()):
            merged = sorted(
                [(o, True) for o in self.first.get(p, [])]
                + [(o, False) for o in self.duplicates.get(p, [])]
            )
            start = 0
            while start < len(merged):
                chunk = merged[start : start + room]
                first = [o for o, is_first in chunk if is_first]
                current.append(Decided(p, first, [o for o, is_first in chunk if not is_first]))
                start += len(chunk)
                room -= len(chunk)
                if room == 0:
                    pieces.append(current)
                    current, room = [], MAX_OFFSETS_PER_COMMAND
        if current or not pieces:
            pieces.append(current)
        return [
            (decided, *((self.unplaced_first, self.unplaced_duplicates) if i == 0 else (0, 0)))
            for i, decided in enumerate(pieces)
        ]


def tally(steps: list[Step]) -> dict[Counted, Tally]:
    """Per task (and progress), what the steps decided, in their order."""
    counts: dict[Counted, Tally] = {}
    for step in steps:
        counts.setdefault(step.progress, Tally()).add(step)
    return counts
