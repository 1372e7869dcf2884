"""GET /health (the process answers) and GET /ready (broker reachable, partitions assigned,
agents running), for compose and Kubernetes probes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from jobstream.app import app
from jobstream.web import gateway
from jobstream.web.base import JsonView

_started = False


# mode types signal receivers too narrowly for a coroutine function, which it does await.
@app.on_rebalance_complete.connect  # type: ignore[arg-type]
async def _on_rebalance_complete(sender: Any, *args: Any, **kwargs: Any) -> None:
    global _started
    _started = True


class HealthView(JsonView):
    async def get(self, request: web.Request) -> web.Response:
        return self.ok({"alive": True})


class ReadyView(JsonView):
    async def get(self, request: web.Request) -> web.Response:
        gw = gateway.running()
        checks = {
            "partitions_assigned": _started and not app.rebalancing,
            "agents_running": all(not agent.should_stop for agent in app.agents.values()),
            "http_kafka_clients": gw is not None,
            "broker_reachable": gw is not None and gw.broker_up,
        }
        failing = [name for name, ok in checks.items() if not ok]
        if failing:
            return self.error(503, f"not ready: {', '.join(failing)}", {"Retry-After": "2"})
        return self.ok({"ready": True, **checks})
