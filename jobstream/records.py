"""The records that travel on jobstream's internal topics and live in its table.

Jobs and rejects are plain JSON objects (consumers of `job_data` read them without Faust),
so they are dicts built by `jobstream.transform`, not Records.
"""

from __future__ import annotations

from typing import Any

import faust


class RawPage(faust.Record, serializer="json"):
    """A contiguous slice of one API page: source rows offset .. next_offset-1."""

    task_id: str
    offset: int
    next_offset: int
    total: int
    rows: list[dict[str, Any]]
    fetched_at: str  # ISO 8601 with offset; the reference "now" for the 7-day rule
    demo: bool = False


class Command(faust.Record, serializer="json"):
    """A request to change a task's crawl state: start, stop, or a report from the crawler."""

    task_id: str
    action: str  # "start" | "stop" | "report"
    at: str
    status: str | None = None  # for "report": running | idle | error
    error: str | None = None
    total: int | None = None


class Progress(faust.Record, serializer="json"):
    """One task's crawl state: the value of the `crawl_progress` table."""

    task_id: str
    current_offset: int = 0  # next source offset to apply
    total: int = 0
    status: str = "idle"  # idle | running | stopped | error
    last_error: str = ""
    last_update: str = ""
    published: int = 0
    filtered: int = 0
    rejected: int = 0
    future_dated: int = 0
