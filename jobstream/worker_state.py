"""What the pipeline asks of the Faust worker it runs in: the tasks assigned to it, whether a
rebalance has begun or the worker is stopping, its producer, and where the API it crawls is."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, cast

import aiokafka
from faust.transport.drivers.aiokafka import Producer as FaustKafkaProducer
from faust.types import TP

from jobstream.app import JobstreamApp
from jobstream.embedded import ApiEndpoint
from jobstream.topics import partition_for, raw_topic


class WorkerState:
    """One worker's assignment and lifecycle, as the crawl, the sender and the agents see it."""

    def __init__(self, app: JobstreamApp) -> None:
        self.app = app
        self.config = app.settings
        self._reassigned = asyncio.Event()
        # Each task's partition, computed once: asked for every page of every task.
        partitions = self.config.kafka.partitions
        self._partition_of = {
            task_id: partition_for(task_id, partitions) for task_id in self.config.api.task_ids
        }
        # (mode's stubs describe a receiver as a union of callables mypy cannot match)
        app.on_partitions_revoked.connect(cast(Any, self._on_partitions_revoked))

    def owned_tasks(self) -> list[str]:
        """The tasks whose job_raw partition is assigned to this worker; none during a
        rebalance, which may hand any of them to another worker."""
        app = self.app
        if app.rebalancing:
            return []
        name = raw_topic.get_topic_name()
        owned = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == name}
        return [task_id for task_id, p in self._partition_of.items() if p in owned]

    def owns(self, task_id: str) -> bool:
        app = self.app
        if app.rebalancing:
            return False
        partition = self._partition_of.get(task_id)
        if partition is None:
            return False
        return TP(raw_topic.get_topic_name(), partition) in app.assignor.assigned_actives()

    def owned_by_account(self) -> Counter[str]:
        """The enabled tasks this worker owns, counted by account."""
        config = self.config
        return Counter(
            task.account for task in map(config.task, self.owned_tasks()) if task.enabled
        )

    def me(self) -> str:
        """This worker's name in its group: its URL, as the assignment names it."""
        return str(self.app.conf.canonical_url)

    def members(self) -> frozenset[str]:
        """The workers of the group as of the latest assignment (their URLs)."""
        return frozenset(self.app.router.tables_metadata())

    @property
    def rebalancing(self) -> bool:
        return bool(self.app.rebalancing)

    @property
    def reassigned(self) -> asyncio.Event:
        """An event set when this worker's partitions are next revoked (a rebalance began: a
        task it crawls may go to another worker)."""
        return self._reassigned

    @property
    def stopping(self) -> bool:
        """The worker is shutting down (its producer may be gone already)."""
        return bool(self.app.should_stop)

    def producer(self) -> aiokafka.AIOKafkaProducer:
        """The Faust producer's own aiokafka producer: the same connection, acks setting and
        per-partition order as anything Faust sends (NotReady until it has started)."""
        return cast(FaustKafkaProducer, self.app.producer)._ensure_producer()

    def api_endpoint(self) -> ApiEndpoint:
        """The API to crawl: the embedded simulator in demo mode, else the configured one."""
        return self.app.embedded.api_endpoint()

    async def _on_partitions_revoked(
        self, sender: Any, *args: Any, signal: Any, **kwargs: Any
    ) -> None:
        self._reassigned.set()
        self._reassigned = asyncio.Event()
