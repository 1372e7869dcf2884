"""A task's rows per minute, from samples of the rows the process applied (jobstream.metrics)."""

from __future__ import annotations

from jobstream import metrics
from jobstream.metrics import Series, TaskThroughput


def test_throughput_first_minute_counts_every_row_since_the_process_started() -> None:
    window = TaskThroughput(origin=100.0)
    assert window.rows_per_minute("t", 500, at=130.0) == 500.0
    window.record("t", 400, at=110.0)
    assert window.rows_per_minute("t", 500, at=130.0) == 500.0
    assert window.rows_per_minute("other", 0, at=130.0) == 0.0


def test_throughput_steady_rate_is_measured_over_the_last_minute() -> None:
    window = TaskThroughput(origin=0.0)
    for second in range(0, 200, 5):
        window.record("t", 10 * second, at=float(second))  # 600 rows a minute
    assert window.rows_per_minute("t", 2000, at=200.0) == 600.0
    # A minute without rows brings it to 0.
    assert window.rows_per_minute("t", 1950, at=260.0) == 0.0


def test_throughput_old_sample_is_scaled() -> None:
    window = TaskThroughput(origin=0.0)
    assert window.rows_per_minute("t", 1200, at=120.0) == 600.0
    window.record("t", 1200, at=120.0)
    assert window.rows_per_minute("t", 1200, at=400.0) == 0.0


def test_throughput_counts_the_rows_the_agent_counted() -> None:
    task_id = "throughput-test-task"
    # Kept rows count once: not again as published or duplicate (the dedupe agent's outcomes).
    for outcome, n in (
        ("kept", 7),
        ("filtered", 2),
        ("rejected", 1),
        ("fetched", 50),
        ("published", 6),
        ("duplicate", 1),
    ):
        metrics.ROWS.labels(task_id, outcome).inc(n)
    assert metrics.applied_rows()[task_id] == 10


def test_series_keeps_its_last_hour() -> None:
    series = Series(keep=60.0)
    for second in range(0, 200, 10):
        series.add(float(second), at=float(second), wall=1_000.0 + second)
    samples = series.samples()
    assert [s.at for s in samples] == [130.0, 140.0, 150.0, 160.0, 170.0, 180.0, 190.0]
    assert samples[0].wall == 1_130.0
    assert series.before(155.0).at == 150.0 and series.before(0.0).at == 130.0
