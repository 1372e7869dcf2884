"""Faust's Kafka transport with what Faust does not offer: the fetch wait as a setting, and
table recovery up to the true end of a changelog.

Faust's aiokafka consumer asks the broker to hold every fetch for up to 1.5 s until data
arrives. Kafka answers as soon as data arrives; the embedded broker (Tansu 0.6) does not: it
answers when the wait elapses, so every page on job_raw sat up to 1.5 s before the page agent saw
it (measured: 1,300 ms from send to receipt on an idle partition). `kafka.fetch_max_wait_ms`
(50 ms for the embedded broker) bounds that delay while data flows. Each fetch costs the
embedded broker about 2 ms of CPU and the worker about 1.5 ms, whether it brings data or not:
20 a second kept an idle worker and its broker at 8 % of a core. So once no fetch has brought
data for IDLE_AFTER seconds, the consumer waits IDLE_FETCH_WAIT_MS, and the first fetch that
brings data again sets it back: the first event after a quiet spell may wait up to that long on
the embedded broker, the ones behind it do not (measured idle, worker and embedded broker: 2.2 %
of a core with 500 ms, see benchmarks/bench_idle.py). Kafka answers as soon as data arrives:
there the longer wait costs no latency and halves an idle consumer's requests.

Faust recovers a table by reading its changelog up to the end offsets the broker reports. The
embedded broker reports the base offset of a partition's last record batch, short of the end by
that batch (design notes, "Quirks of the embedded broker"): a worker restarted after a crawl
recovered 1,684 of published_jobs' 1,731 entries, and a changelog written in one batch would
recover nothing. The end offsets Faust asks for are therefore the true ones: a fetch from the
reported end carries the partition's real high watermark. On Kafka both agree, and it costs one
short fetch per rebalance.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from jobstream.broker.clients import stop_consumer

# How long the fetch from the reported ends may take before the reported ends are used.
TRUE_END_TIMEOUT = 10.0
# The fetch wait of a consumer that has had no data for IDLE_AFTER seconds (see the module).
IDLE_FETCH_WAIT_MS = 1000
IDLE_AFTER = 2.0


class FetchWait:
    """A consumer's fetch wait: `active_ms` while fetches bring data, `idle_ms` once none has
    for `idle_after` seconds. Installed on aiokafka's Fetcher, whose fetch requests read
    `_fetch_max_wait_ms` as they are built."""

    def __init__(
        self, fetcher: Any, active_ms: int, idle_ms: int, idle_after: float = IDLE_AFTER
    ) -> None:
        self.fetcher = fetcher
        self.active_ms = active_ms
        self.idle_ms = max(idle_ms, active_ms)
        self.idle_after = idle_after
        self.last_data = time.monotonic()
        fetch = fetcher._proc_fetch_request

        async def observed(*args: Any, **kwargs: Any) -> Any:
            got = await fetch(*args, **kwargs)
            self.observe(bool(got))
            return got

        fetcher._proc_fetch_request = observed

    def observe(self, got_data: bool, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if got_data:
            self.last_data = now
            self.fetcher._fetch_max_wait_ms = self.active_ms
        elif now - self.last_data >= self.idle_after:
            self.fetcher._fetch_max_wait_ms = self.idle_ms


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Read by aiokafka when the consumer starts (it builds its fetcher then); aiokafka is
        # pinned below 0.15, where the attribute has had this name since 0.5.
        consumer._fetch_max_wait_ms = self.app.settings.kafka.fetch_max_wait_ms  # type: ignore[attr-defined]
        return consumer

    async def on_start(self) -> None:
        await super().on_start()
        consumer = self._consumer
        fetcher = getattr(consumer, "_fetcher", None)  # built by consumer.start()
        if fetcher is not None:
            wait = self.app.settings.kafka.fetch_max_wait_ms  # type: ignore[attr-defined]
            self.fetch_wait = FetchWait(fetcher, wait, IDLE_FETCH_WAIT_MS)

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        """The end offsets recovery reads up to: the true ones (see the module)."""
        reported = await super()._highwaters(partitions)
        if not partitions or self.consumer.in_transaction:
            return reported
        transport = self.transport
        servers = faust_aiokafka.server_list(transport.url, transport.default_port)  # type: ignore[attr-defined]
        try:
            return await asyncio.wait_for(true_ends(servers, reported), TRUE_END_TIMEOUT)
        except (TimeoutError, aiokafka.errors.KafkaError) as exc:
            self.log.warning("true end offsets unknown (%r): recovery reads to the reported", exc)
            return reported


async def true_ends(servers: list[str], reported: Mapping[TP, int]) -> dict[TP, int]:
    """For each partition, the larger of its reported end offset and the high watermark a fetch
    from there reports."""
    tps = [aiokafka.TopicPartition(tp.topic, tp.partition) for tp in reported]
    consumer = aiokafka.AIOKafkaConsumer(
        bootstrap_servers=servers,
        group_id=None,
        enable_auto_commit=False,
        client_id="jobstream-recovery-ends",
        fetch_max_wait_ms=10,
        max_partition_fetch_bytes=1024,
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, reported[TP(tp.topic, tp.partition)] or 0)
        asked_at = int(time.time() * 1000)
        # A fetch answer per partition sets its high watermark and its poll timestamp.
        while any((consumer.last_poll_timestamp(tp) or 0) < asked_at for tp in tps):
            await consumer.getmany(*tps, timeout_ms=50)
        return {
            TP(tp.topic, tp.partition): max(
                reported[TP(tp.topic, tp.partition)] or 0, consumer.highwater(tp) or 0
            )
            for tp in tps
        }
    finally:
        await stop_consumer(consumer)


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class KafkaTransport(faust_aiokafka.Transport):
    """The aiokafka transport, its consumer's fetch wait taken from `kafka.fetch_max_wait_ms`."""

    Consumer = _Consumer
