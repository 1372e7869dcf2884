"""Prometheus metrics (seed §10): what the crawl, the agents and the API calls report."""

from __future__ import annotations

import time
from collections import deque

from prometheus_client import Counter, Gauge, Histogram

ROWS = Counter(
    "jobstream_rows_total",
    "Source rows by outcome: fetched from the API, published to job_data, filtered by the "
    "7-day rule, rejected as unparseable",
    ["task_id", "outcome"],
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
PROGRESS = Gauge("jobstream_crawl_progress_ratio", "current_offset / total", ["task_id"])
CONSUMER_LAG = Gauge(
    "jobstream_job_data_consumer_lag",
    "Messages in job_data not yet consumed by the group",
    ["group"],
)
TOKEN_GRANTS = Counter("jobstream_api_token_grants_total", "Access tokens obtained")


def observe_request(endpoint: str, status: int | None, seconds: float) -> None:
    """The API client's `on_request` hook."""
    API_REQUESTS.labels(endpoint, str(status) if status is not None else "error").inc()
    API_LATENCY.labels(endpoint).observe(seconds)
    if endpoint == "data":
        api_latency_recent.add(seconds)
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


api_latency_recent = Recent()
applied_rows_recent = Recent(size=5000)
