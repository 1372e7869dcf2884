"""The times /status derives for the dashboard: when a task's next run starts, and since when
Kafka is unreachable."""

from __future__ import annotations

import pytest

from jobstream.config import from_mapping
from jobstream.records import Progress
from jobstream.web.status import next_run_at, since_text

T1 = "2026-01-15T10:30:00+08:00"
T2 = "2026-01-15T10:31:00+08:00"


def test_next_run_is_an_interval_after_the_last_run_ended() -> None:
    idle = Progress(task_id="t", status="idle", last_success_at=T1)
    assert next_run_at(idle, 300, enabled=True) == "2026-01-15T10:35:00+08:00"
    # A failure after the last success: the run that failed is the last one that ended.
    failing = Progress(task_id="t", status="error", last_success_at=T1, last_error_at=T2)
    assert next_run_at(failing, 60, enabled=True) == "2026-01-15T10:32:00+08:00"


@pytest.mark.parametrize(
    ("progress", "enabled"),
    [
        (Progress(task_id="t", status="running", last_success_at=T1), True),
        (Progress(task_id="t", status="stopped", last_success_at=T1), True),
        (Progress(task_id="t", status="idle", last_success_at=T1), False),
        (Progress(task_id="t", status="idle"), True),
        (Progress(task_id="t", status="idle", last_success_at="not a time"), True),
    ],
)
def test_no_next_run_while_running_stopped_disabled_or_never_ended(
    progress: Progress, enabled: bool
) -> None:
    assert next_run_at(progress, 300, enabled=enabled) is None


def test_since_is_written_in_the_crawler_timezone() -> None:
    config = from_mapping({"crawler": {"timezone": "Asia/Shanghai"}})
    assert since_text(None, config) is None
    assert since_text(1768444200.0, config) == "2026-01-15T10:30:00+08:00"
