"""GET /consume's consumers: one per consumer group, each read guarded by a lock.

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

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord

from jobstream import metrics
from jobstream.web.base import ApiError

logger = logging.getLogger(__name__)

T = TypeVar("T")
# Waiting for data is sliced so that a caller who left, or a shutdown, ends the wait quickly.
WAIT_SLICE = 0.2


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
        join_timeout: float,
        closing: asyncio.Event,
    ) -> None:
        self.group = group
        self.topic = topic
        self.join_timeout = join_timeout
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
            async with asyncio.timeout(self.join_timeout):
                await self.joined.wait()
        except TimeoutError:
            raise ApiError(
                503,
                f"consumer group {self.group!r} is still joining; retry in a few seconds",
                {"Retry-After": "2"},
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
            async with asyncio.timeout(self.join_timeout):
                await self.consumer.commit(offsets)
        except (KafkaError, TimeoutError) as exc:
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
