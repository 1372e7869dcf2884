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
the same ids, and counts it again: at-least-once, like every Kafka consumer without
transactions (which the embedded broker does not offer).
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
from faust import StreamT
from faust.types import AgentT, AppT, EventT

from jobstream import metrics
from jobstream.broker import batches
from jobstream.config import Config
from jobstream.dedupe import sightings
from jobstream.dedupe.published import PublishedJobs
from jobstream.frames import BrokenFrame
from jobstream.records import Command
from jobstream.topics import (
    candidates_topic,
    commands_topic,
    data_topic,
    declare_outputs,
    partition_for,
    published_jobs,
)
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

_ENCODER = msgspec.json.Encoder()


def declare(app: AppT, config: Config, worker: WorkerState) -> AgentT:
    """The dedupe agent, sending with `worker`'s producer."""

    @app.agent(candidates_topic, name="jobstream.pipeline.dedupe.forward_first_sightings")
    async def forward_first_sightings(events: StreamT[bytes]) -> None:
        await declare_outputs()
        # Acknowledged by the stage once settled (StreamT does not declare noack).
        stream: StreamT[bytes] = cast(Any, events).noack()
        table = PublishedJobs(published_jobs, candidates_topic.get_topic_name())
        metrics.DEDUPE_ENTRIES.set_function(lambda: len(table))
        stage = Stage(config, worker, table, stream)
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
    # The acknowledgements of the forwarded jobs; None once awaited (a retry sends again).
    deliveries: list[asyncio.Future[Any]] | None = field(default_factory=list)


class Stage:
    """Decisions in arrival order, settled behind them (see the module)."""

    def __init__(
        self, config: Config, worker: WorkerState, table: PublishedJobs, stream: StreamT[bytes]
    ) -> None:
        self.config = config
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

    def published_at(self, key: bytes) -> float | None:
        at = self.pending.get(key)
        return at if at is not None else self.table.published_at(key)

    async def take(self, event: EventT) -> None:
        message = event.message
        partition, offset = message.partition, message.offset
        if offset <= self.table.recorded_through(partition):
            # Recorded before a crash, read again because the commit lagged: done already.
            await self.stream.ack(event)
            return
        try:
            candidates = sightings.decode_candidates(event.value)
        except (msgspec.DecodeError, BrokenFrame) as exc:
            logger.error(
                "partition=%d offset=%d not candidates, skipped: %s", partition, offset, exc
            )
            await self.stream.ack(event)
            return
        now = time.time()
        sorting = sightings.sort_candidates(candidates.jobs, self.published_at, now - self.window)
        for key in sorting.first:
            self.pending[key] = now
        counted = Counted(candidates.task_id, candidates.source, candidates.source_resets)
        step = Step(event, partition, offset, counted, now, sorting.first, sorting.duplicates)
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
        counts = _counts(steps)
        await self._until_sent("reporting the counts", lambda: self._report(counts))
        await self._until_sent("recording the first sightings", lambda: self._record(steps))
        pending = self.pending
        for step in steps:
            for key in step.first:
                if pending.get(key) == step.at:
                    del pending[key]
            await self.stream.ack(step.event)
            self.steps.popleft()
        self._settled.set()
        for counted, (published, duplicates) in counts.items():
            metrics.ROWS.labels(counted.task_id, "published").inc(published)
            metrics.ROWS.labels(counted.task_id, "duplicate").inc(duplicates)

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

    async def _report(self, counts: dict[Counted, tuple[int, int]]) -> list[asyncio.Future[Any]]:
        """One `deduped` command per task: how many of its jobs were forwarded, how many were
        duplicates."""
        at = datetime.now(self.config.tz).isoformat(timespec="seconds")
        partitions = self.config.kafka.partitions
        by_partition: dict[int, list[sightings.Message]] = {}
        for counted, (published, duplicates) in counts.items():
            task_id = counted.task_id
            command = Command(
                task_id=task_id,
                action="deduped",
                at=at,
                published=published,
                duplicates=duplicates,
                source=counted.source,
                source_resets=counted.source_resets,
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


def _counts(steps: list[Step]) -> dict[Counted, tuple[int, int]]:
    """Per task (and progress): (jobs forwarded, duplicates)."""
    counts: dict[Counted, tuple[int, int]] = {}
    for step in steps:
        published, duplicates = counts.get(step.progress, (0, 0))
        counts[step.progress] = (published + len(step.first), duplicates + step.duplicates)
    return counts
