"""The open GET /consume/stream connections, in one place: at most `app.max_streams`, the shared
tail that live streams read (`jobstream.web.sse.tail`), the consumers of the streams that read on
their own (no group, so a stream never moves a /consume group), and every one of them ended
when the worker shuts down."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp_sse import EventSourceResponse
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from mode import Service

from jobstream import metrics
from jobstream.broker.clients import client_options, stream_reader
from jobstream.broker.probe import BrokerProbe
from jobstream.config import Config
from jobstream.web.responses import require_running, unavailable
from jobstream.web.sse.tail import Tail

logger = logging.getLogger(__name__)

# What a stream's own consumer buffers ahead of its client; aiokafka's defaults (1 MiB per
# partition, 50 MiB per fetch) would cost hundreds of MiB with a hundred streams.
STREAM_FETCH_BYTES = 256 * 1024


class OpenStream:
    """One stream: its own consumer while it has one and, once its headers are sent, its
    response."""

    def __init__(self) -> None:
        self.consumer: AIOKafkaConsumer | None = None
        self.response: EventSourceResponse | None = None
        self.request: web.BaseRequest | None = None
        self.ended = False
        self.cut = False

    def attach(self, request: web.BaseRequest, response: EventSourceResponse) -> None:
        self.request, self.response = request, response
        if self.cut:
            self.cut_off()
        elif self.ended:
            self.end()

    def end(self) -> None:
        self.ended = True
        if self.response is not None:
            with contextlib.suppress(RuntimeError):
                self.response.stop_streaming()

    def cut_off(self) -> None:
        """Drop the connection now: the client fell too far behind the tail. What it has not
        read is lost with the socket; it resumes from the last id it received."""
        self.cut = True
        self.end()
        if self.request is not None and self.request.transport is not None:
            self.request.transport.abort()


class StreamRegistry(Service):
    """Every open stream; `end_all` (at shutdown) ends them and refuses new ones."""

    def __init__(self, config: Config, probe: BrokerProbe, **kwargs: object) -> None:
        self.limit = config.app.max_streams
        self.probe = probe
        self.timeout = config.kafka.http_timeout
        self._options = client_options(config)
        self._fetch_wait_ms = config.kafka.fetch_max_wait_ms
        self.tail = Tail(probe, self._options, self._fetch_wait_ms)
        self._open: set[OpenStream] = set()
        self._ending = False
        super().__init__(**kwargs)  # type: ignore[arg-type]

    @property
    def count(self) -> int:
        """Streams open now."""
        return len(self._open)

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[OpenStream]:
        """A place for one stream; a 503 when all `app.max_streams` places are taken."""
        require_running(self)
        if self._ending:
            raise unavailable("the worker is stopping; retry shortly")
        if len(self._open) >= self.limit:
            raise unavailable(f"too many open streams (limit {self.limit}); retry later")
        stream = OpenStream()
        self._open.add(stream)
        metrics.STREAMS_OPEN.set(len(self._open))
        try:
            yield stream
        finally:
            self._open.discard(stream)
            metrics.STREAMS_OPEN.set(len(self._open))
            await self.close_reader(stream)

    async def own_reader(self, stream: OpenStream, tps: list[TopicPartition]) -> AIOKafkaConsumer:
        """A consumer of the stream's own, assigned every partition of `tps`; a 503 when Kafka
        does not answer."""
        consumer = stream_reader(
            self._options, "jobstream-sse", self._fetch_wait_ms, STREAM_FETCH_BYTES
        )
        stream.consumer = consumer
        try:
            await self.probe.bounded(consumer.start(), self.timeout)
        except (KafkaError, OSError, TimeoutError):
            raise unavailable("Kafka is unreachable; retry later") from None
        consumer.assign(tps)
        return consumer

    async def close_reader(self, stream: OpenStream) -> None:
        """Stop the stream's own consumer, if it has one (it caught up, or it ends)."""
        consumer, stream.consumer = stream.consumer, None
        if consumer is not None:
            await consumer.stop()

    def end_all(self) -> None:
        """End every open stream, and refuse new ones (shutdown)."""
        self._ending = True
        for stream in list(self._open):
            stream.end()

    async def on_stop(self) -> None:
        self.end_all()
        await self.tail.stop()


STREAMS = web.AppKey("jobstream.streams", StreamRegistry)
