"""GET /consume's consumers: one per consumer group, each read guarded by a lock, kept in a
pool that joins the default group as soon as job_data exists and closes idle ones.

The groups /consume moves are its own: the default group (`kafka.consumer_group`), and for
`group=<name>` the Kafka group `<app.name>.http.<name>`, a name no consumer of job_data that
follows the README uses, so that no call can move the offsets of a group a program reads
job_data with directly.

The pool's slots (`app.max_consumer_groups`) are shared fairly: when they are all taken, a new
group takes the slot of one idle for RECLAIM_IDLE seconds, or else, if its caller (the client
address) holds less than its share, a slot of the caller holding the most beyond theirs. One
client can therefore not keep the others out; and a group nobody calls is closed after
IDLE_GROUP_SECONDS.

With several workers, a group's consumer lives only on the group's gateway
(`jobstream.web.forwarding`), so that it holds every partition of job_data: a worker that stops
being a group's gateway (a rebalance) closes its consumer at once, which hands the partitions
to the new gateway's.

A read takes up to `batch_size` messages, hands them to the caller to deliver, and commits them
only once they were delivered. If delivery fails (the client left, the worker is stopping), the
consumer seeks back to where the read started, so the next call gets the same messages: nothing
is skipped, and nothing is answered twice while the worker runs. Delivery is at least once: a
client that loses an answer after it left the worker has lost it, and a worker that dies between
answering and committing answers those messages again after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord
from mode import Service

from jobstream import metrics
from jobstream.broker.clients import client_options, start_or_close, stop_consumer
from jobstream.broker.probe import BrokerProbe
from jobstream.config import Config
from jobstream.errors import BrokerUnavailable
from jobstream.web.responses import RETRY_SOON, HttpError, require_running, unavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")
# Waiting for data is sliced so that a caller who left, or a shutdown, ends the wait quickly.
WAIT_SLICE = 0.2
# A /consume group other than the default one is closed after this long without a call.
IDLE_GROUP_SECONDS = 120.0
# Once every slot is taken, a group idle this long gives its slot to a new one.
RECLAIM_IDLE = 15.0
# Each caller's share of the slots, when they are contended: a quarter (4 of the default 16).
SHARE_OF_SLOTS = 4
# The Kafka group of `group=<name>`: `<app.name>` then this, then the name.
HTTP_GROUP_INFIX = ".http."
# How often the pool looks whether this worker is still the gateway of its groups.
GATEWAY_CHECK = 0.25


class _Joined(ConsumerRebalanceListener):
    def __init__(self, reader: GroupReader) -> None:
        self.reader = reader

    def on_partitions_revoked(self, revoked: Any) -> None:
        pass

    def on_partitions_assigned(self, assigned: Any) -> None:
        logger.info(
            "group=%s /consume consumer assigned partitions %s",
            self.reader.group,
            sorted(tp.partition for tp in assigned),
        )
        self.reader.joined.set()


class GroupReader:
    """The one consumer of a group on this worker; `read` is the only way to use it."""

    def __init__(
        self,
        group: str,
        topic: str,
        *,
        kafka_group: str,
        caller: str,
        consumer_options: dict[str, Any],
        probe: BrokerProbe,
        closing: asyncio.Event,
    ) -> None:
        self.group = group  # as /consume names it
        self.kafka_group = kafka_group
        self.caller = caller  # who made it: its slot counts towards their share
        self.closed = False
        self.topic = topic
        self.probe = probe
        self.join_timeout = probe.timeout
        self.closing = closing
        self.lock = asyncio.Lock()
        self.joined = asyncio.Event()
        self.last_used = time.monotonic()
        self.consumer = AIOKafkaConsumer(
            group_id=kafka_group,
            client_id=f"jobstream-consume-{kafka_group}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # Calls may be minutes apart; staying in the group between them avoids a rejoin
            # (seconds) on the next call. Liveness is kept by the heartbeat thread.
            max_poll_interval_ms=3_600_000,
            **consumer_options,
        )

    async def start(self) -> None:
        await self.consumer.start()
        # Subscribing after start lets the group join run in the background.
        self.consumer.subscribe([self.topic], listener=_Joined(self))

    async def stop(self) -> None:
        self.closed = True
        # Let a read in progress finish (each is bounded) before the consumer goes.
        try:
            async with asyncio.timeout(5.0):
                await self.lock.acquire()
        except TimeoutError:
            logger.warning("group=%s stopping while a read is still in progress", self.group)
        else:
            self.lock.release()
        await stop_consumer(self.consumer)

    async def read(
        self,
        batch_size: int,
        wait: float,
        deliver: Callable[[list[ConsumerRecord]], Awaitable[tuple[T, bool]]],
        gone: Callable[[], bool],
    ) -> T:
        """Fetch up to `batch_size` messages (waiting up to `wait` s for the first one),
        `deliver` them, and commit them if `deliver` reports success."""
        async with self.lock:
            if self.closed:
                # Its slot went to another group between the lookup and this read.
                raise unavailable(f"consumer group {self.group!r} was closed; retry", RETRY_SOON)
            self.last_used = time.monotonic()
            await self._wait_joined()
            records = await self._fetch(batch_size, wait, gone)
            try:
                result, delivered = await deliver(records)
            except BaseException:
                self._rewind(records)
                raise
            if not delivered:
                self._rewind(records)
                return result
            await self._commit(records)
            self.last_used = time.monotonic()
            return result

    async def _wait_joined(self) -> None:
        if self.joined.is_set():
            return
        try:
            await self.probe.bounded(self.joined.wait(), self.join_timeout)
        except TimeoutError:
            raise unavailable(
                f"consumer group {self.group!r} is still joining; retry in a few seconds", 2
            ) from None

    async def _fetch(
        self, batch_size: int, wait: float, gone: Callable[[], bool]
    ) -> list[ConsumerRecord]:
        deadline = time.monotonic() + wait
        while True:
            remaining = deadline - time.monotonic()
            batch = await self.consumer.getmany(
                timeout_ms=int(max(0.0, min(remaining, WAIT_SLICE)) * 1000),
                max_records=batch_size,
            )
            if not batch and self.probe.broker_up is False:
                raise unavailable("Kafka is unreachable; retry later")
            if batch or remaining <= WAIT_SLICE or gone() or self.closing.is_set():
                # One partition after another, each in offset order.
                return [r for tp in sorted(batch, key=lambda t: t.partition) for r in batch[tp]]

    def _rewind(self, records: list[ConsumerRecord]) -> None:
        first: dict[TopicPartition, int] = {}
        for record in records:
            first.setdefault(TopicPartition(record.topic, record.partition), record.offset)
        for tp, offset in first.items():
            # A partition revoked meanwhile resumes from the committed offset on its new owner.
            with contextlib.suppress(IllegalStateError, AssertionError):
                self.consumer.seek(tp, offset)
        if first:
            logger.info(
                "group=%s answer not delivered; rewound %s",
                self.group,
                ", ".join(f"partition={tp.partition} offset={o}" for tp, o in first.items()),
            )

    async def _commit(self, records: list[ConsumerRecord]) -> None:
        if not records:
            return
        offsets: dict[TopicPartition, int] = {}
        for record in records:
            offsets[TopicPartition(record.topic, record.partition)] = record.offset + 1
        try:
            await self.probe.bounded(self.consumer.commit(offsets), self.join_timeout)
        except (KafkaError, TimeoutError, HttpError, BrokerUnavailable) as exc:
            # Answered but not committed: these may be answered again after a restart or a
            # rebalance (at least once). The position here has moved on, so not on this worker.
            logger.warning(
                "group=%s commit of %s failed: %r",
                self.group,
                ", ".join(f"partition={tp.partition} offset={o}" for tp, o in offsets.items()),
                exc,
            )
            return
        metrics.CONSUMED.labels(self.group).inc(len(records))


class ReaderPool(Service):
    """One GroupReader per /consume group, at most `app.max_consumer_groups`, shared fairly
    (see the module). The default group joins as soon as job_data exists, so the first
    /consume does not wait for it; another group joins on its first call and is closed after
    IDLE_GROUP_SECONDS without one. Only groups this worker is the gateway of (`is_gateway`)
    are kept."""

    def __init__(
        self,
        config: Config,
        probe: BrokerProbe,
        group_options: dict[str, Any],
        is_gateway: Callable[[str], bool] = lambda group: True,
        **kwargs: object,
    ) -> None:
        self.probe = probe
        self.is_gateway = is_gateway
        self.default_group = config.kafka.consumer_group
        self.http_prefix = http_group_prefix(config)
        self.limit = config.app.max_consumer_groups
        self.share = max(1, self.limit // SHARE_OF_SLOTS)
        self.readers: dict[str, GroupReader] = {}
        self._consumer_options = {**client_options(config), **group_options}
        self._lock = asyncio.Lock()
        # Set at shutdown: every wait for data ends.
        self._closing = asyncio.Event()
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def kafka_group(self, group: str) -> str:
        """The Kafka group behind a /consume group name."""
        return group if group == self.default_group else self.http_prefix + group

    def stop_waiting(self) -> None:
        """End every wait for data now (shutdown: the answers go out before the readers stop)."""
        self._closing.set()

    async def on_stop(self) -> None:
        self.stop_waiting()
        for name in list(self.readers):
            await self._close(name, "the worker stops")

    async def reader(self, group: str, caller: str = "") -> GroupReader:
        """The reader of `group`, started for `caller` (a client address) if it has none."""
        require_running(self)
        self.probe.require_topic()
        return self.readers.get(group) or await self._add(group, caller)

    async def _add(self, group: str, caller: str) -> GroupReader:
        async with self._lock:
            if group not in self.readers:
                await self._make_room(caller)
                self.readers[group] = await self._start_reader(group, caller)
            return self.readers[group]

    def held_by(self, caller: str) -> int:
        return sum(1 for r in self.readers.values() if r.caller == caller)

    async def _make_room(self, caller: str) -> None:
        if len(self.readers) < self.limit:
            return
        victim = self._reclaimable(caller)
        if victim is not None:
            await self._close(victim.group, f"its slot went to a new group of {caller or '?'}")
            return
        held = self.held_by(caller)
        if held >= self.share:
            raise HttpError(
                429,
                f"this client already holds {held} of the {self.limit} consumer groups "
                "(app.max_consumer_groups) while they are all in use; reuse one of its groups, "
                f"or retry when one has been idle for {RECLAIM_IDLE:.0f}s",
                {"Retry-After": str(int(RECLAIM_IDLE))},
            )
        raise unavailable(
            f"this worker already serves {self.limit} consumer groups (app.max_consumer_groups), "
            "all in use; reuse one, or retry shortly",
            int(RECLAIM_IDLE),
        )

    def _reclaimable(self, caller: str) -> GroupReader | None:
        """The group whose slot a new group of `caller` may take: the least recently used of
        those idle for RECLAIM_IDLE; else, while `caller` holds less than its share, the least
        recently used of the caller holding the most beyond theirs. Never the default group,
        never one in the middle of a read."""
        now = time.monotonic()
        free = sorted(
            (
                r
                for r in self.readers.values()
                if r.group != self.default_group and not r.lock.locked()
            ),
            key=lambda r: r.last_used,
        )
        for reader in free:
            if now - reader.last_used >= RECLAIM_IDLE:
                return reader
        if self.held_by(caller) >= self.share:
            return None
        counts = {r.caller: self.held_by(r.caller) for r in free if r.caller != caller}
        over = [c for c, n in counts.items() if n > self.share]
        if not over:
            return None
        greediest = max(over, key=lambda c: counts[c])
        return next(r for r in free if r.caller == greediest)

    async def _start_reader(self, group: str, caller: str) -> GroupReader:
        reader = GroupReader(
            group,
            self.probe.topic,
            kafka_group=self.kafka_group(group),
            caller=caller,
            consumer_options=self._consumer_options,
            probe=self.probe,
            closing=self._closing,
        )
        try:
            started = start_or_close(reader.start(), reader.stop)
            await self.probe.bounded(started, self.probe.timeout)
        except (KafkaError, OSError, TimeoutError) as exc:
            # Told once already when Kafka is known down or the worker stops (the outage's
            # story, the broker's exit); otherwise it is news.
            told = self.probe.unreachable_since is not None or self._closing.is_set()
            level = logging.DEBUG if told else logging.WARNING
            logger.log(level, "group=%s cannot start a /consume consumer: %s", group, exc)
            raise unavailable("Kafka is unreachable; retry later") from None
        logger.info(
            "group=%s /consume consumer started (Kafka group %s)", group, reader.kafka_group
        )
        return reader

    async def _close(self, group: str, why: str) -> None:
        reader = self.readers.pop(group, None)
        if reader is None:
            return
        logger.info("group=%s /consume consumer closed: %s", group, why)
        if group != self.default_group:
            # Its counter goes with it: the label values stay as few as the slots.
            with contextlib.suppress(KeyError):
                metrics.CONSUMED.remove(group)
        await reader.stop()

    @Service.task
    async def _keep_gateway_groups(self) -> None:
        """Join the default group early where this worker is its gateway; leave every group it
        is no longer the gateway of."""
        while not self.should_stop:
            for name in list(self.readers):
                if not self.is_gateway(name):
                    async with self._lock:
                        await self._close(name, "another worker serves it")
            joining = self.default_group not in self.readers and self.is_gateway(self.default_group)
            if joining and self.probe.broker_up and self.probe.partitions:
                with contextlib.suppress(HttpError):
                    await self._add(self.default_group, "")
            await self.sleep(GATEWAY_CHECK)

    @Service.timer(IDLE_GROUP_SECONDS / 8)
    async def _close_idle_groups(self) -> None:
        now = time.monotonic()
        for name, reader in list(self.readers.items()):
            idle = now - reader.last_used
            if (
                name != self.default_group
                and idle > IDLE_GROUP_SECONDS
                and not reader.lock.locked()
            ):
                async with self._lock:
                    await self._close(name, f"idle for {idle:.0f}s")


def http_group_prefix(config: Config) -> str:
    """What `group=<name>` is prefixed with in Kafka: no direct consumer of job_data uses it."""
    return config.app.name + HTTP_GROUP_INFIX


READERS = web.AppKey("jobstream.readers", ReaderPool)
