"""The trace agent: keeps each job_trace message (the page agent's decisions about ids of one
partition) in `trace_sightings`, on the worker that owns those ids."""

from __future__ import annotations

import asyncio
import logging

from faust import StreamT
from faust.types import AgentT, AppT

from jobstream.topics import trace_topic
from jobstream.trace.recorder import Tracer

logger = logging.getLogger(__name__)


def declare(app: AppT, tracer: Tracer) -> AgentT:
    """Declared whatever `trace.enabled` says: a worker drains what job_trace holds."""

    @app.agent(trace_topic, name="jobstream.trace.agent.store_decisions")
    async def store_decisions(events: StreamT[bytes]) -> None:
        async for event in events.events():
            try:
                await tracer.store_batch(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception(
                    "partition=%d offset=%d decisions not recorded",
                    event.message.partition,
                    event.message.offset,
                )

    return store_decisions
