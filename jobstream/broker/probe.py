"""What the HTTP views know of the broker: whether it answers, how many partitions job_data
has, its true end offsets, and the default consumer group's lag.

A metadata round trip every `kafka.probe_interval` seconds (2 by default), given three seconds
to answer, lets a view facing an outage answer 503 at once instead of waiting on Kafka, and
`bounded` cuts short every wait already in progress the moment the probe finds the broker gone.
The lag (for /status and /metrics) is measured at most once a second however often it is asked,
and a caller waits for a measurement at most LAG_WAIT seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import TypeVar

from aiokafka import AIOKafkaClient, TopicPartition
from aiokafka.errors import KafkaError
from mode import Service

from jobstream import metrics
from jobstream.broker.clients import client_options, start_or_close
from jobstream.broker.lag import Lag, LagProbe
from jobstream.config import Config
from jobstream.errors import BrokerUnavailable
from jobstream.logs import KafkaStory, error_text

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A metadata round trip takes milliseconds; one that has not answered after this long means the
# broker is gone or cut off.
CHECK_TIMEOUT = 3.0
LAG_CACHE_SECONDS = 1.0
# Longest a view waits for a lag measurement; the measurement goes on, and the next asker
# gets it.
LAG_WAIT = 2.0


class BrokerProbe(Service):
    """The broker as the views see it; `broker_up` and `partitions` are refreshed by `check`.

    What it finds is told to `story` (`jobstream.logs`): the log says when an outage starts and
    ends, and summarizes it meanwhile. Without one, the probe tells a story of its own."""

    def __init__(self, config: Config, story: KafkaStory | None = None, **kwargs: object) -> None:
        self.story = story or KafkaStory.for_config(config)
        self.topic = config.kafka.topic
        self.group = config.kafka.consumer_group
        self.timeout = config.kafka.http_timeout
        self.interval = config.kafka.probe_interval
        # None until the first round trip has answered either way.
        self.broker_up: bool | None = None
        # Wall-clock time of the first failed round trip of the outage going on (None while
        # the broker answers): what the dashboard and /status say the outage started at.
        self.unreachable_since: float | None = None
        self.partitions: int | None = None
        # Set while the broker is known to be down: what waits on Kafka stops waiting.
        self._down = asyncio.Event()
        self._options = client_options(config)
        self._client: AIOKafkaClient | None = None
        self._lag_probe = LagProbe(self._options)
        self._lag: tuple[float, Lag] | None = None
        self._lag_task: asyncio.Task[Lag] | None = None
        super().__init__(**kwargs)  # type: ignore[arg-type]

    async def on_start(self) -> None:
        await self.check()

    async def on_stop(self) -> None:
        if self._lag_task is not None:
            self._lag_task.cancel()
        await self._lag_probe.close()
        if self._client is not None:
            await self._client.close()

    @Service.task
    async def _keep_checking(self) -> None:
        while not self.should_stop:
            await self.sleep(self.interval)
            await self.check()

    async def check(self) -> None:
        """Metadata round trip: is the broker there, and how many partitions has job_data?

        Asks for every topic's metadata, which never auto-creates job_data with the broker's
        default partition count (asking for job_data by name could, before the worker
        declares it)."""
        try:
            async with asyncio.timeout(min(self.timeout, CHECK_TIMEOUT)):
                if self._client is None:
                    client = AIOKafkaClient(client_id="jobstream-http", **self._options)
                    await start_or_close(client.bootstrap(), client.close)
                    self._client = client
                cluster = await self._client.fetch_all_metadata()
        except (KafkaError, OSError, TimeoutError) as exc:
            self.broker_up = False
            if self.unreachable_since is None:
                self.unreachable_since = time.time()
            self._down.set()
            if not self.should_stop:  # (stopping, the probe closes its own client)
                self.story.found_down(_reason(exc))
        else:
            self.broker_up = True
            self.unreachable_since = None
            self.story.found_up()
            self._down.clear()
            found = cluster.partitions_for_topic(self.topic)
            self.partitions = len(found) if found else None
        metrics.KAFKA_UP.set(1.0 if self.broker_up else 0.0)

    async def went_down(self) -> None:
        """Returns once the broker is known to be down (at once if it is down already)."""
        await self._down.wait()

    async def bounded(self, step: Awaitable[T], within: float) -> T:
        """The result of `step`, a wait on Kafka: TimeoutError after `within` seconds, and a
        503 as soon as the probe finds the broker down (at once if it is down already)."""
        # Started even when the broker is known down (and cancelled at once): a step owns what
        # it opened and closes it when cancelled.
        task = asyncio.ensure_future(step)
        down = asyncio.ensure_future(self._down.wait())
        try:
            done, _ = await asyncio.wait(
                {task, down}, timeout=within, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            down.cancel()
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
            if task.done() and not task.cancelled() and task not in done:
                task.exception()  # retrieved: a step cut short may have failed meanwhile
        if task in done:
            return task.result()
        if down in done:
            raise BrokerUnavailable("Kafka became unreachable; retry later")
        raise TimeoutError

    def require_topic(self) -> list[TopicPartition]:
        """job_data's partitions, or a 503 when the worker, the broker or the topic is not
        there."""
        if not self.started or self.should_stop:
            raise BrokerUnavailable("the worker is starting or stopping; retry shortly")
        if not self.broker_up:
            raise BrokerUnavailable("Kafka is unreachable; retry later")
        if not self.partitions:
            raise BrokerUnavailable(f"topic {self.topic} does not exist yet; the crawl creates it")
        return [TopicPartition(self.topic, p) for p in range(self.partitions)]

    async def true_end_offsets(self) -> dict[TopicPartition, int]:
        tps = self.require_topic()
        return await self.bounded(self._lag_probe.true_end_offsets(tps), self.timeout)

    async def lag(self, max_age: float = LAG_CACHE_SECONDS, wait: float = LAG_WAIT) -> Lag:
        """The default group's lag, measured again only when the last one is older than
        `max_age` seconds (one measurement at a time, shared by every caller), waited for at
        most `wait` seconds."""
        if self._lag is not None and time.monotonic() - self._lag[0] < max_age:
            return self._lag[1]
        if self._lag_task is None or self._lag_task.done():
            self._lag_task = asyncio.create_task(self._measure_lag())
        try:
            async with asyncio.timeout(wait):
                return await asyncio.shield(self._lag_task)
        except TimeoutError:
            return Lag(None, error=f"Kafka has not answered for {wait:.0f}s; measuring still")

    async def _measure_lag(self) -> Lag:
        try:
            tps = self.require_topic()
            lag = await self.bounded(self._lag_probe.measure(self.group, tps), self.timeout)
        except BrokerUnavailable as exc:
            lag = Lag(None, error=str(exc))
        except (KafkaError, OSError, TimeoutError) as exc:
            logger.warning("group=%s lag not measured: %r", self.group, exc)
            lag = Lag(None, error="Kafka did not answer in time")
        except Exception:
            logger.exception("group=%s lag not measured", self.group)
            lag = Lag(None, error="internal error; see the worker log")
        else:
            metrics.CONSUMER_LAG.labels(self.group).set(lag.total or 0)
        self._lag = (time.monotonic(), lag)
        return lag


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {CHECK_TIMEOUT:.0f}s"
    return error_text(exc)
