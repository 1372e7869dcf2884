"""GET /consume: a batch of jobs from job_data for a consumer group (seed §5.4): the default
one, or `group=<name>`, which is `<app.name>.http.<name>` in Kafka (see `jobstream.web.readers`).

The answer is written before the offsets are committed, and committed only when it left the
worker whole (see `jobstream.web.readers`). With several workers, the group's gateway answers
(`jobstream.web.forwarding`): any other worker forwards the call to it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from aiohttp import web
from aiokafka.structs import ConsumerRecord

from jobstream.web import forwarding, params
from jobstream.web.endpoint import JsonView
from jobstream.web.readers import READERS
from jobstream.web.responses import json_response

logger = logging.getLogger(__name__)

BATCH_SIZE = (1, 1000, 10)  # low, high, default
TIMEOUT_MS = (0, 30_000, 1000)
# How long an answer may take to leave the worker before it counts as not delivered.
FLUSH_TIMEOUT = 10.0


def jobs_of(records: list[ConsumerRecord]) -> list[object]:
    """The messages' JSON values; one that is not JSON is logged and left out (and committed:
    it would otherwise block the group forever)."""
    jobs = []
    for record in records:
        try:
            jobs.append(json.loads(record.value))
        except (TypeError, ValueError):
            logger.error(
                "partition=%d offset=%d job_data message is not JSON; skipped",
                record.partition,
                record.offset,
            )
    return jobs


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def send_whole(request: web.Request, response: web.Response) -> bool:
    """Write the answer and wait until the kernel has all of it; False if the client left."""
    if client_gone(request):
        return False
    try:
        await response.prepare(request)
        await response.write_eof()
    except (ConnectionError, RuntimeError):
        return False
    deadline = time.monotonic() + FLUSH_TIMEOUT
    while not client_gone(request):
        assert request.transport is not None
        if request.transport.get_write_buffer_size() == 0:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return False


class ConsumeView(JsonView):
    methods_allowed = frozenset({"GET"})
    access = "read"
    # It commits the group's offsets: another site's <img> must not drain the group.
    changes_state = True
    params = frozenset({"batch_size", "timeout_ms", "group"})

    async def get(self, request: web.Request) -> web.Response:
        low, high, default = BATCH_SIZE
        batch_size = params.integer(request, "batch_size", default=default, low=low, high=high)
        low, high, default = TIMEOUT_MS
        timeout_ms = params.integer(request, "timeout_ms", default=default, low=low, high=high)
        group = params.group(request, self.config.kafka.consumer_group)
        gateway = forwarding.gateway_of(self.app, group)
        if gateway is not None:
            whose = f"consumer group {group!r}"
            return await forwarding.forward_to(
                self.app, request, gateway, "the consumer group", whose, timeout_ms / 1000
            )
        reader = await request.app[READERS].reader(group, caller=request.remote or "")

        async def deliver(records: list[ConsumerRecord]) -> tuple[web.Response, bool]:
            jobs = jobs_of(records)
            response = json_response({"code": 0, "data": jobs, "count": len(jobs)})
            return response, await send_whole(request, response)

        return await reader.read(
            batch_size, timeout_ms / 1000, deliver, gone=lambda: client_gone(request)
        )
