"""Every record jobstream puts on a topic or in its table, declared once as a msgspec Struct.

The same declaration validates what is decoded, encodes compact UTF-8 JSON (Chinese stays
readable to any Kafka consumer, 3 bytes a character instead of a 6-byte `\\u` escape), and gives
the JSON Schema that the OpenAPI document shows. Field order is the order on the wire.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

TaskStatus = Literal["idle", "running", "stopped", "error"]
"""idle: waiting for the next run; running: a run is fetching; stopped: by a user, until a
start; error: the last run failed and no run has succeeded since (see `last_error`)."""

CommandAction = Literal["start", "stop", "report", "anomaly", "reset"]
"""start/stop come from users; report, anomaly and reset from the crawl loop."""

RunOutcome = Literal["running", "succeeded", "failed"]
"""What the crawl loop reports about one run of a task."""


class Job(msgspec.Struct, frozen=True, kw_only=True):
    """A job posting on `job_data` (seed §6.2), keyed by `id`."""

    id: str  # UUID5 of the normalized URL, else of the text fields: stable across replays
    job_category: str
    job_title: str
    company: str
    salary: str
    location: str
    publish_date: str  # YYYY-MM-DD
    collect_time: str  # YYYY-MM-DD
    url: str
    description: str
    experience: str
    education: str
    crawl_time: str  # ISO 8601 with the configured zone's offset
    task_id: str
    source_offset: int
    demo: bool


class Reject(msgspec.Struct, frozen=True, kw_only=True):
    """A source row that could not become a job, on `job_rejects`, keyed `task_id:offset`.

    `row` is the row as the API sent it (invalid Unicode replaced). A row too large to keep
    whole has `row` null and the start of its JSON text in `row_excerpt`.
    """

    task_id: str
    source_offset: int
    field: str  # the source field at fault, or "row"
    reason: str
    row: Any = None
    row_excerpt: str = ""
    crawl_time: str = ""


class RawPage(msgspec.Struct, frozen=True, kw_only=True):
    """A contiguous slice of one API page on `job_raw`, keyed by task: source offsets
    `offset` .. `next_offset`-1. `rows` hold each row's JSON as received, decoded one by one by
    the page agent, so one row's bytes can never fail the others."""

    task_id: str
    source: str  # the API the offsets refer to: "demo" or its base URL
    offset: int
    next_offset: int
    total: int
    fetched_at: str  # ISO 8601 with offset; the reference "now" for the 7-day rule
    demo: bool = False
    rows: list[msgspec.Raw] = []
    # Row index -> why that row cannot be judged (too large, unparseable); its entry in `rows`
    # is only an excerpt kept for job_rejects.
    unreadable: dict[int, str] = {}


class Command(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A change to one task's crawl state on `job_commands`, applied by the commands agent."""

    task_id: str
    action: CommandAction
    at: str  # ISO 8601
    run: RunOutcome | None = None  # for "report"
    offset: int | None = None  # where a failed run stopped, or where an anomaly was seen
    error: str = ""  # why a run failed; what an anomaly was
    total: int | None = None  # the source total the crawl loop last saw
    source: str = ""  # for "reset": the API whose data was reset


class Progress(msgspec.Struct, frozen=True, kw_only=True):
    """One task's crawl state: the value of the `crawl_progress` table and its SQLite mirror.

    Invariant: published + filtered + rejected + skipped == current_offset, where `skipped`
    counts offsets the API's cursor jumped over (rows deleted at the source).
    """

    task_id: str
    source: str = ""  # the API `current_offset` refers to ("demo" or its base URL)
    current_offset: int = 0  # next source offset to apply
    total: int = 0
    status: TaskStatus = "idle"
    last_error: str = ""
    last_update: str = ""
    published: int = 0
    filtered: int = 0
    rejected: int = 0
    skipped: int = 0
    future_dated: int = 0
    consecutive_failures: int = 0  # failed runs since the last successful one
    stuck_since: str = ""  # when the task started failing at `failing_offset`
    failing_offset: int | None = None
    cursor_anomalies: int = 0
    last_anomaly: str = ""
    source_resets: int = 0
