"""GET /consume's consumers: one per consumer group, each read guarded by a lock, kept in a
pool that joins the default group as soon as job_data exists and closes idle ones.

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
from jobstream.broker.clients import client_options, start_or_close
from jobstream.broker.probe import BrokerProbe
from jobstream.config import Config
from jobstream.errors import BrokerUnavailable
from jobstream.web.responses import HttpError, require_running, unavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")
# Waiting for data is sliced so that a caller who left, or a shutdown, ends the wait quickly.
WAIT_SLICE = 0.2
# A /consume group other than the default one is closed after this long without a call.
IDLE_GROUP_SECONDS = 600.0
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
        consumer_options: dict[str, Any],
        probe: BrokerProbe,
        closing: asyncio.Event,
    ) -> None:
        self.group = group
        self.topic = topic
        self.probe = probe
        self.join_timeout = probe.timeout
        self.closing = closing
        self.lock = asyncio.Lock()
        self.joined = asyncio.Event()
        self.last_used = time.monotonic()
        self.consumer = AIOKafkaConsumer(
            group_id=group,
            client_id=f"jobstream-consume-{group}",
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
        # Let a read in progress finish (each is bounded) before the consumer goes.
        try:
            async with asyncio.timeout(5.0):
                await self.lock.acquire()
        except TimeoutError:
            logger.warning("group=%s stopping while a read is still in progress", self.group)
        else:
            self.lock.release()
        await self.consumer.stop()

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
    """One GroupReader per /consume group, at most `app.max_consumer_groups`. The default group
    joins as soon as job_data exists, so the first /consume does not wait for it; another
    group joins on its first call and is closed after IDLE_GROUP_SECONDS without one. Only
    groups this worker is the gateway of (`is_gateway`) are kept."""

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
        self.limit = config.app.max_consumer_groups
        self.readers: dict[str, GroupReader] = {}
        self._consumer_options = {**client_options(config), **group_options}
        self._lock = asyncio.Lock()
        # Set at shutdown: every wait for data ends.
        self._closing = asyncio.Event()
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def stop_waiting(self) -> None:
        """End every wait for data now (shutdown: the answers go out before the readers stop)."""
        self._closing.set()

    async def on_stop(self) -> None:
        self.stop_waiting()
        for reader in list(self.readers.values()):
            await reader.stop()
        self.readers.clear()

    async def reader(self, group: str) -> GroupReader:
        require_running(self)
        self.probe.require_topic()
        return self.readers.get(group) or await self._add(group)

    async def _add(self, group: str) -> GroupReader:
        async with self._lock:
            if group not in self.readers:
                self.readers[group] = await self._start_reader(group)
            return self.readers[group]

    async def _start_reader(self, group: str) -> GroupReader:
        if len(self.readers) >= self.limit:
            raise unavailable(
                f"this worker already serves {self.limit} consumer groups "
                "(app.max_consumer_groups); reuse one, or retry when an idle one closes"
            )
        reader = GroupReader(
            group,
            self.probe.topic,
            consumer_options=self._consumer_options,
            probe=self.probe,
            closing=self._closing,
        )
        try:
            started = start_or_close(reader.start(), reader.stop)
            await self.probe.bounded(started, self.probe.timeout)
        except (KafkaError, OSError, TimeoutError) as exc:
            logger.warning("group=%s cannot start a /consume consumer: %s", group, exc)
            raise unavailable("Kafka is unreachable; retry later") from None
        logger.info("group=%s /consume consumer started", group)
        return reader

    @Service.task
    async def _keep_gateway_groups(self) -> None:
        """Join the default group early where this worker is its gateway; leave every group it
        is no longer the gateway of."""
        while not self.should_stop:
            for name, reader in list(self.readers.items()):
                if not self.is_gateway(name):
                    async with self._lock:
                        self.readers.pop(name, None)
                    logger.info("group=%s /consume consumer closed: another worker serves it", name)
                    await reader.stop()
            joining = self.default_group not in self.readers and self.is_gateway(self.default_group)
            if joining and self.probe.broker_up and self.probe.partitions:
                with contextlib.suppress(HttpError):
                    await self._add(self.default_group)
            await self.sleep(GATEWAY_CHECK)

    @Service.timer(60.0)
    async def _close_idle_groups(self) -> None:
        now = time.monotonic()
        for name, reader in list(self.readers.items()):
            if name != self.default_group and now - reader.last_used > IDLE_GROUP_SECONDS:
                async with self._lock:
                    self.readers.pop(name, None)
                logger.info(
                    "group=%s /consume consumer closed after %.0fs idle",
                    name,
                    now - reader.last_used,
                )
                await reader.stop()


READERS = web.AppKey("jobstream.readers", ReaderPool)
