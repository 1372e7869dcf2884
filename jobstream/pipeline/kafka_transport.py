"""Faust's Kafka transport with the one consumer setting Faust does not expose: the fetch wait.

Faust's aiokafka consumer asks the broker to hold every fetch for up to 1.5 s until data
arrives. Kafka answers as soon as data arrives; the embedded broker (Tansu 0.6) does not: it
answers when the wait elapses, so every page on job_raw sat up to 1.5 s before the page agent saw
it (measured: 1,300 ms from send to receipt on an idle partition). `kafka.fetch_max_wait_ms`
bounds that delay; on Kafka it only sets how often an idle consumer asks again.
"""

from __future__ import annotations

from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Read by aiokafka when the consumer starts (it builds its fetcher then); aiokafka is
        # pinned below 0.15, where the attribute has had this name since 0.5.
        consumer._fetch_max_wait_ms = self.app.settings.kafka.fetch_max_wait_ms  # type: ignore[attr-defined]
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class KafkaTransport(faust_aiokafka.Transport):
    """The aiokafka transport, its consumer's fetch wait taken from `kafka.fetch_max_wait_ms`."""

    Consumer = _Consumer
