"""The live end of job_data, read once per worker and fanned out to every live SSE stream.

One consumer (no group, nothing committed) reads every partition from the true end onwards.
Each fetch is encoded once as SSE event bytes (`jobstream.web.sse.events`) and the same bytes object
is queued for every subscriber: a hundred streams cost one Kafka read and one encoding per
message, plus one write per stream per fetch. Event ids are the tail's position in every
partition, the same ids a stream with its own consumer would send from there, so a client can
resume any of them with Last-Event-ID.

A subscriber starts at the tail's position when it subscribes. Its queue is bounded in bytes
(`QUEUE_BYTES`; the chunks themselves are shared, so this bounds how far behind a client may
fall, not memory per client): a subscriber that overflows is cut off at once, through its
`on_overflow`, and never slows the tail or the others. Its client reconnects with the last id
it received and catches up on a reader of its own (`jobstream.web.sse.stream`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from jobstream.broker.clients import stream_reader
from jobstream.broker.probe import BrokerProbe
from jobstream.web.sse import events, positions

logger = logging.getLogger(__name__)

# How far behind the tail a stream may fall before it is cut off: about 6 s of 2,000 jobs/s of
# 700 bytes. The chunks are shared by all subscribers, so many slow ones cost little memory.
QUEUE_BYTES = 8 * 1024 * 1024
# How long a read waits for messages (a stream then looks again whether its client is still
# there), and how many it takes at most.
POLL_MS = 250
MAX_EVENTS_PER_POLL = 500
# What the tail buffers ahead; aiokafka's defaults (1 MiB per partition) suit it too, but a
# bounded fetch keeps one poll's chunk small enough to write at once.
FETCH_BYTES = 512 * 1024


class Subscription:
    """One live stream's place at the tail: the events queued for it since `start`."""

    def __init__(self, start: dict[int, int], limit: int, on_overflow: Callable[[], None]):
        self.start = dict(start)
        self.last_id = positions.encode(start)
        self.overflowed = False
        self.ended = False
        self._limit = limit
        self._on_overflow = on_overflow
        self._chunks: deque[bytes] = deque()
        self._bytes = 0
        self._count = 0
        self._ready = asyncio.Event()

    def put(self, chunk: bytes, count: int, last_id: str) -> None:
        if self.overflowed or self.ended:
            return
        # A stream with nothing queued is not behind, however large one fetch is.
        if self._chunks and self._bytes + len(chunk) > self._limit:
            self.overflowed = True
            self._ready.set()
            self._on_overflow()
            return
        self._chunks.append(chunk)
        self._bytes += len(chunk)
        self._count += count
        self.last_id = last_id
        self._ready.set()

    def end(self) -> None:
        self.ended = True
        self._ready.set()

    async def take(self, wait: float) -> tuple[bytes, int, str]:
        """Everything queued, as one chunk, how many events it holds and the last one's id;
        waits up to `wait` seconds for something (an empty chunk when nothing came, or the
        subscription ended)."""
        if not self._chunks and not (self.ended or self.overflowed):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._ready.wait()
        self._ready.clear()
        if self.overflowed or not self._chunks:
            return b"", 0, self.last_id
        chunk = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        count = self._count
        self._chunks.clear()
        self._bytes = self._count = 0
        return chunk, count, self.last_id


class Tail:
    """The shared reader: started by the first stream that asks for it, then read until the
    registry stops; it subscribes streams and feeds them."""

    def __init__(self, probe: BrokerProbe, options: dict[str, object], fetch_wait_ms: int):
        self.probe = probe
        self.position: dict[int, int] = {}
        self._options = options
        self._fetch_wait_ms = fetch_wait_ms
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self._subscribers: set[Subscription] = set()

    @property
    def subscribers(self) -> int:
        """Streams reading the tail now."""
        return len(self._subscribers)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self, tps: list[TopicPartition]) -> bool:
        """Make sure the tail reads `tps` (job_data as the probe sees it now); False when it
        reads another set of partitions for subscribers already there (a stream then reads on
        its own)."""
        async with self._starting:
            if self.running and len(self.position) == len(tps):
                return True
            if self.running and self._subscribers:
                return False
            await self.stop()
            consumer = stream_reader(
                self._options, "jobstream-sse-tail", self._fetch_wait_ms, FETCH_BYTES
            )
            try:
                await self.probe.bounded(consumer.start(), self.probe.timeout)
                consumer.assign(tps)
                ends = await self.probe.true_end_offsets()
            except BaseException:
                await consumer.stop()
                raise
            for tp, end in ends.items():
                consumer.seek(tp, end)
            self.position = {tp.partition: end for tp, end in ends.items()}
            self._consumer = consumer
            self._task = asyncio.create_task(self._read(consumer), name="sse-tail")
            logger.info("SSE tail started at %s", positions.encode(self.position))
            return True

    def subscribe(self, on_overflow: Callable[[], None]) -> Subscription:
        """A place at the tail from its position now (call `start` first)."""
        subscription = Subscription(self.position, QUEUE_BYTES, on_overflow)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)
        subscription.end()

    async def stop(self) -> None:
        for subscription in list(self._subscribers):
            self.unsubscribe(subscription)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=POLL_MS, max_records=MAX_EVENTS_PER_POLL)
                if not batch:
                    continue
                if not self._subscribers:
                    # Nobody to encode for: only keep the position.
                    for tp, records in batch.items():
                        self.position[tp.partition] = records[-1].offset + 1
                    continue
                chunk, count = events.job_events(batch, self.position)
                last_id = positions.encode(self.position)
                for subscription in list(self._subscribers):
                    subscription.put(chunk, count, last_id)
                # getmany returns at once while records are buffered: let the streams write
                # this chunk before the next one is queued.
                await asyncio.sleep(0)
        except Exception:
            # Its streams end; their clients resume with Last-Event-ID, and the next stream
            # starts a new tail.
            logger.exception("SSE tail failed at %s", positions.encode(self.position))
            for subscription in list(self._subscribers):
                self.unsubscribe(subscription)
