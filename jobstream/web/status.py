"""GET /status: a task's crawl progress and counters (seed §5.4, §10)."""

from __future__ import annotations

from typing import Any

from faust import web
from faust.exceptions import SameNode

from jobstream.app import app
from jobstream.pipeline import crawl
from jobstream.progress import state, store
from jobstream.records import Progress
from jobstream.topics import crawl_progress
from jobstream.web.base import ApiError, JsonView


def status_body(progress: Progress) -> dict[str, Any]:
    applied = progress.published + progress.filtered + progress.rejected
    return {
        "task_id": progress.task_id,
        "total": progress.total,
        "current_offset": progress.current_offset,
        "progress": state.percent(progress),
        "status": progress.status,
        "last_update": progress.last_update or None,
        "last_error": progress.last_error or None,
        "rows": {
            "fetched": crawl.fetched.get(progress.task_id, 0),
            "applied": applied,
            "published": progress.published,
            "filtered": progress.filtered,
            "rejected": progress.rejected,
            "future_dated": progress.future_dated,
            "counted_from": progress.counted_from,
        },
        "kept_ratio": round(progress.published / applied, 4) if applied else None,
        "demo": app.settings.api.is_demo,
    }


class StatusView(JsonView):
    async def get(self, request: web.Request) -> web.Response:
        task_ids = app.settings.api.task_ids
        task_id = request.query.get("task_id", task_ids[0])
        if task_id not in task_ids:
            raise ApiError(404, f"unknown task_id {task_id!r:.80}; configured: {', '.join(task_ids)}")
        try:
            # The worker that owns the task's partition holds its progress.
            return await app.router.route_req(crawl_progress.name, task_id, self.web, request)
        except SameNode:
            return self.ok(status_body(store.current(task_id)))
