"""GET /health (the process answers) and GET /ready (broker reachable, partitions assigned)."""

from __future__ import annotations

from faust import web

from jobstream.app import app
from jobstream.web.base import JsonView

_started = False


@app.on_rebalance_complete.connect
async def _on_rebalance_complete(sender: object, **kwargs: object) -> None:
    global _started
    _started = True


class HealthView(JsonView):
    async def get(self, request: web.Request) -> web.Response:
        return self.ok({"alive": True})


class ReadyView(JsonView):
    async def get(self, request: web.Request) -> web.Response:
        checks = {
            "started": _started,
            "rebalancing": bool(app.rebalancing),
            "agents_running": all(not agent.should_stop for agent in app.agents.values()),
        }
        ready = checks["started"] and not checks["rebalancing"] and checks["agents_running"]
        return self.ok({"ready": ready, **checks}, status=200 if ready else 503)
