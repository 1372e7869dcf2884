"""GET /health (the process answers and can go on) and GET /ready (broker reachable, partitions
assigned, agents running), for compose and Kubernetes probes. Both answer 503 once the worker
knows it cannot go on (its embedded broker died: see `jobstream.embedded.tansu`)."""

from __future__ import annotations

from aiohttp import web

from jobstream.web.endpoint import Doc, JsonView, Ok, Refusal
from jobstream.web.forwarding import worker_started
from jobstream.web.readers import READERS
from jobstream.web.responses import RETRY_SOON, HttpError
from jobstream.web.services import RUNTIME
from jobstream.web.sse.registry import STREAMS
from jobstream.web.status import spool_status


class HealthView(JsonView):
    doc = Doc(
        "存活检查",
        "运维",
        {
            200: Ok("进程存活", dict[str, bool]),
            503: Refusal("worker 已无法继续，message 说明原因；它随即退出以便重启"),
        },
        "进程在响应就返回 200；worker 已无法继续（内置 broker 退出）时返回 503。",
    )

    async def get(self, request: web.Request) -> web.Response:
        failure = self.app.failure()
        if failure is not None:
            raise HttpError(503, f"unhealthy: {failure}")
        return self.ok({"alive": True})


class ReadyView(JsonView):
    doc = Doc(
        "就绪检查",
        "运维",
        {200: Ok("就绪", dict[str, bool]), 503: Refusal("未就绪，message 列出未通过的检查")},
        "Kafka 可达、分区已分配、agent 在运行时返回 200，否则 503。",
    )

    async def get(self, request: web.Request) -> web.Response:
        runtime = request.app[RUNTIME]
        probe = runtime.probe
        services = (probe, request.app[READERS], request.app[STREAMS])
        checks = {
            "healthy": self.app.failure() is None,
            "partitions_assigned": worker_started(self.app) and not self.app.rebalancing,
            "agents_running": all(not agent.should_stop for agent in self.app.agents.values()),
            "http_kafka_clients": all(s.started and not s.should_stop for s in services),
            "broker_reachable": probe.broker_up is True,
        }
        failing = [name for name, ok in checks.items() if not ok]
        if failing:
            why = f"not ready: {', '.join(failing)}"
            if not checks["broker_reachable"]:
                spool = spool_status(runtime)
                why += (
                    f" (Kafka is unreachable; fetched pages are spooled locally: {spool.pages} "
                    f"events, {spool.rows} rows, {spool.bytes} bytes of at most "
                    f"{spool.max_bytes})"
                    if spool.enabled
                    else " (Kafka is unreachable; spool.enabled is false: the crawl waits)"
                )
            raise HttpError(503, why, {"Retry-After": str(RETRY_SOON)})
        return self.ok({"ready": True, **checks})
