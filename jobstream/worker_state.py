"""What the pipeline asks of the Faust worker it runs in: the tasks assigned to it, whether a
rebalance has begun or the worker is stopping, its producer, and where the API it crawls is."""

from __future__ import annotations

import asyncio
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
        # (mode's stubs describe a receiver as a union of callables mypy cannot match)
        app.on_partitions_revoked.connect(cast(Any, self._on_partitions_revoked))

    def owned_tasks(self) -> list[str]:
        """The tasks whose job_raw partition is assigned to this worker; none during a
        rebalance, which may hand any of them to another worker."""
        app = self.app
        if app.rebalancing:
            return []
        assigned = app.assignor.assigned_actives()
        name, partitions = raw_topic.get_topic_name(), self.config.kafka.partitions
        return [
            task_id
            for task_id in self.config.api.task_ids
            if TP(name, partition_for(task_id, partitions)) in assigned
        ]

    def owns(self, task_id: str) -> bool:
        return task_id in self.owned_tasks()

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
