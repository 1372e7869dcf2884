"""GET /status and every other view while the worker starts: a 503 with `Retry-After` (or an
answer), never a 500. And the body of /status, from a task's progress."""

from __future__ import annotations

import json

import msgspec
import pytest

from jobstream.broker.lag import Lag
from jobstream.config import from_mapping
from jobstream.records import Progress
from jobstream.web.responses import json_body
from jobstream.web.routes import ROUTES
from jobstream.web.status import Status, status_of
from tests.web.conftest import Served, assert_json_error

SEED_KEYS = ["task_id", "total", "current_offset", "progress", "kafka_lag", "status", "last_update"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        *[
            ("GET", path)
            for path in ROUTES
            if not path.startswith(("/crawl/", "/consume", "/trace", "/replay"))
        ],
        ("GET", "/consume?timeout_ms=0"),
        ("GET", "/trace?id=5b0e1c1e-3f5a-5d7e-9a53-1f0d3c0f2b9e"),
        ("POST", "/replay"),
        ("POST", "/replay/stop"),
        ("GET", "/consume/stream"),
        ("GET", "/status?task_id=00f3b445-d8ec-44e8-88b2-4b971a228b1e"),
        ("POST", "/crawl/start"),
        ("POST", "/crawl/stop"),
    ],
)
async def test_status_every_view_while_worker_starts_answers_or_503_never_500(
    served_empty: Served, method: str, path: str
) -> None:
    """A web application without a worker stays "starting" forever."""
    # A POST is JSON: a bare one is refused before it gets this far (test_doors.py).
    body = {} if method == "POST" else None
    response = await served_empty.client.request(method, path, json=body)
    if path.startswith(("/status", "/crawl/", "/ready", "/replay")):
        assert response.status == 503
    assert response.status in (200, 503), path
    if response.status == 503:
        assert_json_error(503, await response.json(), 503)
        assert int(response.headers["Retry-After"]) > 0


def test_status_body_seed_keys_first_then_the_figures() -> None:
    progress = Progress(
        task_id="t1",
        source="demo",
        current_offset=120,
        total=480,
        status="running",
        last_update="2026-01-15T10:30:00+08:00",
        published=70,
        filtered=40,
        rejected=10,
    )
    lag = Lag(25, {0: 10, 1: 15, 2: 0})
    config = from_mapping({"api": {"tasks": [{"id": "t1", "name": "北京 <b>招聘</b>"}]}})
    status = status_of(progress, lag, rows_fetched=150, config=config, rows_per_minute=42.04)
    body = json.loads(json_body(status))
    assert list(body)[: len(SEED_KEYS)] == SEED_KEYS
    assert body["progress"] == "25.00%" and body["kafka_lag"] == 25
    assert body["kafka"] == {
        "consumer_group": "job_consumer_group",
        "lag_by_partition": {"0": 10, "1": 15, "2": 0},
        "error": None,
    }
    assert body["rows"] == {
        "fetched": 150,
        "applied": 120,
        "published": 70,
        "filtered": 40,
        "rejected": 10,
        "skipped": 0,
        "future_dated": 0,
        "duplicates": 0,
    }
    assert body["name"] == "北京 <b>招聘</b>" and body["enabled"] is True
    assert body["rows_per_minute"] == 42.0
    assert body["kept_ratio"] == round(70 / 120, 4) and body["last_error"] is None
    assert body["consecutive_failures"] == 0 and body["stuck_since"] is None
    assert body["demo"] is True
    # The body is what its declaration, shown in /openapi.json, says.
    assert msgspec.convert(body, Status) == status
