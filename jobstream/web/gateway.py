"""The worker's Kafka clients behind the HTTP views, started and stopped with the app.

- a metadata client that checks every few seconds that the broker answers and job_data exists,
  so a view facing an outage answers 503 at once instead of waiting;
- one group consumer per `/consume` group (`GroupReader`), the default group started up front;
- the lag probe (`jobstream.web.lag`), for the lag on /status and /metrics;
- the open SSE streams, so that shutdown can end them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from aiohttp_sse import EventSourceResponse
from aiokafka import AIOKafkaClient, AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from mode import Service

from jobstream import metrics
from jobstream.app import app
from jobstream.web.base import ApiError
from jobstream.web.brokers import client_options, group_options
from jobstream.web.lag import Lag, LagProbe
from jobstream.web.readers import GroupReader

logger = logging.getLogger(__name__)

BROKER_CHECK_INTERVAL = 2.0
LAG_CACHE_SECONDS = 1.0
# A /consume group other than the default one is closed after this long without a call.
IDLE_GROUP_SECONDS = 600.0
RETRY_AFTER = {"Retry-After": "5"}
STREAM_FETCH_BYTES = 256 * 1024

_current: Gateway | None = None


def current() -> Gateway:
    """The running gateway, or a 503 while the worker is still starting or already stopping."""
    if _current is None or not _current.accepting:
        raise ApiError(503, "the worker is starting or stopping; retry shortly", RETRY_AFTER)
    return _current


def running() -> Gateway | None:
    return _current if _current is not None and _current.accepting else None


class Gateway(Service):
    """Owns every Kafka client the HTTP views use; `accepting` is False outside start..stop."""

    def __post_init__(self) -> None:
        global _current
        self.topic = app.settings.kafka.topic
        self.timeout = app.settings.kafka.http_timeout
        self.accepting = False
        self.broker_up = False
        self.partitions: int | None = None
        self.readers: dict[str, GroupReader] = {}
        self.streams: set[EventSourceResponse] = set()
        self._stream_slots = 0
        self._closing = asyncio.Event()
        self._client: AIOKafkaClient | None = None
        self._lag_probe = LagProbe()
        self._readers_lock = asyncio.Lock()
        self._lag: tuple[float, Lag] | None = None
        self._lag_task: asyncio.Task[Lag] | None = None
        _current = self

    # -- lifecycle ---------------------------------------------------------------------------

    async def on_start(self) -> None:
        if not app.settings.app.admin_token:
            logger.warning(
                "app.admin_token (ADMIN_TOKEN) is not set: anyone who reaches port %d can "
                "POST /crawl/start and /crawl/stop",
                app.settings.app.web_port,
            )
        self.accepting = True
        await self.check_broker()

    async def on_stop(self) -> None:
        self.accepting = False
        self.stop_streams()
        for reader in list(self.readers.values()):
            await reader.stop()
        self.readers.clear()
        await self._lag_probe.close()
        if self._client is not None:
            await self._client.close()

    def stop_streams(self) -> None:
        """End every open SSE stream and every wait for data (shutdown)."""
        self._closing.set()
        for response in list(self.streams):
            with contextlib.suppress(RuntimeError):
                response.stop_streaming()

    @Service.task
    async def _watch_broker(self) -> None:
        while not self.should_stop:
            await self.sleep(BROKER_CHECK_INTERVAL)
            await self.check_broker()

    @Service.timer(60.0)
    async def _close_idle_groups(self) -> None:
        now = time.monotonic()
        default = app.settings.kafka.consumer_group
        for name, reader in list(self.readers.items()):
            if name != default and now - reader.last_used > IDLE_GROUP_SECONDS:
                async with self._readers_lock:
                    self.readers.pop(name, None)
                logger.info(
                    "group=%s /consume consumer closed after %.0fs idle",
                    name,
                    now - reader.last_used,
                )
                await reader.stop()

    async def check_broker(self) -> None:
        """Metadata round trip: is the broker there, and how many partitions has job_data?

        Asks for every topic's metadata, which never auto-creates job_data with the broker's
        default partition count (asking for job_data by name could, before the worker
        declares it)."""
        try:
            async with asyncio.timeout(self.timeout):
                if self._client is None:
                    client = AIOKafkaClient(client_id="jobstream-http", **client_options())
                    try:
                        await client.bootstrap()
                    except BaseException:
                        await client.close()
                        raise
                    self._client = client
                cluster = await self._client.fetch_all_metadata()
        except (KafkaError, OSError, TimeoutError) as exc:
            if self.broker_up:
                logger.warning("Kafka is unreachable from the HTTP views: %s", exc)
            self.broker_up = False
        else:
            if not self.broker_up:
                logger.info("Kafka reachable from the HTTP views")
            self.broker_up = True
            found = cluster.partitions_for_topic(self.topic)
            self.partitions = len(found) if found else None
            if self.partitions and app.settings.kafka.consumer_group not in self.readers:
                # Join the default group now: the first /consume should not wait for it.
                with contextlib.suppress(ApiError):
                    await self.reader(app.settings.kafka.consumer_group)
        metrics.KAFKA_UP.set(1.0 if self.broker_up else 0.0)

    # -- what views ask for ------------------------------------------------------------------

    def require_topic(self) -> list[TopicPartition]:
        """job_data's partitions, or a 503 when the broker or the topic is not there."""
        if not self.broker_up:
            raise ApiError(503, "Kafka is unreachable; retry later", RETRY_AFTER)
        if not self.partitions:
            raise ApiError(
                503, f"topic {self.topic} does not exist yet; the crawl creates it", RETRY_AFTER
            )
        return [TopicPartition(self.topic, p) for p in range(self.partitions)]

    async def reader(self, group: str) -> GroupReader:
        self.require_topic()
        reader = self.readers.get(group)
        if reader is not None:
            return reader
        async with self._readers_lock:
            reader = self.readers.get(group)
            if reader is None:
                limit = app.settings.app.max_consumer_groups
                if len(self.readers) >= limit:
                    raise ApiError(
                        503,
                        f"this worker already serves {limit} consumer groups "
                        "(app.max_consumer_groups); reuse one, or retry when an idle one closes",
                        RETRY_AFTER,
                    )
                reader = GroupReader(
                    group,
                    self.topic,
                    consumer_options={**client_options(), **group_options()},
                    join_timeout=self.timeout,
                    closing=self._closing,
                )
                try:
                    async with asyncio.timeout(self.timeout):
                        await reader.start()
                except (KafkaError, OSError, TimeoutError) as exc:
                    logger.warning("group=%s cannot start a /consume consumer: %s", group, exc)
                    await reader.stop()
                    raise ApiError(503, "Kafka is unreachable; retry later", RETRY_AFTER) from None
                self.readers[group] = reader
                logger.info("group=%s /consume consumer started", group)
        return reader

    async def stream_consumer(self) -> AIOKafkaConsumer:
        """A consumer of every job_data partition with no group: an SSE stream's own."""
        tps = self.require_topic()
        consumer = AIOKafkaConsumer(
            group_id=None,
            enable_auto_commit=False,
            # Only used when a resumed position no longer exists (a wiped broker).
            auto_offset_reset="earliest",
            client_id="jobstream-sse",
            # What a stream buffers ahead of its client; the defaults (1 MiB per partition,
            # 50 MiB per fetch) would cost hundreds of MiB with a hundred streams.
            max_partition_fetch_bytes=STREAM_FETCH_BYTES,
            fetch_max_bytes=STREAM_FETCH_BYTES * 2,
            **client_options(),
        )
        try:
            async with asyncio.timeout(self.timeout):
                await consumer.start()
        except (KafkaError, OSError, TimeoutError):
            await consumer.stop()
            raise ApiError(503, "Kafka is unreachable; retry later", RETRY_AFTER) from None
        consumer.assign(tps)
        return consumer

    @contextlib.asynccontextmanager
    async def stream_slot(self) -> AsyncIterator[None]:
        """One of app.max_streams places for an SSE stream; a 503 when none is free."""
        limit = app.settings.app.max_streams
        if self._stream_slots >= limit:
            raise ApiError(503, f"too many open streams (limit {limit}); retry later", RETRY_AFTER)
        self._stream_slots += 1
        metrics.STREAMS_OPEN.set(self._stream_slots)
        try:
            yield
        finally:
            self._stream_slots -= 1
            metrics.STREAMS_OPEN.set(self._stream_slots)

    @property
    def open_streams(self) -> int:
        return self._stream_slots

    # -- lag ---------------------------------------------------------------------------------

    async def lag(self) -> Lag:
        """The default group's lag, measured at most once a second however often it is asked."""
        if self._lag is not None and time.monotonic() - self._lag[0] < LAG_CACHE_SECONDS:
            return self._lag[1]
        if self._lag_task is None or self._lag_task.done():
            self._lag_task = asyncio.create_task(self._measure_lag())
        return await asyncio.shield(self._lag_task)

    async def true_end_offsets(self) -> dict[TopicPartition, int]:
        tps = self.require_topic()
        async with asyncio.timeout(self.timeout):
            return await self._lag_probe.true_end_offsets(tps)

    async def _measure_lag(self) -> Lag:
        group = app.settings.kafka.consumer_group
        try:
            tps = self.require_topic()
            async with asyncio.timeout(self.timeout):
                lag = await self._lag_probe.measure(group, tps)
        except ApiError as exc:
            lag = Lag(None, error=exc.detail)
        except (KafkaError, OSError, TimeoutError) as exc:
            logger.warning("group=%s lag not measured: %r", group, exc)
            lag = Lag(None, error="Kafka did not answer in time")
        except Exception:
            logger.exception("group=%s lag not measured", group)
            lag = Lag(None, error="internal error; see the worker log")
        else:
            metrics.CONSUMER_LAG.labels(group).set(lag.total or 0)
        self._lag = (time.monotonic(), lag)
        return lag
