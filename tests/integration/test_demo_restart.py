"""The README's first command run twice: the demo worker, stopped and started again, resumes
where it stood. The built-in simulator keeps its rows in the data directory, so the source the
SQLite mirror's progress refers to is still there (grown, never shrunk): no source reset."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness import TASK_ID

pytestmark = pytest.mark.slow


@pytest.mark.timeout(180)
def test_demo_restart_resumes_current_offset_without_source_reset(worker_factory) -> None:
    worker = worker_factory()  # config/config.yml as shipped: demo simulator, embedded broker
    worker.start()
    worker.wait_ready()
    # Stopped once every row is counted (the dedupe agent reports a moment after the page):
    # candidates still in the in-memory broker would be lost, counted nowhere.
    first = worker.wait_status(
        lambda s: s["progress"] == "100.00%" and s["status"] == "idle" and counted(s)
    )
    offset = first["current_offset"]
    assert worker.stop() == 0
    state = worker.config_path.parent / "data" / "demo-api.jsonl"
    assert state.exists()

    worker.start()
    worker.wait_ready()
    again = worker.wait_status(
        lambda s: s["status"] == "idle" and s["current_offset"] >= offset and counted(s)
    )
    log = worker.log()

    print(f"stopped at offset {offset}, resumed: {again['current_offset']} of {again['total']}")
    assert "source reset" not in log and again["source_resets"] == 0
    assert f"task_id={TASK_ID} offset={offset} crawl run starts" in log
    assert f"{offset} rows (restored)" in log


def counted(status: dict[str, Any]) -> bool:
    """Every row up to current_offset counted once (the counters survive in the mirror)."""
    rows = status["rows"]
    outcomes = ("published", "duplicates", "filtered", "rejected", "skipped")
    return sum(rows.get(name, 0) for name in outcomes) == status["current_offset"]
