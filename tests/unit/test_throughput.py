"""A task's rows per minute, from samples of its applied rows (jobstream.metrics)."""

from __future__ import annotations

from jobstream.metrics import Series, TaskThroughput


def test_throughput_first_minute_counts_rows_since_the_first_sample() -> None:
    window = TaskThroughput()
    assert window.rows_per_minute("t", 500, at=100.0) == 0.0
    window.record("t", 100, at=100.0)
    assert window.rows_per_minute("t", 400, at=110.0) == 300.0
    assert window.rows_per_minute("other", 400, at=110.0) == 0.0


def test_throughput_steady_rate_is_measured_over_the_last_minute() -> None:
    window = TaskThroughput()
    for second in range(0, 200, 5):
        window.record("t", 10 * second, at=float(second))  # 600 rows a minute
    assert window.rows_per_minute("t", 2000, at=200.0) == 600.0
    # A minute without rows brings it to 0.
    assert window.rows_per_minute("t", 1950, at=260.0) == 0.0


def test_throughput_old_sample_is_scaled_and_a_reset_is_not_negative() -> None:
    window = TaskThroughput()
    window.record("t", 0, at=0.0)
    assert window.rows_per_minute("t", 1200, at=120.0) == 600.0
    window.record("t", 1200, at=120.0)
    assert window.rows_per_minute("t", 0, at=200.0) == 0.0


def test_series_keeps_its_last_hour() -> None:
    series = Series(keep=60.0)
    for second in range(0, 200, 10):
        series.add(float(second), at=float(second), wall=1_000.0 + second)
    samples = series.samples()
    assert [s.at for s in samples] == [130.0, 140.0, 150.0, 160.0, 170.0, 180.0, 190.0]
    assert samples[0].wall == 1_130.0
    assert series.before(155.0).at == 150.0 and series.before(0.0).at == 130.0
