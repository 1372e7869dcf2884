"""GET /status: a task's crawl progress, the consumer lag and the monitoring figures (seed §5.4,
§10). The worker that owns the task answers; any other forwards the request to it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from jobstream import metrics
from jobstream.app import app
from jobstream.progress import rules
from jobstream.records import Progress
from jobstream.web import gateway, owner, params
from jobstream.web.base import JsonView
from jobstream.web.lag import Lag


def status_body(progress: Progress, lag: Lag) -> dict[str, Any]:
    judged = progress.published + progress.filtered + progress.rejected
    applied = judged + progress.skipped
    return {
        # Seed §5.4 first, in its order.
        "task_id": progress.task_id,
        "total": progress.total,
        "current_offset": progress.current_offset,
        "progress": rules.percent(progress),
        "kafka_lag": lag.total,
        "status": progress.status,
        "last_update": progress.last_update or None,
        # Seed §10 and the rest.
        "last_error": progress.last_error or None,
        "consecutive_failures": progress.consecutive_failures,
        "stuck_since": progress.stuck_since or None,
        "failing_offset": progress.failing_offset,
        "cursor_anomalies": progress.cursor_anomalies,
        "last_anomaly": progress.last_anomaly or None,
        "source_resets": progress.source_resets,
        "source": progress.source,
        "kafka": {
            "consumer_group": app.settings.kafka.consumer_group,
            "lag_by_partition": {str(p): n for p, n in sorted(lag.by_partition.items())},
            "error": lag.error,
        },
        "rows_per_minute": round(metrics.rows_per_minute(), 1),
        "kept_ratio": round(progress.published / judged, 4) if judged else None,
        "api_latency_ms": metrics.api_latency_ms(),
        "rows": {
            "fetched": app.crawler.fetched.get(progress.task_id, 0),
            "applied": applied,
            "published": progress.published,
            "filtered": progress.filtered,
            "rejected": progress.rejected,
            "skipped": progress.skipped,
            "future_dated": progress.future_dated,
        },
        "demo": app.settings.api.is_demo,
    }


async def task_status(task_id: str) -> dict[str, Any]:
    """The status as this worker, the task's owner, sees it."""
    gw = gateway.running()
    lag = await gw.lag() if gw is not None else Lag(None, error="the worker is starting")
    return status_body(app.progress_store.current(task_id), lag)


class StatusView(JsonView):
    params = frozenset({"task_id"})

    async def get(self, request: web.Request) -> web.Response:
        task_id = params.task_id(request, app.settings.api.task_ids)
        forwarded = await owner.forward(request, task_id)
        if forwarded is not None:
            return forwarded
        return self.ok(await task_status(task_id))
