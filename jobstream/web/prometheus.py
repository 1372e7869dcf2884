"""GET /metrics: every jobstream metric in the Prometheus text format (or OpenMetrics when the
scraper asks for it). Gauges that are read rather than pushed are refreshed per scrape."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder

from jobstream import metrics
from jobstream.web.endpoint import Body, Doc, Endpoint
from jobstream.web.services import RUNTIME


class MetricsView(Endpoint):
    doc = Doc("Prometheus 指标", "运维", {200: Body("Prometheus 文本格式", "text/plain")})

    async def get(self, request: web.Request) -> web.Response:
        runtime = request.app[RUNTIME]
        probe = runtime.probe
        if probe.started and not probe.should_stop:
            await probe.lag()  # sets jobstream_job_data_consumer_lag when it can be measured
        for task_id in runtime.worker.owned_tasks():
            progress = runtime.store.current(task_id)
            metrics.set_crawl_status(task_id, progress.status)
            metrics.CONSECUTIVE_FAILURES.labels(task_id).set(progress.consecutive_failures)
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encode(REGISTRY), headers={"Content-Type": content_type})
