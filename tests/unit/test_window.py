"""The 7-day rule: both dates on or after today - filter_days; future days flagged, not dropped."""

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobstream.transform.window import cutoff, is_suspicious_future, stale_reason, within_window

TODAY = date(2026, 1, 15)
TODAYS = st.dates(date(2000, 1, 1), date(2100, 12, 31))
FILTER_DAYS = st.integers(0, 365)


def days_ago(n: int, today: date = TODAY) -> date:
    return today - timedelta(days=n)


def test_cutoff_seven_days_today_minus_seven() -> None:
    assert cutoff(TODAY, 7) == date(2026, 1, 8)


def test_cutoff_zero_days_today() -> None:
    assert cutoff(TODAY, 0) == TODAY


def test_cutoff_negative_days_raises_value_error() -> None:
    with pytest.raises(ValueError, match="filter_days"):
        cutoff(TODAY, -1)


@pytest.mark.parametrize(
    ("publish_ago", "collect_ago", "kept"),
    [
        (0, 0, True),
        (7, 7, True),  # the boundary day is kept
        (7, 0, True),
        (0, 7, True),
        (8, 0, False),  # one day older is dropped
        (0, 8, False),
        (8, 8, False),
        (-1, 0, True),  # the future passes the rule
        (-30, -30, True),
    ],
)
def test_within_window_seven_days_boundary_both_required(
    publish_ago: int, collect_ago: int, kept: bool
) -> None:
    assert within_window(days_ago(publish_ago), days_ago(collect_ago), TODAY, 7) is kept


@given(today=TODAYS, filter_days=FILTER_DAYS)
def test_within_window_boundary_property_cutoff_kept_day_before_dropped(
    today: date, filter_days: int
) -> None:
    edge = days_ago(filter_days, today)
    older = days_ago(filter_days + 1, today)
    assert within_window(edge, edge, today, filter_days)
    assert within_window(today, today, today, filter_days)
    assert not within_window(older, today, today, filter_days)
    assert not within_window(today, older, today, filter_days)
    assert not within_window(older, older, today, filter_days)


@given(today=TODAYS, filter_days=FILTER_DAYS, publish=TODAYS, collect=TODAYS)
def test_within_window_property_agrees_with_stale_reason(
    today: date, filter_days: int, publish: date, collect: date
) -> None:
    oldest = cutoff(today, filter_days)
    kept = within_window(publish, collect, today, filter_days)
    assert kept == (publish >= oldest and collect >= oldest)
    assert kept == (stale_reason(publish, collect, oldest) == "")


def test_stale_reason_old_publish_names_publish_date() -> None:
    assert stale_reason(date(2026, 1, 7), TODAY, date(2026, 1, 8)) == (
        "publish_date 2026-01-07 before cutoff 2026-01-08"
    )


def test_stale_reason_old_collect_names_collect_time() -> None:
    assert stale_reason(TODAY, date(2026, 1, 1), date(2026, 1, 8)) == (
        "collect_time 2026-01-01 before cutoff 2026-01-08"
    )


def test_stale_reason_both_old_names_both() -> None:
    assert stale_reason(date(2025, 1, 1), date(2026, 1, 1), date(2026, 1, 8)) == (
        "publish_date 2025-01-01 and collect_time 2026-01-01 before cutoff 2026-01-08"
    )


@pytest.mark.parametrize(
    ("day", "suspicious"),
    [
        (date(2020, 1, 1), False),
        (TODAY, False),
        (date(2026, 1, 16), False),  # tomorrow: a clock or zone slightly ahead
        (date(2026, 1, 17), True),
        (date(2027, 1, 15), True),
    ],
)
def test_is_suspicious_future_more_than_one_day_ahead_flagged(day: date, suspicious: bool) -> None:
    assert is_suspicious_future(day, TODAY) is suspicious
