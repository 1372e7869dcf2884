"""The alert service as the web application runs it: what it sees of the worker (the probe's
broker state) reaches a webhook. The rules and payloads are tests/unit's and tests/functional's."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from msgspec.structs import replace

from tests.harness import free_port, wait_until_async
from tests.web.conftest import ServeFactory, config_for


async def test_alerting_broker_down_reaches_a_json_webhook(serve_factory: ServeFactory) -> None:
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"ok": True})

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    server = TestServer(receiver)
    await server.start_server()
    try:
        webhooks = [{"type": "json", "url": str(server.make_url("/hook"))}]
        config = config_for(f"127.0.0.1:{free_port()}", "job_data", alerts={"webhooks": webhooks})
        # At least a second in a config file; a tenth here (the Struct takes any value in code).
        config = replace(config, alerts=replace(config.alerts, check_interval=0.1))
        await serve_factory(config=config)

        async def alerted() -> list[dict[str, Any]]:
            return [event for event in received if event["condition"] == "broker_down"]

        (event,) = await wait_until_async(alerted, what="a broker_down alert")
    finally:
        await server.close()
    assert event["kind"] == "alert" and event["task_id"] is None
