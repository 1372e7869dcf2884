"""The open GET /consume/stream connections, in one place: at most `app.max_streams`, each with
its own Kafka consumer (no group, so a stream never moves a /consume group), and every one of
them ended when the worker shuts down."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp_sse import EventSourceResponse
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from mode import Service

from jobstream import metrics
from jobstream.config import Config
from jobstream.web.kafka_clients import client_options
from jobstream.web.probe import BrokerProbe
from jobstream.web.responses import require_running, unavailable

# What a stream buffers ahead of its client; aiokafka's defaults (1 MiB per partition, 50 MiB
# per fetch) would cost hundreds of MiB with a hundred streams.
STREAM_FETCH_BYTES = 256 * 1024


class OpenStream:
    """One stream: its consumer and, once its headers are sent, its response."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self.response: EventSourceResponse | None = None
        self.ended = False

    def attach(self, response: EventSourceResponse) -> None:
        self.response = response
        if self.ended:
            self.end()

    def end(self) -> None:
        self.ended = True
        if self.response is not None:
            with contextlib.suppress(RuntimeError):
                self.response.stop_streaming()


class StreamRegistry(Service):
    """Every open stream; `end_all` (at shutdown) ends them and refuses new ones."""

    def __init__(self, config: Config, probe: BrokerProbe, **kwargs: object) -> None:
        self.limit = config.app.max_streams
        self.probe = probe
        self.timeout = config.kafka.http_timeout
        self._options = client_options(config)
        self._open: set[OpenStream] = set()
        self._ending = False
        super().__init__(**kwargs)  # type: ignore[arg-type]

    @property
    def count(self) -> int:
        """Streams open now."""
        return len(self._open)

    @contextlib.asynccontextmanager
    async def open(self, tps: list[TopicPartition]) -> AsyncIterator[OpenStream]:
        """A place for one stream, with its consumer assigned every partition of `tps`; a 503
        when all `app.max_streams` places are taken or Kafka does not answer."""
        require_running(self)
        if self._ending:
            raise unavailable("the worker is stopping; retry shortly")
        if len(self._open) >= self.limit:
            raise unavailable(f"too many open streams (limit {self.limit}); retry later")
        consumer = AIOKafkaConsumer(
            group_id=None,
            enable_auto_commit=False,
            # Only used when a resumed position no longer exists (a wiped broker).
            auto_offset_reset="earliest",
            client_id="jobstream-sse",
            max_partition_fetch_bytes=STREAM_FETCH_BYTES,
            fetch_max_bytes=STREAM_FETCH_BYTES * 2,
            **self._options,
        )
        stream = OpenStream(consumer)
        self._open.add(stream)
        metrics.STREAMS_OPEN.set(len(self._open))
        try:
            try:
                await self.probe.bounded(consumer.start(), self.timeout)
            except (KafkaError, OSError, TimeoutError):
                raise unavailable("Kafka is unreachable; retry later") from None
            consumer.assign(tps)
            yield stream
        finally:
            self._open.discard(stream)
            metrics.STREAMS_OPEN.set(len(self._open))
            await consumer.stop()

    def end_all(self) -> None:
        """End every open stream, and refuse new ones (shutdown)."""
        self._ending = True
        for stream in list(self._open):
            stream.end()

    async def on_stop(self) -> None:
        self.end_all()


STREAMS = web.AppKey("jobstream.streams", StreamRegistry)
