"""Prometheus metrics (seed §10): what the crawl, the agents, the API calls and the HTTP views
report, and the recent figures /status shows (rows per minute, API latency percentiles)."""

from __future__ import annotations

import time
import typing
from collections import deque
from typing import NamedTuple

from prometheus_client import Counter, Gauge, Histogram

from jobstream.records import TaskStatus

ROWS = Counter(
    "jobstream_rows_total",
    "Source rows by outcome: fetched from the API, kept by the 7-day rule, filtered by it, "
    "rejected as unparseable; of the kept ones, published to job_data or (dedupe by URL) a "
    "duplicate of a job published within the window",
    ["task_id", "outcome"],
)
DEDUPE_ENTRIES = Gauge(
    "jobstream_dedupe_entries",
    "Job ids this worker's published_jobs table holds: those first published within the "
    "dedupe window (and not pruned yet), of its partitions",
)
DEDUPE_PRUNED = Counter(
    "jobstream_dedupe_pruned_total",
    "Job ids deleted from published_jobs because their first publication left the window",
)
API_REQUESTS = Counter(
    "jobstream_api_requests_total",
    "Bazhuayu API calls by endpoint and HTTP status",
    ["endpoint", "status"],
)
API_LATENCY = Histogram(
    "jobstream_api_request_seconds",
    "Bazhuayu API call latency",
    ["endpoint"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CURSOR_ANOMALIES = Counter(
    "jobstream_cursor_anomalies_total",
    "Pages whose API cursor was not offset + rows (a jump, a long page, a cursor back or "
    "standing still, an empty page with rows left); each is recovered and logged",
    ["task_id"],
)
FETCH_AHEAD_MISSES = Counter(
    "jobstream_fetch_ahead_misses_total",
    "Times a page's returned cursor was not offset + size, so the pages requested ahead of it "
    "were dropped and the crawl followed the cursor",
    ["task_id"],
)
FETCH_AHEAD_DROPPED = Counter(
    "jobstream_fetch_ahead_dropped_total",
    "Page requests made ahead and dropped unused (a cursor that differed, an error, a stop)",
    ["task_id"],
)
SOURCE_RESETS = Counter(
    "jobstream_source_resets_total",
    "Times a task's source total fell below the rows applied, and the crawl started over",
    ["task_id"],
)
RUN_FAILURES = Counter(
    "jobstream_crawl_run_failures_total", "Crawl runs that ended in error", ["task_id"]
)
CONSECUTIVE_FAILURES = Gauge(
    "jobstream_crawl_consecutive_failures",
    "Failed crawl runs since the task's last successful one (0 when healthy)",
    ["task_id"],
)
PROGRESS = Gauge("jobstream_crawl_progress_ratio", "current_offset / total", ["task_id"])
CRAWL_STATUS = Gauge(
    "jobstream_crawl_status",
    "1 for the crawl status a task is in (idle, running, stopped, error), 0 for the others; "
    "reported by the worker that owns the task",
    ["task_id", "status"],
)
CONSUMER_LAG = Gauge(
    "jobstream_job_data_consumer_lag",
    "Messages in job_data not yet consumed by the group (true end offsets minus committed)",
    ["group"],
)
KAFKA_UP = Gauge("jobstream_kafka_up", "1 when the broker answered the last metadata probe")
SPOOL_PAGES = Gauge(
    "jobstream_spool_pages", "job_raw events kept in the local spool while Kafka is unreachable"
)
SPOOL_ROWS = Gauge("jobstream_spool_rows", "Source rows in the local spool")
SPOOL_BYTES = Gauge("jobstream_spool_bytes", "Bytes of the events in the local spool")
TOKEN_GRANTS = Counter("jobstream_api_token_grants_total", "Access tokens obtained")

HTTP_REQUESTS = Counter(
    "jobstream_http_requests_total",
    "HTTP requests served by the worker, by route, method and status",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "jobstream_http_request_seconds",
    "Time to answer an HTTP request (for SSE: until the response headers are sent)",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CONSUMED = Counter(
    "jobstream_consume_messages_total",
    "job_data messages answered by GET /consume and committed, by consumer group",
    ["group"],
)
STREAMS_OPEN = Gauge("jobstream_sse_streams_open", "GET /consume/stream connections open")
STREAM_EVENTS = Counter("jobstream_sse_events_total", "job events sent on GET /consume/stream")


# Methods counted by name; any other (a client may send any token as a method) is "other",
# so that the label's values stay few.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else "other"


def observe_request(endpoint: str, status: int | None, seconds: float) -> None:
    """The API client's `on_request` hook."""
    API_REQUESTS.labels(endpoint, str(status) if status is not None else "error").inc()
    API_LATENCY.labels(endpoint).observe(seconds)
    if endpoint == "data":
        API_LATENCY_RECENT.add(seconds)
    if endpoint == "token" and status == 200:
        TOKEN_GRANTS.inc()


class Recent:
    """The last `size` observations, for the p50/p95 and per-minute figures on /status."""

    def __init__(self, size: int = 500) -> None:
        self._values: deque[tuple[float, float]] = deque(maxlen=size)

    def add(self, value: float) -> None:
        self._values.append((time.monotonic(), value))

    def quantile(self, q: float) -> float | None:
        values = sorted(v for _, v in self._values)
        if not values:
            return None
        return values[min(len(values) - 1, int(q * len(values)))]

    def sum_since(self, seconds: float) -> float:
        since = time.monotonic() - seconds
        return sum(v for t, v in self._values if t >= since)


# Process-wide instruments, like the Prometheus metrics above: what /status shows as recent.
API_LATENCY_RECENT = Recent()
# Every task's applied rows together; /status shows each task's own (TaskThroughput).
APPLIED_ROWS_RECENT = Recent(size=5000)


def rows_per_minute() -> float:
    """Source rows this worker applied (kept, filtered or rejected) in the last minute."""
    return APPLIED_ROWS_RECENT.sum_since(60.0)


class Sample(NamedTuple):
    at: float  # time.monotonic()
    wall: float  # time.time(), for the dashboard's chart
    value: float


class Series:
    """Samples of one figure over the last `keep` seconds."""

    def __init__(self, keep: float = 3600.0) -> None:
        self.keep = keep
        self._samples: deque[Sample] = deque()

    def add(self, value: float, at: float | None = None, wall: float | None = None) -> None:
        at = time.monotonic() if at is None else at
        self._samples.append(Sample(at, time.time() if wall is None else wall, value))
        while self._samples and self._samples[0].at < at - self.keep:
            self._samples.popleft()

    def samples(self) -> list[Sample]:
        return list(self._samples)

    def before(self, at: float) -> Sample | None:
        """The last sample taken at or before `at`, else the oldest one (None when empty)."""
        found = self._samples[0] if self._samples else None
        for sample in self._samples:
            if sample.at > at:
                break
            found = sample
        return found


# The rows a task has applied: what the rows per minute count. "kept", not "published": with
# dedupe on, the dedupe agent counts what reached job_data, maybe on another worker.
APPLIED_OUTCOMES = frozenset({"kept", "filtered", "rejected"})
# When this process's counters were zero.
STARTED = time.monotonic()


def applied_rows() -> dict[str, float]:
    """Per task, the source rows this process applied (kept, filtered or rejected)."""
    applied: dict[str, float] = {}
    for family in ROWS.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels["outcome"] in APPLIED_OUTCOMES:
                task_id = sample.labels["task_id"]
                applied[task_id] = applied.get(task_id, 0.0) + sample.value
    return applied


class TaskThroughput:
    """Per task, samples of the rows this process applied: the rows per minute /status shows.

    The counts are this process's counters (`ROWS`, kept per page by the agent that applies
    the task's pages, which runs on the task's owner), sampled, so a figure needs no second
    feed from the agent; every task's counts start at 0 at `origin`, when the process did."""

    WINDOW = 60.0

    def __init__(self, origin: float = STARTED) -> None:
        self.origin = origin
        self._applied: dict[str, Series] = {}

    def record(self, task_id: str, applied: float, at: float | None = None) -> float:
        """Note that `applied` rows of the task are applied now; returns its rows per minute."""
        at = time.monotonic() if at is None else at
        rate = self.rows_per_minute(task_id, applied, at)
        series = self._applied.get(task_id)
        if series is None:
            series = self._applied[task_id] = Series(keep=2 * self.WINDOW)
            series.add(0.0, at=self.origin)
        series.add(applied, at)
        return rate

    def rows_per_minute(self, task_id: str, applied: float, at: float | None = None) -> float:
        """Rows applied in the last minute, given `applied` now: counted from the sample a
        minute back (scaled when it is older), from 0 in the process's first minute."""
        at = time.monotonic() if at is None else at
        series = self._applied.get(task_id)
        then = series.before(at - self.WINDOW) if series is not None else None
        value, since = (then.value, then.at) if then is not None else (0.0, self.origin)
        return max(0.0, applied - value) * self.WINDOW / max(self.WINDOW, at - since)


def api_latency_ms() -> dict[str, float | None]:
    """p50 and p95 of the last data-page calls to the Bazhuayu API, in milliseconds."""
    return {
        name: None if (value := API_LATENCY_RECENT.quantile(q)) is None else round(value * 1000, 1)
        for name, q in (("p50", 0.50), ("p95", 0.95))
    }


def set_crawl_status(task_id: str, status: str) -> None:
    for candidate in typing.get_args(TaskStatus):
        CRAWL_STATUS.labels(task_id, candidate).set(1.0 if candidate == status else 0.0)
