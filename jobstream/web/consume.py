"""GET /consume: a batch of jobs from job_data for a consumer group: the default
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
from typing import Annotated

import msgspec
from aiohttp import web
from aiokafka.structs import ConsumerRecord

from jobstream.records import Job
from jobstream.web import forwarding
from jobstream.web.endpoint import Doc, JsonView, Ok, Refusal
from jobstream.web.params import GroupName, Integer
from jobstream.web.readers import READERS
from jobstream.web.responses import json_response

logger = logging.getLogger(__name__)

BATCH_SIZE = Integer("batch_size", "本次最多返回的条数", low=1, high=1000, default=10)
TIMEOUT_MS = Integer(
    "timeout_ms",
    "没有就绪数据时最多等待的毫秒数，到时返回已有的（可能为空）",
    low=0,
    high=30_000,
    default=1000,
)
GROUP = GroupName(
    "group",
    "消费组，默认 {default}。其他名称是 /consume 自己的消费组（在 Kafka 中名为 {prefix}<名称>），"
    "各自记录位置，不会移动直接读取 job_data 的程序所用的消费组",
)
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
    params = (BATCH_SIZE, TIMEOUT_MS, GROUP)
    doc = Doc(
        "批量消费 job_data",
        "消费",
        {
            200: Ok("岗位列表与条数", list[Job], {"count": Annotated[int, msgspec.Meta(ge=0)]}),
            429: Refusal(
                "所有消费组都在使用中，而本客户端已占用它应得的份额（Retry-After 之后重试）"
            ),
            503: Refusal("Kafka 不可用、消费组正在加入，或所有消费组都在使用中"),
        },
        "用消费组读取最多 batch_size 条岗位消息。应答成功写出后才提交偏移量；"
        "同组的并发调用互不重复，调用失败不会丢消息（至少一次）。",
    )

    async def get(self, request: web.Request) -> web.Response:
        batch_size = BATCH_SIZE.read(request)
        timeout_ms = TIMEOUT_MS.read(request)
        group = GROUP.read(request, self.config)
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
